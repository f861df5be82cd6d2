import sqlite3
import time
from datetime import UTC, datetime

import psycopg
import pytest

from fnbox.database import Database
from fnbox.executions.pgrecords import PgExecutionStore, glob_to_regex
from fnbox.executions.records import (
    MAX_PARAMETERS_SIZE,
    PAGE_SIZE,
    Execution,
    ExecutionStatus,
    ExecutionStore,
    ExecutionStoreError,
    check_execution_id,
    new_execution_id,
)
from fnbox.sandboxes.errors import InvalidRequest

T0 = datetime(2026, 11, 23, 10, 0, 0, 123000, tzinfo=UTC).timestamp()


@pytest.fixture
def sqlite_store(tmp_path):
    store = ExecutionStore(tmp_path / "executions.sqlite3")
    yield store
    store.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)])
def store(request):
    """The store of each backend: the embedded SQLite file, and PostgreSQL shared by instances."""
    if request.param == "sqlite":
        yield request.getfixturevalue("sqlite_store")
        return
    database = Database(request.getfixturevalue("database_url"), max_size=2)
    database.open()
    yield PgExecutionStore(database)
    database.close()


def execution(id="e1", status="successful", created=T0, workspace="w", function="f", **fields):
    return Execution(
        id=id, workspace=workspace, function=function, version="v1", language="javascript",
        status=ExecutionStatus(status), created=created, **fields,
    )  # fmt: skip


def finished_run(**fields):
    return execution(
        parameters={"name": "world", "n": [1, 2.5, None]},
        started=T0 + 0.001,
        finished=T0 + 0.002,
        result={"greeting": "hé"},
        logs=[{"level": "info", "message": "hi", "time": 1795428000123}],
        duration=0.75,
        **fields,
    )


def test_a_record_reads_back_with_every_field(store):
    failed = finished_run(id="e2", error={"error": "FunctionError", "message": "boom", "details": {"line": 2}})
    for record in (finished_run(), failed):
        assert store.insert(record) is True
        assert store.get(record.id) == record
    assert store.get("missing") is None


def test_the_json_of_a_record_has_utc_iso_times():
    assert finished_run().to_json() == {
        "id": "e1",
        "workspace": "w",
        "function": "f",
        "version": "v1",
        "language": "javascript",
        "status": "successful",
        "parameters": {"name": "world", "n": [1, 2.5, None]},
        "result": {"greeting": "hé"},
        "logs": [{"level": "info", "message": "hi", "time": 1795428000123}],
        "duration": 0.75,
        "error": None,
        "created": "2026-11-23T10:00:00.123Z",
        "started": "2026-11-23T10:00:00.124Z",
        "finished": "2026-11-23T10:00:00.125Z",
        "updated": "2026-11-23T10:00:00.125Z",
    }
    accepted = execution(status="accepted").to_json()
    assert (accepted["started"], accepted["updated"]) == (None, "2026-11-23T10:00:00.123Z")


def test_an_id_already_taken_is_refused_and_the_first_record_kept(store):
    assert store.insert(execution(function="first")) is True
    assert store.insert(execution(function="second")) is False
    assert store.get("e1").function == "first"


def test_update_writes_the_outcome_of_a_run(store):
    record = execution(status="running", started=T0)
    store.insert(record)
    record.status, record.finished, record.result, record.duration = ExecutionStatus.SUCCESSFUL, T0 + 1, 42, 3.5
    record.logs.append({"level": "warn", "message": "late", "time": 1})
    assert store.update(record) is True
    assert store.get("e1") == record
    assert store.update(execution(id="missing")) is False


def test_an_ended_record_is_final(store):
    store.insert(execution(status="running"))
    assert store.update(execution(status="dismissed", finished=T0 + 1)) is True
    assert store.update(execution(status="successful", finished=T0 + 2, result="late")) is False
    assert (store.get("e1").status, store.get("e1").result) == ("dismissed", None)
    assert store.get("e1").ended
    store.write_many([execution(status="successful")])
    assert store.get("e1").status == "dismissed"


def test_oversized_parameters_are_recorded_as_a_marker(store):
    big = {"blob": "x" * MAX_PARAMETERS_SIZE}
    small = {"blob": "x" * 100}
    store.write_many([execution(id="big", parameters=big), execution(id="small", parameters=small)])
    marker = {"truncated": True, "size": MAX_PARAMETERS_SIZE + len('{"blob":""}')}
    assert store.get("big").parameters == marker
    assert execution(parameters=big).to_json()["parameters"] == marker
    assert store.get("small").parameters == small


def test_write_many_upserts_in_one_transaction(store):
    store.insert(execution(id="a", status="running"))
    store.write_many([execution(id="a", status="successful"), execution(id="b")])
    assert [store.get(id).status for id in "ab"] == ["successful", "successful"]
    with pytest.raises(
        (sqlite3.IntegrityError, psycopg.IntegrityError)
    ):  # one bad row: nothing of the batch is written
        store.write_many([execution(id="c"), execution(id="d", workspace=None)])
    assert store.get("c") is None
    store.write_many([execution(id="c")])  # and the store goes on
    assert store.get("c") is not None


