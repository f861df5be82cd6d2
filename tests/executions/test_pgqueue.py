"""What only the shared queue does: claims across instances, leases, and fencing of late writes."""

import asyncio
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest

from fnbox.database import Database
from fnbox.executions.pgqueue import INSTANCE_STOPPED, PgScheduler
from fnbox.executions.pgrecords import PgExecutionStore
from fnbox.executions.records import Execution, ExecutionStatus
from fnbox.sandboxes.base import RunResult

pytestmark = pytest.mark.slow


@pytest.fixture
def stores(database_url):
    databases = [Database(database_url, max_size=2) for _ in range(3)]
    for database in databases:
        database.open()
    yield [PgExecutionStore(database) for database in databases]
    for database in databases:
        database.close()


def accepted(id, workspace="w"):
    return Execution(id, workspace, "f", "v1", "javascript", {})


def test_instances_claiming_at_once_take_each_execution_once_and_keep_the_per_workspace_bound(stores):
    for index in range(30):
        stores[0].insert(accepted(f"e{index:02}", workspace=f"w{index % 2}"))

    def claim(index):
        return [execution.id for execution, _ in stores[index % 3].claim(f"instance{index % 3}", 10, 3, 30)]

    with ThreadPoolExecutor(3) as threads:
        claimed = [id for ids in threads.map(claim, range(6)) for id in ids]
    assert len(claimed) == len(set(claimed)) == 6  # 3 turns in each of the two workspaces
    running = stores[1].list(status="running", limit=100)[0]
    assert sorted(execution.workspace for execution in running) == ["w0"] * 3 + ["w1"] * 3


def test_an_expired_lease_fails_the_execution_and_fences_off_the_late_end(stores, database_url):
    stores[0].insert(accepted("e"))
    [(execution, fence)] = stores[0].claim("dead", 5, 4, 30)
    assert stores[0].renew("dead", [(execution, fence, True)], 30) == {"e": False}
    with psycopg.connect(database_url, autocommit=True) as connection:  # the lease runs out
        connection.execute("UPDATE fnbox_executions SET lease_until = 0 WHERE id = 'e'")
    assert stores[1].expire_leases(INSTANCE_STOPPED) == ["e"]
    failed = stores[2].get("e")
    assert failed.status == ExecutionStatus.FAILED and failed.error["message"] == INSTANCE_STOPPED
    execution.succeed(RunResult(result="late", logs=[], duration=1.0))
    assert stores[0].finish(execution, "dead", fence) is False  # the dead instance's write changes nothing
    assert stores[0].renew("dead", [(execution, fence, False)], 30) == {}  # and it learns it lost the lease
    assert stores[2].get("e").status == ExecutionStatus.FAILED


def test_a_cancel_asked_through_another_instance_reaches_the_holder(stores):
    stores[0].insert(accepted("waiting"))
    dismissed = stores[1].cancel_waiting("waiting", "cancelled")
    assert dismissed.status == ExecutionStatus.DISMISSED and stores[0].claim("a", 5, 4, 30) == []
    stores[0].insert(accepted("running"))
    [(execution, fence)] = stores[0].claim("a", 5, 4, 30)
    assert stores[1].cancel_waiting("running", "cancelled") is None
    assert stores[1].ask_cancel("running") is True
    assert stores[0].renew("a", [(execution, fence, False)], 30) == {"running": True}


def test_the_queue_bound_holds_when_instances_accept_at_once(stores):
    def accept(index):
        return stores[index % 3].accept(accepted(f"e{index:02}"), 10)

    with ThreadPoolExecutor(6) as threads:
        answers = list(threads.map(accept, range(30)))
    assert answers.count(None) == 10 and all(answer == 10 for answer in answers if answer is not None)
    assert stores[0].accept(accepted("e00"), 100) == -1  # taken


def test_a_scheduler_closes_even_when_the_close_comes_as_its_claimer_is_woken(stores):
    """A cancel arriving just as the claimer's wait ended was once lost: its loop, and the close, never ended."""

    async def script(execution, on_log):
        return RunResult(result=None, logs=[], duration=0.0)

    async def cycles() -> None:
        for index in range(40):
            scheduler = PgScheduler(stores[0], script, max_queue=100, per_workspace=1, lease=10, poll=10)
            scheduler.start()
            await asyncio.sleep(0.05)  # its first look at the queue is over: it waits to be woken
            await scheduler.submit(accepted(f"e{index}"))  # wakes it
            for _ in range(index % 4):
                await asyncio.sleep(0)
            async with asyncio.timeout(10):  # hung for good before the fix
                await scheduler.close(grace=1)

    asyncio.run(cycles())
