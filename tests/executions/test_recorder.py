import asyncio
import logging
import sqlite3

import pytest

from fnbox.executions.recorder import Recorder
from fnbox.executions.records import Execution, ExecutionStatus, ExecutionStore


class CountingStore(ExecutionStore):
    """The real store, counting its batches; `broken` makes them fail like a full disk."""

    def __init__(self, path):
        super().__init__(path)
        self.batches = []
        self.broken = False

    def write_many(self, executions):
        if self.broken:
            raise sqlite3.OperationalError("database or disk is full")
        self.batches.append(len(executions))
        super().write_many(executions)


@pytest.fixture
def store(tmp_path):
    store = CountingStore(tmp_path / "executions.sqlite3")
    yield store
    store.close()


def run(id, status="successful", created=1.0):
    return Execution(
        id=id, workspace="w", function="f", version="v1", language="python",
        status=ExecutionStatus(status), created=created, result=id,
    )  # fmt: skip


def stored_ids(store):
    ids, after = set(), None
    while True:
        items, after = store.list(limit=1000, after=after)
        ids.update(record.id for record in items)
        if after is None:
            return ids


async def eventually(condition, timeout=2.0):
    """Wait for the background writer (polling keeps the tests fast on a loaded machine)."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.005)


def test_many_runs_are_written_in_few_transactions(store):
    async def scenario():
        recorder = Recorder(store, interval=10, batch_size=500)
        recorder.start()
        for i in range(1200):
            recorder.record(run(f"r{i}"))
        # Past batch_size, the queue is written without waiting for the 10 s interval.
        await eventually(lambda: len(stored_ids(store)) == 1200)
        await recorder.close()

    asyncio.run(scenario())
    assert store.batches == [1200]


def test_pending_runs_are_written_every_interval(store):
    async def scenario():
        recorder = Recorder(store, interval=0.02)
        recorder.start()
        recorder.record(run("a"))
        await eventually(lambda: stored_ids(store) == {"a"})
        await recorder.close()

    asyncio.run(scenario())


def test_close_writes_what_is_pending(store):
    async def scenario():
        recorder = Recorder(store, interval=10)
        recorder.start()
        for id in "abc":
            recorder.record(run(id))
        assert stored_ids(store) == set()
        await recorder.close()

    asyncio.run(scenario())
    assert stored_ids(store) == {"a", "b", "c"}


def test_a_just_recorded_run_is_readable_at_once(store):
    async def scenario():
        recorder = Recorder(store, interval=10)
        recorder.start()
        recorder.record(run("a"))
        found = await recorder.get("a")
        listed, _ = await recorder.list(workspace="w")
        await recorder.close()
        return found, listed

    found, listed = asyncio.run(scenario())
    assert found == run("a")
    assert [record.id for record in listed] == ["a"]


def test_the_last_state_of_a_run_is_the_one_written(store):
    async def scenario():
        recorder = Recorder(store, interval=10)
        recorder.record(run("a", status="running"))
        recorder.record(run("a", status="successful"))
        await recorder.close()

    asyncio.run(scenario())
    assert store.get("a").status == "successful"
    assert store.batches == [1]


def test_a_full_queue_drops_the_oldest_runs_and_counts_them(store, caplog):
    async def scenario():
        recorder = Recorder(store, interval=10, max_pending=3)
        for i in range(5):
            recorder.record(run(f"r{i}"))
        await recorder.close()
        return recorder.dropped

    with caplog.at_level(logging.WARNING, logger="fnbox"):
        assert asyncio.run(scenario()) == 2
    assert stored_ids(store) == {"r2", "r3", "r4"}
    assert len(caplog.records) == 1 and "dropped" in caplog.text  # one warning, not one per record


def test_a_failing_database_loses_the_batch_but_never_the_service(store, caplog):
    async def scenario():
        recorder = Recorder(store, interval=0.01)
        recorder.start()
        store.broken = True
        recorder.record(run("lost"))
        await eventually(lambda: recorder.dropped == 1)
        store.broken = False
        recorder.record(run("kept"))
        await recorder.close()
        return recorder.dropped

    with caplog.at_level(logging.WARNING, logger="fnbox"):
        assert asyncio.run(scenario()) == 1
    assert stored_ids(store) == {"kept"}
    assert "disk is full" in caplog.text


def test_retention_applies_as_runs_are_written(store):
    async def scenario():
        recorder = Recorder(store, interval=0.01, max_count=2, prune_interval=0)
        recorder.start()
        store.insert(run("unfinished", status="running", created=0.0))
        for i in range(5):
            recorder.record(run(f"r{i}", created=float(i + 1)))
        await eventually(lambda: stored_ids(store) == {"unfinished", "r3", "r4"})
        await recorder.close()

    asyncio.run(scenario())