def test_a_batch_keeps_each_record_s_error_and_owner_whatever_its_neighbours(store):
    failed = {"error": "Boom", "message": "no", "details": {}}
    ended = [
        execution(id="plain-1"),
        execution(id="owned", owner="ci"),
        execution(id="failed", status="failed", error=failed),
    ]
    store.write_many(ended + [execution(id="plain-2")])
    store.write_many([execution(id=f"bare-{n}") for n in range(3)])  # none of them with an error or an owner
    assert [(store.get(id).error, store.get(id).owner) for id in ("plain-1", "owned", "failed", "plain-2")] == [
        (None, None), (None, "ci"), (failed, None), (None, None),
    ]  # fmt: skip
    assert all(store.get(f"bare-{n}").owner is None for n in range(3))
    store.insert(execution(id="later", status="running", owner="ci"))
    store.write_many([execution(id="later", owner=None)])  # an upsert of a row that ends with NULLs
    assert (store.get("later").status, store.get("later").owner) == ("successful", "ci")


def populate(store):
    """30 records over 3 workspaces, 2 functions and 2 statuses; some share a created time."""
    records = [
        execution(
            id=f"e{i:02}",
            created=T0 + i // 3,
            workspace=f"w{i % 3}",
            function=f"f{i % 2}",
            status="failed" if i % 5 == 0 else "successful",
        )
        for i in range(30)
    ]
    store.write_many(records)
    return sorted(records, key=lambda record: (record.created, record.id), reverse=True)


def all_pages(store, limit, **filters):
    pages, after = [], None
    while True:
        items, after = store.list(limit=limit, after=after, **filters)
        pages.append([record.id for record in items])
        if after is None:
            return pages


@pytest.mark.parametrize("limit", [1, 7, 10, 50])
def test_pages_cover_every_record_once_newest_first(store, limit):
    newest_first = [record.id for record in populate(store)]
    pages = all_pages(store, limit)
    assert [id for page in pages for id in page] == newest_first
    assert all(len(page) == limit for page in pages[:-1])


def test_filters_combine_and_page(store):
    records = populate(store)

    def expected(**filters):
        return [r.id for r in records if all(getattr(r, key) == value for key, value in filters.items())]

    filterings = [{"workspace": "w1"}, {"function": "f0"}, {"status": "failed"}, {"workspace": "w2", "function": "f1"}]
    for filters in filterings:
        assert [id for page in all_pages(store, 3, **filters) for id in page] == expected(**filters)
    assert store.list(workspace="nope") == ([], None)


def test_records_written_after_a_page_do_not_shift_the_next_one(store):
    populate(store)
    first, after = store.list(limit=10)
    store.insert(execution(id="newer", created=T0 + 100))
    second, _ = store.list(limit=10, after=after)
    assert {r.id for r in first}.isdisjoint(r.id for r in second) and len(second) == 10
    assert second[0].created <= first[-1].created


def test_bad_listing_arguments_are_invalid_requests(store):
    for arguments in ({"after": "not a cursor"}, {"after": "WzEsMl0"}, {"status": "done"}, {"limit": 0}):
        with pytest.raises(InvalidRequest):
            store.list(**arguments)


def test_a_page_holds_at_most_1000_records(store):
    store.write_many(execution(id=f"e{i}", created=T0 + i) for i in range(1001))
    items, after = store.list(limit=5000)
    assert len(items) == 1000 and after is not None


def test_mark_interrupted_fails_only_unfinished_runs(sqlite_store):
    store = sqlite_store
    statuses = ["accepted", "running", "successful", "failed", "dismissed"]
    store.write_many(execution(id=status, status=status) for status in statuses)
    before = time.time()
    assert store.mark_interrupted("the service stopped while this ran") == 2
    for status in ("accepted", "running"):
        record = store.get(status)
        assert record.status == "failed" and record.finished >= before
        assert record.error["error"] == "SandboxCrashed"
        assert record.error["message"] == "the service stopped while this ran"
    assert [store.get(status).status for status in statuses[2:]] == statuses[2:]
    assert store.get("successful").finished is None


def test_prune_by_count_keeps_the_newest_and_every_unfinished_run(store):
    store.write_many(execution(id=f"old{i}", created=T0 + i) for i in range(5))
    store.write_many(execution(id=f"active{i}", created=T0 - 10, status="running") for i in range(2))
    assert store.prune(max_count=2) == 3
    assert sorted(r.id for r in store.list()[0]) == ["active0", "active1", "old3", "old4"]


