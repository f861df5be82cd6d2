from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from fnbox.server.app import create_app
from fnbox.server.settings import load_settings
from tests.postgres import Postgres, running_postgres
from tests.s3 import S3Server, running_s3


@pytest.fixture
def make_client(tmp_path):
    """A TestClient on a fresh data directory; keyword arguments are environment variables.

    Sandboxes stay in the test process unless FUNCTIONS_WORKERS is given.
    """
    clients = []

    def make(**environ: str) -> TestClient:
        environ.setdefault("FUNCTIONS_STORAGE_FILESYSTEM_DIRPATH", str(tmp_path / "functions"))
        environ.setdefault("FUNCTIONS_WORKERS", "0")
        client = TestClient(create_app(load_settings(environ=environ)), raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client):
    return make_client()


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """One real PostgreSQL for the whole session, started by the first test that asks for it."""
    with running_postgres() as server:
        yield server


@pytest.fixture
def database_url(postgres: Postgres) -> Iterator[str]:
    """A fresh, empty database of the session's PostgreSQL, dropped after the test."""
    url = postgres.create_database()
    yield url
    postgres.drop_database(url)


@pytest.fixture(scope="session")
def s3() -> Iterator[S3Server]:
    """One S3-compatible server (moto) for the whole session; tests use buckets of their own."""
    with running_s3() as server:
        yield server
