"""A real PostgreSQL for the tests: `initdb` into a temporary directory, `pg_ctl start` on a free port.

PostgreSQL refuses to run as root, so as root the cluster belongs to `nobody` (subprocess's
`user=`); as anyone else it belongs to that user. The server listens on 127.0.0.1 and on a
unix socket inside its directory, trusts local connections (nothing else can reach it) and
skips fsync: the tests need its SQL, not its durability. One server serves a test session;
each test gets a fresh database (`create_database`).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

from tests.processes import free_port

__all__ = ["Postgres", "find_bindir", "running_postgres"]


def find_bindir() -> Path:
    """The newest installed PostgreSQL's bin directory (Debian keeps them out of PATH)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda path: int(path.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).parent
    raise RuntimeError("no PostgreSQL found: install it (`apt-get install -y postgresql`; .ci/run does)")


@dataclass
class Postgres:
    bindir: Path
    folder: Path
    port: int
    user: str | None

    @property
    def data(self) -> Path:
        return self.folder / "data"

    @property
    def admin_url(self) -> str:
        return self.url("postgres")

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str) -> None:
        subprocess.run(
            [str(self.bindir / args[0]), *args[1:]],
            check=True,
            user=self.user,
            cwd=self.folder,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c full_page_writes=off -c synchronous_commit=off -c max_connections=200"
        )
        self._run(
            "pg_ctl", "start", "-w", "-t", "60", "-D", str(self.data), "-l", str(self.folder / "log"), "-o", options
        )

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "stop", "-w", "-m", mode, "-D", str(self.data))

    def log(self) -> str:
        path = self.folder / "log"
        return path.read_text(errors="replace") if path.exists() else ""

    def create_database(self) -> str:
        """A new empty database; its URL."""
        name = f"test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.admin_url, autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, url: str) -> None:
        name = url.rsplit("/", 1)[1]
        with psycopg.connect(self.admin_url, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def running_postgres() -> Iterator[Postgres]:
    """A started cluster, stopped and removed on the way out."""
    user = "nobody" if os.geteuid() == 0 else None
    folder = Path(tempfile.mkdtemp(prefix="fnbox-pg-"))
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(folder, entry.pw_uid, entry.pw_gid)
    server = Postgres(find_bindir(), folder, free_port(), user)
    try:
        server._run("initdb", "-D", str(server.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        server.start()
        yield server
    finally:
        try:
            server.stop("immediate")
        except subprocess.CalledProcessError:
            pass  # not running: it never started, or a test stopped it
        shutil.rmtree(folder, ignore_errors=True)