def test_prune_by_age_keeps_recent_and_unfinished_runs(store):
    now = time.time()
    store.write_many(
        [
            execution(id="old", created=now - 3600),
            execution(id="old-running", created=now - 3600, status="running"),
            execution(id="recent", created=now - 10),
        ]
    )
    assert store.prune(max_age=60) == 1
    assert sorted(r.id for r in store.list()[0]) == ["old-running", "recent"]
    assert store.prune() == 0


def test_records_survive_a_restart(tmp_path):
    path = tmp_path / "data" / "executions.sqlite3"
    store = ExecutionStore(path)
    store.insert(finished_run())
    store.close()
    reopened = ExecutionStore(path)
    assert reopened.get("e1") == finished_run()
    reopened.close()


def test_the_database_is_in_wal_mode(sqlite_store):
    store = sqlite_store
    other = sqlite3.connect(store.path)
    assert other.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    other.close()


def test_a_batch_of_records_writes_about_their_own_bytes(sqlite_store):
    """Measured on this thread's writes (the WAL's and any temporary file's): not pages journaled again per statement."""

    def written() -> int:
        with open("/proc/thread-self/io") as io:
            return int(dict(line.split(": ") for line in io.read().splitlines())["wchar"])

    def batch(start):
        return [finished_run(id=f"r{start + n}", created=T0 + start + n) for n in range(500)]

    sqlite_store.write_many(batch(0))
    before = written()
    for start in range(500, 10_500, 500):
        sqlite_store.write_many(batch(start))
    per_record = (written() - before) / 10_000
    assert per_record < 3000  # about 1 KB: the rows and their index entries in the WAL; 5 KB with a journal file


def test_a_store_made_with_smaller_pages_keeps_them_and_works(tmp_path):
    path = tmp_path / "executions.sqlite3"
    older = sqlite3.connect(path)
    older.execute("PRAGMA page_size = 4096")
    older.execute("PRAGMA journal_mode = WAL")
    older.execute("CREATE TABLE before_us (x)")
    older.close()
    store = ExecutionStore(path)
    store.write_many([finished_run(id="a"), execution(id="b")])
    assert store.get("a") == finished_run(id="a")
    assert store._db.execute("PRAGMA page_size").fetchone() == (4096,)
    store.close()
    new = ExecutionStore(tmp_path / "new.sqlite3")
    assert new._db.execute("PRAGMA page_size").fetchone() == (PAGE_SIZE,)
    new.close()


def test_none_is_stored_as_sql_null(sqlite_store):
    sqlite_store.write_many([execution(error=None, owner=None, started=None)])
    other = sqlite3.connect(sqlite_store.path)
    row = other.execute(
        "SELECT error IS NULL, owner IS NULL, started IS NULL, typeof(owner) FROM executions"
    ).fetchone()
    other.close()
    assert row == (1, 1, 1, "null")
    memory = sqlite3.connect(":memory:")  # None binds as NULL in any connection of the process
    assert memory.execute("SELECT ? IS NULL, typeof(?)", (None, None)).fetchone() == (1, "null")
    memory.close()


@pytest.mark.parametrize("broken", ["directory", "under a file", "not a database"])
def test_an_unusable_database_path_fails_at_open_with_its_name(tmp_path, broken):
    path = tmp_path / "executions.sqlite3"
    if broken == "directory":
        path.mkdir()
    elif broken == "under a file":
        (tmp_path / "data").write_text("")
        path = tmp_path / "data" / "executions.sqlite3"
    else:
        path.write_bytes(b"this is not SQLite" * 100)
    with pytest.raises(ExecutionStoreError, match=r"cannot open the execution store .*executions\.sqlite3"):
        ExecutionStore(path)


def test_execution_ids():
    generated = [new_execution_id() for _ in range(100)]
    assert len(set(generated)) == 100 and all(check_execution_id(id) == id for id in generated)
    # They grow with time (the primary-key index stays cheap to insert into).
    earlier = new_execution_id()
    time.sleep(0.002)
    assert new_execution_id()[:12] > earlier[:12]
    for valid in ("a", "run-1.retry_2", "X" * 64):
        assert check_execution_id(valid) == valid
    for invalid in ("", "X" * 65, "..", ".hidden", "a/b", "a b", "é", "a\n", 12, None):
        with pytest.raises(InvalidRequest, match="invalid execution id"):
            check_execution_id(invalid)


@pytest.mark.parametrize(
    ("pattern", "matches", "misses"),
    [
        ("team-*", ["team-", "team-a.b"], ["xteam-a", "team"]),
        ("a?c", ["abc", "a.c"], ["ac", "abbc"]),
        ("a.b", ["a.b"], ["axb"]),
        ("[ab]x", ["ax", "bx"], ["cx"]),
        ("[^ab]x", ["cx"], ["ax"]),
    ],
)
def test_glob_patterns_become_anchored_regular_expressions(pattern, matches, misses):
    import re

    assert all(re.match(glob_to_regex(pattern), name) for name in matches)
    assert not any(re.match(glob_to_regex(pattern), name) for name in misses)
