"""What only the PostgreSQL store does: migrations shared by instances, immutable versions, no lost save."""

from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest

from fnbox.database import MIGRATIONS, Database
from fnbox.sandboxes.errors import PreconditionFailed
from fnbox.workspaces.document import document_version
from fnbox.workspaces.pgstore import NEXT_CHANGE, PgStore
from fnbox.workspaces.stores import ABSENT

pytestmark = pytest.mark.slow


def test_instances_starting_together_migrate_the_schema_once(database_url):
    databases = [Database(database_url, max_size=1) for _ in range(6)]
    try:
        with ThreadPoolExecutor(len(databases)) as threads:
            versions = list(threads.map(Database.open, databases))
        assert versions == [len(MIGRATIONS)] * len(databases)
        with psycopg.connect(database_url) as connection:
            rows = connection.execute("SELECT version FROM fnbox_migrations ORDER BY version").fetchall()
        assert [row[0] for row in rows] == list(range(1, len(MIGRATIONS) + 1))
        assert databases[0].migrate() == len(MIGRATIONS)  # again: nothing to do
    finally:
        for database in databases:
            database.close()


def test_every_version_is_kept_with_its_content_hash_and_never_changes(database_url):
    database = Database(database_url)
    database.open()
    try:
        store = PgStore(database)
        first, second = {"functions": {"f": {"code": "return 1;"}}}, {"functions": {"f": {"code": "return 2;"}}}
        store.save("w", first)
        store.save("w", second)
        store.delete("w")
        store.save("w", first)
        versions = [version for _, version in store.versions("w")]
        assert versions == [document_version(first), document_version(second), None, document_version(first)]
        with database.connection() as connection, pytest.raises(psycopg.errors.RaiseException, match="never changed"):
            connection.execute("UPDATE fnbox_workspace_versions SET document = 'functions: {}' WHERE name = 'w'")
    finally:
        database.close()


def test_a_copy_saves_only_a_name_the_database_never_held(database_url):
    database = Database(database_url)
    database.open()
    try:
        store = PgStore(database)
        first, changed = {"functions": {"f": {"code": "return 1;"}}}, {"functions": {"f": {"code": "return 2;"}}}
        store.save("changed", first)
        store.save("changed", changed)
        store.save("deleted", first)
        store.delete("deleted")
        assert not store.copy("changed", first) and not store.copy("deleted", first)
        assert store.copy("new", first) and not store.copy("new", changed)
        assert store.load("changed") == changed and store.load("deleted") is None and store.load("new") == first
        assert [version for _, version in store.versions("deleted")] == [document_version(first), None]
    finally:
        database.close()


def test_a_copy_never_saves_over_a_deletion_committed_while_it_waited_for_the_counter(database_url):
    """The copy looks, finds no version, then waits for the counter a deleting instance holds: it looks again."""
    database = Database(database_url)
    database.open()
    try:
        store = PgStore(database)
        with psycopg.connect(database_url) as other, ThreadPoolExecutor(1) as threads:
            seq = other.execute(NEXT_CHANGE).fetchone()[0]  # the counter's row lock, until commit
            other.execute("INSERT INTO fnbox_workspace_versions (seq, name) VALUES (%s, 'w')", (seq,))
            copying = threads.submit(store.copy, "w", {"functions": {"f": {"code": "return 1;"}}})
            while (
                not copying.done()
                and not other.execute(
                    "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
                ).fetchone()
            ):
                pass  # until the copy waits for the counter
            other.commit()
            assert copying.result() is False
        assert store.load("w") is None and store.versions("w") == [(seq, None)]
    finally:
        database.close()


def test_concurrent_merges_through_several_instances_lose_no_function(database_url):
    """Each writer reads, adds its function and saves with the version it read; a refused save is retried."""
    databases = [Database(database_url, max_size=2) for _ in range(3)]
    for database in databases:
        database.open()
    try:
        stores = [PgStore(database) for database in databases]

        def add(index: int) -> None:
            store = stores[index % len(stores)]
            while True:
                current = store.load("shared")
                document = current or {"functions": {}}
                expected = ABSENT if current is None else document_version(current)
                document["functions"][f"f{index}"] = {"code": f"return {index};"}
                try:
                    store.save("shared", document, expected=expected)
                    return
                except PreconditionFailed:
                    continue  # another save came first: read it again

        with ThreadPoolExecutor(8) as threads:
            list(threads.map(add, range(24)))
        assert sorted(stores[0].load("shared")["functions"]) == sorted(f"f{index}" for index in range(24))
        assert len(stores[0].versions("shared")) == 24
    finally:
        for database in databases:
            database.close()


def test_an_unreachable_database_stops_the_start_with_a_message_without_the_password(monkeypatch):
    from fnbox import database as database_module
    from fnbox.database import DatabaseError, redacted
    from tests.processes import free_port

    monkeypatch.setattr(database_module, "START_TIMEOUT", 1.0)
    url = f"postgresql://fnbox:s3cret@127.0.0.1:{free_port()}/fnbox"
    with pytest.raises(DatabaseError, match="cannot connect to the database") as caught:
        Database(url).open()
    assert "s3cret" not in str(caught.value) and "fnbox:***@127.0.0.1" in str(caught.value)
    assert redacted("postgresql://host/db") == "postgresql://host/db"
