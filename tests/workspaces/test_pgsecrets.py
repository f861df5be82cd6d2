"""Secrets in the shared database: encrypted with a key the database never sees, followed by every instance."""

import asyncio

import pytest
from cryptography.fernet import Fernet

from fnbox.database import Database
from fnbox.sandboxes.errors import InvalidRequest, NotFound
from fnbox.workspaces.pgsecrets import PgSecretStore, SecretsKeyError
from fnbox.workspaces.runtime import Runtime, RuntimeOptions, make_pool
from fnbox.workspaces.secrets import MAX_PER_WORKSPACE
from tests.fakes import FakeFactory

pytestmark = pytest.mark.slow  # a real PostgreSQL

KEY = Fernet.generate_key().decode()
VALUE = "sk-live-0123456789abcdef"


def shared_runtime(path, database_url, key=KEY):
    options = RuntimeOptions(database_url=database_url, secrets_key=key)
    factory = FakeFactory()
    return Runtime(path, options=options, pool=make_pool(options, factories={"javascript": factory, "python": factory}))


@pytest.fixture
def database(database_url):
    opened = Database(database_url, max_size=2)
    opened.open()
    yield opened
    opened.close()


def stored_values(database):
    with database.connection() as connection:
        return [row[0] for row in connection.execute("SELECT value FROM fnbox_secrets")]


def test_a_change_through_one_instance_reaches_the_other_at_its_next_catch_up(tmp_path, database_url):
    a, b = shared_runtime(tmp_path / "a", database_url), shared_runtime(tmp_path / "b", database_url)

    async def scenario():
        async with a, b:
            await asyncio.to_thread(a.secrets.set, "w", "API_KEY", VALUE)
            await a.publish()  # as the routes do: answered once every instance holding a lease has it
            await b.refresh()
            assert b.secrets.values("w") == {"API_KEY": VALUE}
            assert [item["name"] for item in b.secrets.list("w")] == ["API_KEY"]
            await asyncio.to_thread(b.secrets.set, "w", "API_KEY", "second-value")
            await asyncio.to_thread(b.secrets.set, "w", "OTHER", "other-value")
            await b.publish()
            await a.refresh()
            assert a.secrets.values("w") == {"API_KEY": "second-value", "OTHER": "other-value"}
            await asyncio.to_thread(a.secrets.delete, "w", "API_KEY")
            await a.publish()
            await b.refresh()
            assert b.secrets.values("w") == {"OTHER": "other-value"}
            with pytest.raises(NotFound):
                await asyncio.to_thread(b.secrets.delete, "w", "API_KEY")
            async with shared_runtime(tmp_path / "c", database_url) as c:  # one started later reads them all
                assert c.secrets.values("w") == {"OTHER": "other-value"}

    asyncio.run(scenario())


def test_values_are_stored_encrypted_and_the_key_never(tmp_path, database):
    store = PgSecretStore(database, tmp_path, keys=KEY)
    store.load()
    store.set("w", "API_KEY", VALUE)
    (stored,) = stored_values(database)
    assert VALUE not in stored and Fernet(KEY.encode()).decrypt(stored.encode()).decode() == VALUE
    with database.connection() as connection:
        tables = connection.execute("SELECT string_agg(t::text, ' ') FROM (SELECT * FROM fnbox_secrets) t").fetchone()[
            0
        ]
    assert KEY not in tables and not (tmp_path / "secrets.json").exists()


def test_a_workspace_holds_at_most_the_same_number_of_secrets_as_on_a_single_machine(tmp_path, database):
    store = PgSecretStore(database, tmp_path, keys=KEY)
    store.load()
    for index in range(MAX_PER_WORKSPACE):
        store.set("w", f"K{index}", "v")
    with pytest.raises(InvalidRequest, match="at most"):
        store.set("w", "ONE_MORE", "v")
    store.set("w", "K0", "replaced")  # replacing one is not adding one
    assert store.values("w")["K0"] == "replaced"


def test_a_key_that_cannot_read_the_stored_secrets_stops_the_load(tmp_path, database):
    store = PgSecretStore(database, tmp_path / "a", keys=KEY)
    store.load()
    store.set("w", "API_KEY", VALUE)
    with pytest.raises(SecretsKeyError, match="cannot decrypt the secrets the database holds for 1 workspaces"):
        PgSecretStore(database, tmp_path / "b", keys=Fernet.generate_key().decode()).load()
    with pytest.raises(SecretsKeyError, match="has no key to read them"):
        PgSecretStore(database, tmp_path / "b").load()
    assert not (tmp_path / "b" / "secrets.key").exists()  # no key made up that could never read them


def test_rotation_re_encrypts_what_the_database_holds(tmp_path, database):
    new = Fernet.generate_key().decode()
    old_store = PgSecretStore(database, tmp_path, keys=KEY)
    old_store.load()
    old_store.set("w", "API_KEY", VALUE)
    rotating = PgSecretStore(database, tmp_path, keys=f"{new},{KEY}")
    rotating.load()
    assert rotating.values("w") == {"API_KEY": VALUE}
    (stored,) = stored_values(database)
    assert Fernet(new.encode()).decrypt(stored.encode()).decode() == VALUE
    only_new = PgSecretStore(database, tmp_path, keys=new)
    only_new.load()
    assert only_new.values("w") == {"API_KEY": VALUE}
    with pytest.raises(SecretsKeyError):
        PgSecretStore(database, tmp_path, keys=KEY).load()
