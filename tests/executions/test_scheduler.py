"""The Scheduler: asynchronous executions within bounds, waited for, cancelled and followed."""

import asyncio

import pytest

from fnbox.database import Database
from fnbox.executions.pgqueue import PgScheduler
from fnbox.executions.pgrecords import PgExecutionStore
from fnbox.executions.records import Execution, ExecutionStatus, ExecutionStore
from fnbox.executions.scheduler import DISMISSED_AT_SHUTDOWN, EndEvent, LogEvent, Scheduler
from fnbox.sandboxes.base import RunResult
from fnbox.sandboxes.errors import Conflict, FunctionError, Overloaded


class Script:
    """A stand-in for the Runtime's run: each execution's `parameters` say what it does."""

    def __init__(self):
        self.started = []
        self.release = asyncio.Event()

    async def __call__(self, execution, on_log):
        self.started.append(execution.id)
        action = execution.parameters or {}
        for message in action.get("logs", []):
            on_log({"level": "info", "message": message, "time": 0})
            await asyncio.sleep(0.01)
        if action.get("block"):
            await self.release.wait()
        if action.get("fail"):
            raise FunctionError("boom", logs=[{"level": "error", "message": "before", "time": 0}], duration=1.5)
        return RunResult(
            result=action.get("result", "done"),
            logs=[{"level": "info", "message": m, "time": 0} for m in action.get("logs", [])],
            duration=2.0,
        )


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)])
def store(request, tmp_path):
    """Each backend: one process's SQLite file, and the queue PostgreSQL shares between instances."""
    if request.param == "sqlite":
        store = ExecutionStore(tmp_path / "executions.sqlite3")
        yield store
        store.close()
        return
    database = Database(request.getfixturevalue("database_url"), max_size=4)
    database.open()
    yield PgExecutionStore(database)
    database.close()


def make_scheduler(store, script, *, max_queue, per_workspace):
    if isinstance(store, PgExecutionStore):
        scheduler = PgScheduler(
            store, script, max_queue=max_queue, per_workspace=per_workspace, lease=10, poll=0.05, heartbeat=0.1
        )
        scheduler.start()
        return scheduler
    return Scheduler(store, script, max_queue=max_queue, per_workspace=per_workspace)


def execution(id, workspace="w", **parameters):
    return Execution(id, workspace, "f", "v1", "python", parameters)


def scenario(store, body, *, max_queue=100, per_workspace=2):
    async def go():
        script = Script()
        scheduler = make_scheduler(store, script, max_queue=max_queue, per_workspace=per_workspace)
        try:
            return await body(scheduler, script)
        finally:
            script.release.set()
            await scheduler.close(grace=1)

    return asyncio.run(go())


def test_an_execution_runs_in_the_background_and_is_stored_at_each_step(store):
    async def body(scheduler, script):
        accepted = await scheduler.submit(execution("a", result=42))
        assert accepted.status == ExecutionStatus.ACCEPTED
        stored = store.get("a").status
        if isinstance(store, PgExecutionStore):  # claimed in the background, perhaps already
            assert stored in (ExecutionStatus.ACCEPTED, ExecutionStatus.RUNNING, ExecutionStatus.SUCCESSFUL)
        else:
            assert stored == ExecutionStatus.ACCEPTED
        ended = await scheduler.wait("a", timeout=5)
        return ended

    ended = scenario(store, body)
    assert ended.status == ExecutionStatus.SUCCESSFUL and ended.result == 42 and ended.duration == 2.0
    stored = store.get("a")
    assert (stored.status, stored.result) == (ExecutionStatus.SUCCESSFUL, 42)
    assert stored.created <= stored.started <= stored.finished


def test_a_failed_run_keeps_its_error_logs_and_duration(store):
    async def body(scheduler, script):
        await scheduler.submit(execution("a", fail=True))
        return await scheduler.wait("a", timeout=5)

    ended = scenario(store, body)
    assert ended.status == ExecutionStatus.FAILED
    assert ended.error == {"error": "FunctionError", "message": "boom", "details": {}}
    assert ended.logs[0]["message"] == "before" and ended.duration == 1.5
    assert store.get("a").error["error"] == "FunctionError"


def test_an_id_that_exists_is_a_conflict(store):
    async def body(scheduler, script):
        await scheduler.submit(execution("a", block=True))
        with pytest.raises(Conflict):
            await scheduler.submit(execution("a"))
        script.release.set()
        await scheduler.wait("a", timeout=5)
        with pytest.raises(Conflict):  # ended, stored: still taken
            await scheduler.submit(execution("a"))

    scenario(store, body)


