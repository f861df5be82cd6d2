"""`fnbox migrate --from-dir`: a single machine's data directory copied into the shared database."""

import subprocess
import sys

import pytest
from cryptography.fernet import Fernet

from fnbox.database import Database
from fnbox.executions.pgrecords import PgExecutionStore
from fnbox.executions.records import Execution, ExecutionStatus, ExecutionStore
from fnbox.server.pgtokens import PgTokenStore
from fnbox.server.tokens import TokenStore
from fnbox.workspaces.pgsecrets import PgSecretStore
from fnbox.workspaces.pgstore import PgStore
from fnbox.workspaces.secrets import SecretStore
from fnbox.workspaces.store import FileStore
from tests.processes import ROOT

pytestmark = pytest.mark.slow  # a subprocess and a real PostgreSQL

HELLO = {"functions": {"hello": {"code": "return 'hi';"}}}


def migrate(data_dir, database_url):
    return subprocess.run(
        [sys.executable, "-m", "fnbox", "migrate", "--from-dir", str(data_dir)],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "FNBOX_DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_workspaces_and_records_are_copied_once_and_a_second_run_changes_nothing(tmp_path, database_url):
    files = FileStore(tmp_path)
    files.save("one", HELLO)
    files.save("two", {"functions": {"f": {"language": "python", "code": "return 2"}}})
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "workspace.yaml").write_text("functions: [unclosed\n")
    records = ExecutionStore(tmp_path / "executions.sqlite3")
    for index in range(3):
        records.insert(
            Execution(f"e{index}", "one", "hello", "v1", "javascript", {}, status=ExecutionStatus.SUCCESSFUL)
        )
    records.close()

    first = migrate(tmp_path, database_url)
    assert first.returncode == 0, first.stderr
    assert "2 workspaces copied, 0 already there unchanged, 3 execution records copied" in first.stdout
    assert "skipped: workspace 'broken'" in first.stdout
    again = migrate(tmp_path, database_url)
    assert "0 workspaces copied, 2 already there unchanged" in again.stdout

    database = Database(database_url)
    database.open()
    try:
        store = PgStore(database)
        assert store.names() == ["one", "two"] and store.load("one") == HELLO
        assert len(store.versions("one")) == 1
        assert PgExecutionStore(database).get("e2").status == ExecutionStatus.SUCCESSFUL
    finally:
        database.close()


def migrated_workspaces(database_url, change=None):
    """The workspaces the database holds after `change(store)`, made through the store the REST API uses."""
    database = Database(database_url)
    database.open()
    try:
        store = PgStore(database)
        if change is not None:
            change(store)
        return {name: store.load(name) for name in store.names()}
    finally:
        database.close()


def test_a_workspace_deleted_in_the_database_is_never_brought_back_by_migrating_again(tmp_path, database_url):
    files = FileStore(tmp_path)
    files.save("gone", HELLO)
    files.save("kept", HELLO)
    assert migrate(tmp_path, database_url).returncode == 0
    migrated_workspaces(database_url, lambda store: store.delete("gone"))

    again = migrate(tmp_path, database_url)
    assert again.returncode == 0, again.stderr
    assert "0 workspaces copied, 1 already there unchanged" in again.stdout, again.stdout
    assert "deleted them): workspaces 'gone'" in again.stdout
    assert migrated_workspaces(database_url) == {"kept": HELLO}


def test_a_workspace_changed_in_the_database_keeps_its_version_when_migrating_again(tmp_path, database_url):
    FileStore(tmp_path).save("w", HELLO)
    assert migrate(tmp_path, database_url).returncode == 0
    in_database = {"functions": {"hello": {"code": "return 'changed in the database';"}}}
    migrated_workspaces(database_url, lambda store: store.save("w", in_database))
    FileStore(tmp_path).save("w", {"functions": {"hello": {"code": "return 'changed in the directory';"}}})

    again = migrate(tmp_path, database_url)
    assert "0 workspaces copied, 0 already there unchanged" in again.stdout, again.stdout
    assert migrated_workspaces(database_url) == {"w": in_database}


def test_a_workspace_new_in_the_directory_is_copied_beside_one_deleted_in_the_database(tmp_path, database_url):
    FileStore(tmp_path).save("old", HELLO)
    assert migrate(tmp_path, database_url).returncode == 0
    migrated_workspaces(database_url, lambda store: store.delete("old"))
    FileStore(tmp_path).save("new", HELLO)

    again = migrate(tmp_path, database_url)
    assert "1 workspaces copied, 0 already there unchanged" in again.stdout, again.stdout
    assert migrated_workspaces(database_url) == {"new": HELLO}


