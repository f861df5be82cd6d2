"""Calls of a Python sandbox whose runs cannot wait, queued in it and run in turn by one thread."""

from __future__ import annotations

import asyncio
import functools
import os
import threading
from collections.abc import Callable
from typing import Any

import pytest

from fnbox.sandboxes.base import RUN_LABEL, FunctionSource, Limits, Parameter
from fnbox.sandboxes.errors import TimeoutExceeded
from fnbox.sandboxes.pool import SandboxKey, SandboxPool
from fnbox.sandboxes.python import executor as executor_module
from fnbox.sandboxes.python.sandbox import PythonSandbox, compile_workspace
from fnbox.sandboxes.supervisor import _thread_cpu_ticks

#: A busy loop of `n` seconds that imports no module through which a run could wait.
BUSY = (
    "import datetime\n"
    "end = datetime.datetime.now() + datetime.timedelta(seconds=n)\n"
    "while datetime.datetime.now() < end:\n"
    "    pass\n"
)
COUNT = "cache['n'] = cache.get('n', 0) + 1\nreturn cache['n']"
#: random.shuffle loops in host Python code, which has no deadline checks of its own.
HOST_LOOP = "import random\nx = list(range(1000000)) * 4\nwhile True:\n    random.shuffle(x)"


def workspace(**functions: str) -> PythonSandbox:
    return compile_workspace(
        [FunctionSource(name, code, (Parameter("n", has_default=True, default=0),)) for name, code in functions.items()]
    )


def limits(timeout: float) -> Limits:
    return Limits(timeout=timeout, memory=64 << 20)


def labelled(
    label: str,
    sandbox: PythonSandbox,
    function: str,
    n: Any,
    timeout: float,
    on_start: Callable[[], None] | None = None,
) -> asyncio.Task[Any]:
    """A task running one call, its thread named `label` while it runs (as a worker names them)."""

    async def call() -> Any:
        RUN_LABEL.set(label)
        return await sandbox.run(function, {"n": n}, limits(timeout), on_start=on_start)

    return asyncio.create_task(call())


def test_runs_that_cannot_wait_queue_in_the_sandbox_and_share_one_thread():
    sandbox = workspace(f=COUNT)
    assert sandbox._queue is not None and workspace(f="import time\nreturn 1")._queue is None
    threads: set[int] = set()
    original = sandbox._run_sync

    def spy(*args: Any) -> Any:
        threads.add(threading.get_ident())
        return original(*args)

    sandbox._run_sync = spy  # type: ignore[method-assign]

    async def main() -> list[Any]:
        outcomes = await asyncio.gather(*(sandbox.run("f", {}, limits(2)) for _ in range(32)))
        return [outcome.result for outcome in outcomes]

    assert sorted(asyncio.run(main())) == list(range(1, 33))
    assert len(threads) <= 2  # a drain, and maybe the next one started as it ended


def test_each_queued_run_has_its_own_deadline_from_its_own_start():
    """Three runs of 0.3 s with a timeout of 0.6 s each, queued together: the last ends 0.9 s after it was queued."""
    sandbox = workspace(busy=BUSY + "return n", loop="while True:\n    pass")

    async def main() -> list[Any]:
        busy = [sandbox.run("busy", {"n": 0.3}, limits(0.6)) for _ in range(3)]
        looping = sandbox.run("loop", {}, limits(0.3))
        after = sandbox.run("busy", {"n": 0}, limits(0.6))  # queued behind the one that times out
        return await asyncio.gather(*busy, looping, after, return_exceptions=True)

    *busy, looping, after = asyncio.run(main())
    assert [outcome.result for outcome in busy] == [0.3] * 3
    assert isinstance(looping, TimeoutExceeded)
    assert after.result == 0
    assert not sandbox.broken  # the loop's own deadline check stopped it


def test_a_queued_call_cancelled_before_its_turn_never_starts():
    sandbox = workspace(busy=BUSY, count=COUNT)

    async def main() -> int:
        busy = asyncio.create_task(sandbox.run("busy", {"n": 0.3}, limits(2)))
        await asyncio.sleep(0.05)
        queued = asyncio.create_task(sandbox.run("count", {}, limits(2)))
        behind = asyncio.create_task(sandbox.run("count", {}, limits(2)))
        await asyncio.sleep(0.05)
        assert len(sandbox._queue or ()) == 2  # both wait in the sandbox, on no thread
        queued.cancel()
        with pytest.raises(asyncio.CancelledError):
            await queued
        await busy
        assert (await behind).result == 1  # the one behind the cancelled call still runs
        return int((await sandbox.run("count", {}, limits(2))).result)

    assert asyncio.run(main()) == 2


