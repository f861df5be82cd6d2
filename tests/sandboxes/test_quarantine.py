"""A stuck tenant waits alone: after its run got a worker killed, it runs on a worker of its own."""

import asyncio

import pytest

from fnbox import metrics
from fnbox.sandboxes.base import FunctionSource, Limits
from fnbox.sandboxes.errors import TimeoutExceeded
from fnbox.sandboxes.pool import SandboxKey
from fnbox.sandboxes.quarantine import Quarantine
from fnbox.sandboxes.supervisor import WorkerOptions, WorkerPool

SOURCES = [
    FunctionSource(name="stuck", code="return 1.5 in range(10**18)"),
    FunctionSource(name="count", code="cache['n'] = cache.get('n', 0) + 1\nreturn cache['n']"),
    FunctionSource(name="nap", code="import time\ntime.sleep(0.3)\nreturn 'slept'"),
]
LIMITS = Limits(timeout=0.5, memory=2**28)
ATTACKER, NEIGHBOUR = SandboxKey("attacker", "python", "v1"), SandboxKey("neighbour", "python", "v1")


def supervised(scenario, **options):
    async def main():
        pool = WorkerPool(WorkerOptions(workers=1, languages=("python",), python_modules=("time",), **options))
        await pool.start()
        try:
            return await scenario(pool)
        finally:
            await pool.close()

    return asyncio.run(main())


@pytest.mark.slow
def test_after_one_kill_the_attacker_never_again_stalls_or_resets_its_neighbour():
    async def scenario(pool):
        await pool.run(NEIGHBOUR, SOURCES, "count", {}, LIMITS)
        nap = asyncio.create_task(pool.run(NEIGHBOUR, SOURCES, "nap", {}, LIMITS))
        await asyncio.sleep(0.05)
        with pytest.raises(TimeoutExceeded):
            await pool.run(ATTACKER, SOURCES, "stuck", {}, LIMITS)
        stalled = (await nap).result  # the neighbour stalled by the first kill was retried
        first = (await pool.run(NEIGHBOUR, SOURCES, "count", {}, LIMITS)).result  # its cache went with the worker
        home = pool.worker_pids("python")
        counts = []
        for _ in range(3):
            attack = asyncio.create_task(pool.run(ATTACKER, SOURCES, "stuck", {}, LIMITS))
            for _ in range(5):
                counts.append((await pool.run(NEIGHBOUR, SOURCES, "count", {}, LIMITS)).result)
                await asyncio.sleep(0.1)
            with pytest.raises(TimeoutExceeded):
                await attack
        return stalled, first, counts, home, pool.worker_pids("python")

    stalled, first, counts, home, after = supervised(scenario)
    assert stalled == "slept"
    assert first == 1
    assert counts == list(range(2, 17))  # never reset: the attacks killed only the attacker's worker
    assert home == after


@pytest.mark.slow
def test_a_quarantine_ends_and_its_worker_is_stopped():
    async def scenario(pool):
        with pytest.raises(TimeoutExceeded):
            await pool.run(ATTACKER, SOURCES, "stuck", {}, LIMITS)
        assert (await pool.run(ATTACKER, SOURCES, "count", {}, LIMITS)).result == 1
        quarantined = [w.process.pid for w in pool._quarantine.workers()]
        await asyncio.sleep(1.5)
        return quarantined, pool._quarantine.workers()

    quarantined, left = supervised(scenario, quarantine_seconds=1)
    assert len(quarantined) == 1 and left == []


def test_quarantine_workers_are_shared_past_their_cap():
    now = [0.0]
    made = []
    quarantine = Quarantine(
        10, lambda language, index: made.append(index) or f"{language}-{index}", max_workers=2, clock=lambda: now[0]
    )
    for name in ("a", "b", "c"):
        quarantine.add("python", name, "test")
    assert metrics.REGISTRY.get_sample_value("fnbox_quarantined_workspaces") == 3
    workers = [quarantine.worker_for("python", name) for name in ("a", "b", "c")]
    assert workers[:2] == ["python-0", "python-1"] and workers[2] in workers[:2]
    assert quarantine.worker_for("python", "d") is None
    now[0] = 11
    assert sorted(quarantine.expire(busy=lambda worker: worker == "python-1")) == ["python-0"]
    assert metrics.REGISTRY.get_sample_value("fnbox_quarantined_workspaces") == 0
    assert quarantine.worker_for("python", "a") is None