def test_secrets_stay_encrypted_tokens_stay_hashed_and_a_revoked_token_is_never_brought_back(tmp_path, database_url):
    key = Fernet.generate_key().decode()
    SecretStore(tmp_path, keys=key).set("w", "API_KEY", "sk-migrated-0123456789")
    tokens = TokenStore(tmp_path)
    kept, revoked = tokens.create({"scopes": ["run"]}), tokens.create({"scopes": ["read"], "workspaces": ["w*"]})

    first = migrate(tmp_path, database_url)
    assert first.returncode == 0, first.stderr
    assert "1 secrets copied, 2 tokens copied" in first.stdout
    assert "give every instance FNBOX_SECRETS_KEY" in first.stdout
    database = Database(database_url)
    database.open()
    try:
        secrets = PgSecretStore(database, tmp_path / "instance", keys=key)
        secrets.load()
        assert secrets.values("w") == {"API_KEY": "sk-migrated-0123456789"}
        shared = PgTokenStore(database, tmp_path / "instance", refresh=nothing)
        shared.load()
        assert shared.authenticate(kept["token"]).scopes == {"run"}
        assert shared.authenticate(revoked["token"]).workspaces == ("w*",)
        shared.revoke(revoked["id"])
        with database.connection() as connection:
            stored = connection.execute("SELECT value FROM fnbox_secrets").fetchone()[0]
            hashes = [row[0] for row in connection.execute("SELECT hash FROM fnbox_tokens")]
        assert "sk-migrated" not in stored and kept["token"] not in hashes
    finally:
        database.close()

    again = migrate(tmp_path, database_url)
    assert "0 secrets copied, 0 tokens copied" in again.stdout, again.stdout
    database = Database(database_url)
    database.open()
    try:
        shared = PgTokenStore(database, tmp_path / "instance", refresh=nothing)
        shared.load()
        assert shared.authenticate(revoked["token"]) is None and shared.authenticate(kept["token"]) is not None
    finally:
        database.close()


def migrated_secrets(tmp_path, database_url, key, change=None):
    """The secrets the database holds after `change(store)`, made through the store the REST API uses."""
    database = Database(database_url)
    database.open()
    try:
        secrets = PgSecretStore(database, tmp_path / "instance", keys=key)
        secrets.load()
        if change is not None:
            change(secrets)
        return dict(secrets.values("w"))
    finally:
        database.close()


def test_a_secret_deleted_in_the_database_is_never_brought_back_by_migrating_again(tmp_path, database_url):
    key = Fernet.generate_key().decode()
    local = SecretStore(tmp_path, keys=key)
    local.set("w", "LEAKED", "sk-leaked-0123456789")
    local.set("w", "KEPT", "kept-value")
    assert migrate(tmp_path, database_url).returncode == 0
    migrated_secrets(tmp_path, database_url, key, lambda store: store.delete("w", "LEAKED"))

    again = migrate(tmp_path, database_url)
    assert again.returncode == 0, again.stderr
    assert "0 secrets copied" in again.stdout, again.stdout
    assert migrated_secrets(tmp_path, database_url, key) == {"KEPT": "kept-value"}


def test_a_secret_changed_in_the_database_keeps_its_value_when_migrating_again(tmp_path, database_url):
    key = Fernet.generate_key().decode()
    SecretStore(tmp_path, keys=key).set("w", "API_KEY", "old-value")
    assert migrate(tmp_path, database_url).returncode == 0
    migrated_secrets(tmp_path, database_url, key, lambda store: store.set("w", "API_KEY", "changed-in-database"))
    SecretStore(tmp_path, keys=key).set("w", "API_KEY", "changed-in-directory")  # newer, still not copied

    again = migrate(tmp_path, database_url)
    assert "0 secrets copied" in again.stdout, again.stdout
    assert migrated_secrets(tmp_path, database_url, key) == {"API_KEY": "changed-in-database"}


def test_a_secret_new_in_the_directory_is_copied_beside_one_deleted_in_the_database(tmp_path, database_url):
    key = Fernet.generate_key().decode()
    SecretStore(tmp_path, keys=key).set("w", "OLD", "old-value")
    assert migrate(tmp_path, database_url).returncode == 0
    migrated_secrets(tmp_path, database_url, key, lambda store: store.delete("w", "OLD"))
    SecretStore(tmp_path, keys=key).set("w", "NEW", "new-value")

    again = migrate(tmp_path, database_url)
    assert "1 secrets copied" in again.stdout, again.stdout
    assert migrated_secrets(tmp_path, database_url, key) == {"NEW": "new-value"}


async def nothing() -> None:
    pass


def test_without_a_database_it_says_what_is_missing(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "fnbox", "migrate", "--from-dir", str(tmp_path)],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "FNBOX_DATABASE_URL" in done.stderr