def test_the_thread_bears_the_name_of_the_run_it_runs_and_no_other():
    """What the supervisor reads in /proc to blame a frozen worker's run (see supervisor._culprit)."""
    sandbox = workspace(busy=BUSY + "return n")

    async def main() -> tuple[list[tuple[int, set[int]]], set[int]]:
        started: asyncio.Queue[int] = asyncio.Queue()
        tasks = [
            labelled(f"call-{index}", sandbox, "busy", 0.5, 3, functools.partial(started.put_nowait, index))
            for index in (101, 102, 103)
        ]
        seen = []
        for _ in range(3):
            index = await started.get()  # sampled while that run is certainly under way
            await asyncio.sleep(0.05)
            seen.append((index, set(_thread_cpu_ticks(os.getpid()))))
        await asyncio.gather(*tasks)
        # The last answer leaves before the drain ends: the thread takes its idle name right after.
        for _ in range(100):
            if not _thread_cpu_ticks(os.getpid()):
                break
            await asyncio.sleep(0.01)
        return seen, set(_thread_cpu_ticks(os.getpid()))

    seen, after = asyncio.run(main())
    assert [index for index, _ in seen] == [101, 102, 103]  # in the order they were queued
    assert [names for _, names in seen] == [{101}, {102}, {103}]
    assert after == set()  # idle again
    assert not [name for name in _thread_names() if name.startswith("call-")]


def test_calls_queued_behind_a_run_that_broke_the_sandbox_run_on_a_fresh_one():
    """A run stuck in host code is interrupted and its sandbox dropped; the calls queued behind it are not lost."""
    sources = [
        FunctionSource("stuck", HOST_LOOP),
        FunctionSource("count", COUNT),
    ]

    async def main() -> tuple[Any, list[Any], int]:
        pool = SandboxPool(
            factories={"python": lambda sources: compile_workspace(sources)}, max_sandboxes=4, idle_timeout=60
        )
        key = SandboxKey("w", "python", "v1")
        try:
            stuck = asyncio.create_task(pool.run(key, sources, "stuck", {}, limits(0.3)))
            await asyncio.sleep(0.1)
            queued = [asyncio.create_task(pool.run(key, sources, "count", {}, limits(0.3))) for _ in range(3)]
            stuck_outcome = await asyncio.gather(stuck, return_exceptions=True)
            outcomes = await asyncio.gather(*queued)
            return stuck_outcome[0], [outcome.result for outcome in outcomes], len(pool)
        finally:
            await pool.close()

    stuck, counts, warm = asyncio.run(main())
    assert isinstance(stuck, TimeoutExceeded)
    assert counts == [1, 2, 3]  # on a fresh sandbox, whose cache starts empty
    assert warm == 1


def _thread_names() -> list[str]:
    names = []
    for thread in os.listdir("/proc/self/task"):
        with open(f"/proc/self/task/{thread}/comm") as comm:
            names.append(comm.read().strip())
    return names


def test_a_drain_lets_another_sandbox_have_its_thread_between_two_runs(monkeypatch):
    """With every thread taken, a workspace with a long queue does not keep its thread until the queue is empty."""
    monkeypatch.setattr(executor_module, "_executor", executor_module.Executor(max_threads=1))
    busy, other = workspace(busy=BUSY + "return n"), workspace(f="return n")

    async def main() -> list[str]:
        order: list[str] = []

        async def call(sandbox: PythonSandbox, function: str, n: Any, name: str) -> None:
            await sandbox.run(function, {"n": n}, limits(2))
            order.append(name)

        queue = [asyncio.create_task(call(busy, "busy", 0.1, f"busy{index}")) for index in range(4)]
        await asyncio.sleep(0.05)  # the first busy run holds the only thread
        await asyncio.gather(*queue, call(other, "f", 1, "other"))
        return order

    assert asyncio.run(main()) == ["busy0", "other", "busy1", "busy2", "busy3"]


def test_the_wait_metric_counts_each_run_once_with_its_wait_in_the_sandbox():
    from fnbox import metrics

    def sample(name: str) -> float:
        value = metrics.REGISTRY.get_sample_value(f"fnbox_sandbox_wait_seconds_{name}", {"language": "python"})
        return value or 0.0

    sources = [FunctionSource("busy", BUSY + "return n", (Parameter("n"),))]

    async def main() -> None:
        pool = SandboxPool(
            factories={"python": lambda sources: compile_workspace(sources)}, max_sandboxes=4, idle_timeout=60
        )
        key = SandboxKey("metered", "python", "v1")
        try:
            calls = (pool.run(key, sources, "busy", {"n": 0.1}, limits(2), on_start=lambda: None) for _ in range(3))
            await asyncio.gather(*calls)  # told when each starts, as a worker's calls are
        finally:
            await pool.close()

    count, total = sample("count"), sample("sum")
    asyncio.run(main())
    assert sample("count") == count + 3
    assert sample("sum") - total >= 0.1 + 0.2  # the second waited for the first, the third for both
