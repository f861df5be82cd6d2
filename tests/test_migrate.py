"""`fnbox migrate --from-dir`: a single machine's data directory copied into the shared database."""

import subprocess
import sys

import pytest
from cryptography.fernet import Fernet

from fnbox.database import Database
from fnbox.executions.pgqueue import INSTANCE_STOPPED
from fnbox.executions.pgrecords import PgExecutionStore
from fnbox.executions.records import Execution, ExecutionStatus, ExecutionStore
from fnbox.sandboxes.base import RunResult
from fnbox.sandboxes.errors import SandboxCrashed
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


def recorded(data_dir, *executions, update=False):
    """Write records into the directory's store, as its own instance does (an update never changes an ended one)."""
    records = ExecutionStore(data_dir / "executions.sqlite3")
    try:
        for execution in executions:
            assert records.update(execution) if update else records.insert(execution)
    finally:
        records.close()


def queued(execution_id, status=ExecutionStatus.ACCEPTED):
    return Execution(execution_id, "w", "hello", "v1", "javascript", {}, status=status)


def in_database(database_url, act):
    """What `act(store, connection)` returns, through the store the instances of the database use."""
    database = Database(database_url)
    database.open()
    try:
        with database.connection() as connection:
            return act(PgExecutionStore(database), connection)
    finally:
        database.close()


def holder(connection, execution_id):
    return connection.execute(
        "SELECT status, lease_owner, fence FROM fnbox_executions WHERE id = %s", (execution_id,)
    ).fetchone()


def test_a_record_claimed_in_the_database_stays_running_with_its_holder_when_migrating_again(tmp_path, database_url):
    recorded(tmp_path, queued("async"))
    assert "1 execution records copied" in migrate(tmp_path, database_url).stdout
    claimed = in_database(database_url, lambda store, _: store.claim("instance-b", 10, 10, 60.0))
    assert [(execution.id, fence) for execution, fence in claimed] == [("async", 1)]

    again = migrate(tmp_path, database_url)
    assert again.returncode == 0, again.stderr
    assert in_database(database_url, lambda _, connection: holder(connection, "async")) == ("running", "instance-b", 1)
    assert "0 execution records copied" in again.stdout, again.stdout
    assert "0 given the end the directory recorded since, 1 kept as the database holds them" in again.stdout
    execution = claimed[0][0]
    assert in_database(database_url, lambda store, _: store.renew("instance-b", [(execution, 1, False)], 60.0)) == {
        "async": False
    }


def test_a_record_claimed_in_the_database_keeps_its_holders_end_though_the_directory_ended_it(tmp_path, database_url):
    recorded(tmp_path, queued("async"))
    assert migrate(tmp_path, database_url).returncode == 0
    [(execution, fence)] = in_database(database_url, lambda store, _: store.claim("instance-b", 10, 10, 60.0))
    ended_here = queued("async")
    ended_here.succeed(RunResult("from the directory", [], 5.0))
    recorded(tmp_path, ended_here, update=True)  # the directory's instance ran it too

    again = migrate(tmp_path, database_url)
    assert in_database(database_url, lambda _, connection: holder(connection, "async")) == ("running", "instance-b", 1)
    assert "0 given the end the directory recorded since, 1 kept" in again.stdout, again.stdout
    execution.succeed(RunResult("from the database", [], 5.0))
    assert in_database(database_url, lambda store, _: store.finish(execution, "instance-b", fence))
    assert in_database(database_url, lambda store, _: store.get("async")).result == "from the database"


def test_a_record_running_in_the_directory_is_failed_by_the_shared_queues_sweep_as_its_instance_stopped(
    tmp_path, database_url
):
    recorded(tmp_path, queued("running", ExecutionStatus.RUNNING), queued("waiting"))
    assert migrate(tmp_path, database_url).returncode == 0

    assert in_database(database_url, lambda store, _: store.expire_leases(INSTANCE_STOPPED)) == ["running"]
    failed = in_database(database_url, lambda store, _: store.get("running"))
    assert failed.status == ExecutionStatus.FAILED and INSTANCE_STOPPED in failed.error["message"]
    [(claimed, _)] = in_database(database_url, lambda store, _: store.claim("instance-b", 10, 10, 60.0))
    assert claimed.id == "waiting"  # still waits for an instance to run it