def test_past_the_queue_depth_it_is_overloaded(store):
    async def body(scheduler, script):
        await scheduler.submit(execution("a", block=True))
        await scheduler.submit(execution("b", block=True))
        with pytest.raises(Overloaded):
            await scheduler.submit(execution("c"))
        assert store.get("c") is None

    scenario(store, body, max_queue=2)


def test_one_workspace_runs_at_most_per_workspace_at_once_and_others_go_on(store):
    async def body(scheduler, script):
        for index in range(4):
            await scheduler.submit(execution(f"busy{index}", block=True))
        await scheduler.submit(execution("other", workspace="elsewhere"))
        other = await scheduler.wait("other", timeout=5)
        waiting = scheduler.live("busy3") or store.get("busy3")  # waiting in the shared queue: not held yet
        return other, sorted(script.started), waiting.status

    other, started, waiting = scenario(store, body, per_workspace=2)
    assert other.status == ExecutionStatus.SUCCESSFUL
    assert started == ["busy0", "busy1", "other"]
    assert waiting == ExecutionStatus.ACCEPTED


def test_wait_returns_the_current_state_at_its_timeout(store):
    async def body(scheduler, script):
        await scheduler.submit(execution("a", block=True))
        await asyncio.sleep(0.2)
        return (await scheduler.wait("a", timeout=0.1)).status  # the object goes on changing

    assert scenario(store, body) == ExecutionStatus.RUNNING


def test_cancel_dismisses_a_running_execution(store):
    async def body(scheduler, script):
        await scheduler.submit(execution("a", block=True))
        await asyncio.sleep(0.2)
        cancelled = await scheduler.cancel("a")
        return cancelled, await scheduler.cancel("a")

    cancelled, again = scenario(store, body)
    assert cancelled.status == ExecutionStatus.DISMISSED and cancelled.finished is not None
    assert again is None  # no longer live: the Runtime answers Conflict from the record
    assert store.get("a").status == ExecutionStatus.DISMISSED


def test_a_cancelled_execution_that_waited_for_its_turn_never_starts(store):
    async def body(scheduler, script):
        await scheduler.submit(execution("first", block=True))
        await scheduler.submit(execution("queued"))
        await asyncio.sleep(0.2)
        await scheduler.cancel("queued")
        script.release.set()
        await scheduler.wait("first", timeout=5)
        return script.started

    assert scenario(store, body, per_workspace=1) == ["first"]
    assert store.get("queued").status == ExecutionStatus.DISMISSED
    assert store.get("queued").started is None


def test_follow_gives_each_entry_as_it_comes_then_the_end(store):
    async def body(scheduler, script):
        await scheduler.submit(execution("a", logs=["one", "two", "three"], block=True))
        events = []

        async def collect():
            async for event in scheduler.follow("a"):
                events.append(event)
                if isinstance(event, LogEvent) and event.index == 2:
                    script.release.set()  # the run ends only once the logs were seen live

        await asyncio.wait_for(collect(), 5)
        return events

    events = scenario(store, body)
    assert [e.entry["message"] for e in events if isinstance(e, LogEvent)] == ["one", "two", "three"]
    assert [e.index for e in events if isinstance(e, LogEvent)] == [0, 1, 2]
    assert isinstance(events[-1], EndEvent) and events[-1].execution.status == ExecutionStatus.SUCCESSFUL


def test_follow_from_an_index_and_without_waiting(store):
    async def body(scheduler, script):
        await scheduler.submit(execution("a", logs=["one", "two"], block=True))
        await asyncio.sleep(0.1)
        return [event async for event in scheduler.follow("a", start=1, follow=False)]

    events = scenario(store, body)
    assert [(e.index, e.entry["message"]) for e in events] == [(1, "two")]


def test_follow_sends_heartbeats_while_nothing_happens(store):
    async def body(scheduler, script):
        await scheduler.submit(execution("a", block=True))
        stream = scheduler.follow("a", heartbeat=0.05)
        first = await asyncio.wait_for(stream.__anext__(), 2)
        await stream.aclose()
        return first

    assert scenario(store, body) is None


def test_close_gives_a_grace_period_then_cancels(store):
    async def go():
        script = Script()
        scheduler = make_scheduler(store, script, max_queue=10, per_workspace=2)
        await scheduler.submit(execution("quick", logs=["x"]))
        await scheduler.submit(execution("stuck", block=True))
        await asyncio.sleep(0.2)
        await scheduler.close(grace=0.2)

    asyncio.run(go())
    assert store.get("quick").status == ExecutionStatus.SUCCESSFUL
    stuck = store.get("stuck")
    assert stuck.status == ExecutionStatus.DISMISSED and stuck.error["message"] == DISMISSED_AT_SHUTDOWN