def test_a_record_ended_in_the_directory_since_shows_its_end_in_the_database(tmp_path, database_url):
    recorded(tmp_path, queued("running", ExecutionStatus.RUNNING), queued("waiting"))
    assert "2 execution records copied" in migrate(tmp_path, database_url).stdout
    running, waiting = queued("running", ExecutionStatus.RUNNING), queued("waiting")
    running.succeed(RunResult({"answer": 42}, [{"level": "info", "message": "done"}], 7.0))
    waiting.dismiss("stopped in the directory")
    recorded(tmp_path, running, waiting, update=True)

    again = migrate(tmp_path, database_url)
    assert again.returncode == 0, again.stderr
    ended = in_database(database_url, lambda store, _: (store.get("running"), store.get("waiting")))
    assert ended[0].status == ExecutionStatus.SUCCESSFUL and ended[0].result == {"answer": 42}
    assert ended[0].logs == [{"level": "info", "message": "done"}] and ended[0].duration == 7.0
    assert ended[1].status == ExecutionStatus.DISMISSED  # no instance claims it now
    assert in_database(database_url, lambda store, _: store.claim("instance-b", 10, 10, 60.0)) == []
    assert "0 execution records copied" in again.stdout, again.stdout
    assert "2 given the end the directory recorded since, 0 kept" in again.stdout


def test_a_record_ended_in_the_database_is_never_changed_by_the_directorys_end(tmp_path, database_url):
    recorded(tmp_path, queued("dismissed"), queued("finished"))
    assert migrate(tmp_path, database_url).returncode == 0

    def end(store, _):
        store.cancel_waiting("dismissed", "dismissed in the database")
        [(execution, fence)] = store.claim("instance-b", 10, 10, 60.0)
        execution.succeed(RunResult("from the database", [], 5.0))
        assert store.finish(execution, "instance-b", fence)

    in_database(database_url, end)
    dismissed, finished = queued("dismissed"), queued("finished")
    dismissed.succeed(RunResult("from the directory", [], 5.0))
    finished.fail(SandboxCrashed("failed in the directory"))
    recorded(tmp_path, dismissed, finished, update=True)

    again = migrate(tmp_path, database_url)
    kept = in_database(database_url, lambda store, _: (store.get("dismissed"), store.get("finished")))
    assert kept[0].status == ExecutionStatus.DISMISSED and kept[0].result is None
    assert kept[1].status == ExecutionStatus.SUCCESSFUL and kept[1].result == "from the database"
    assert "0 given the end the directory recorded since, 2 kept" in again.stdout, again.stdout


def test_another_execution_under_the_same_id_in_the_database_is_never_given_the_directorys_end(tmp_path, database_url):
    """Clients may choose ids: one the directory and the database both hold can name two executions."""
    theirs = Execution("chosen", "other", "report", "v7", "python", {"day": 1})
    assert in_database(database_url, lambda store, _: store.insert(theirs))
    ours = queued("chosen")
    ours.succeed(RunResult("from the directory", [], 5.0))
    recorded(tmp_path, ours)

    done = migrate(tmp_path, database_url)
    assert done.returncode == 0, done.stderr
    held = in_database(database_url, lambda store, _: store.get("chosen"))
    assert (held.workspace, held.function, held.status, held.result) == (
        "other",
        "report",
        ExecutionStatus.ACCEPTED,
        None,
    )
    assert "0 given the end the directory recorded since, 1 kept" in done.stdout, done.stdout


def test_records_new_in_the_directory_are_copied_and_the_summary_counts_each_kind(tmp_path, database_url):
    done = [queued(f"e{index:03}", ExecutionStatus.SUCCESSFUL) for index in range(501)]  # more than a batch
    recorded(tmp_path, queued("running", ExecutionStatus.RUNNING), queued("waiting"), *done)
    first = migrate(tmp_path, database_url)
    assert "503 execution records copied" in first.stdout, first.stdout
    assert "already in the database" not in first.stdout
    in_database(database_url, lambda store, _: store.claim("instance-b", 10, 10, 60.0))
    running = queued("running", ExecutionStatus.RUNNING)
    running.fail(SandboxCrashed("failed in the directory"))
    recorded(tmp_path, running, update=True)
    recorded(tmp_path, queued("new-1"), queued("new-2", ExecutionStatus.SUCCESSFUL))

    again = migrate(tmp_path, database_url)
    assert "2 execution records copied" in again.stdout, again.stdout
    assert "1 given the end the directory recorded since, 502 kept as the database holds them" in again.stdout
    statuses = in_database(
        database_url,
        lambda _, connection: dict(connection.execute("SELECT status, count(*) FROM fnbox_executions GROUP BY status")),
    )
    assert statuses == {"successful": 502, "failed": 1, "running": 1, "accepted": 1}


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
