"""Short Python runs on the caller's event-loop thread (sandboxes.python.inline), as a worker runs them."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from fnbox.sandboxes.base import RUN_LABEL, FunctionSource, Limits, Parameter, RunResult
from fnbox.sandboxes.errors import FunctionError, MemoryLimitExceeded, SandboxCrashed, TimeoutExceeded
from fnbox.sandboxes.python import inline
from fnbox.sandboxes.python.executor import thread_name
from fnbox.sandboxes.python.inline import INLINE_AFTER, TICK, InlineRecord, may_wait
from fnbox.sandboxes.python.sandbox import WATCHDOG_GRACE, PythonSandbox, compile_workspace

SHORT = Limits(timeout=0.3, memory=64 * 2**20)
#: random.shuffle loops in host Python code, which has no deadline checks of its own.
HOST_LOOP = "import random\nif n < 0:\n    x = list(range(1000000)) * 4\n    for _ in range(6):\n        random.shuffle(x)\nreturn n"


@pytest.fixture(autouse=True)
def inline_runs(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(inline, "_enabled", False)  # put back after the test
    inline.enable()
    yield


def workspace(**functions: str) -> PythonSandbox:
    return compile_workspace(
        [FunctionSource(name, code, (Parameter("n", has_default=True),)) for name, code in functions.items()]
    )


class Spy:
    """Counts the runs a sandbox hands to a thread (queued for it where its runs cannot wait)."""

    def __init__(self, sandbox: PythonSandbox, monkeypatch: pytest.MonkeyPatch) -> None:
        self.threaded = 0
        for method in ("_run", "_run_queued"):
            monkeypatch.setattr(sandbox, method, self._counted(getattr(sandbox, method)))

    def _counted(self, handed: Any) -> Any:
        async def counted(*args: Any) -> Any:
            self.threaded += 1
            return await handed(*args)

        return counted


async def warm(sandbox: PythonSandbox, function: str = "f", runs: int = INLINE_AFTER) -> None:
    for _ in range(runs):
        await sandbox.run(function, {"n": 1}, SHORT)


def test_short_runs_go_inline_once_they_have_shown_they_are_short(monkeypatch):
    sandbox = workspace(f="return n + 1")
    spy = Spy(sandbox, monkeypatch)

    async def scenario() -> list[RunResult]:
        await warm(sandbox)
        return [await sandbox.run("f", {"n": n}, SHORT) for n in range(20)]

    results = asyncio.run(scenario())
    assert [r.result for r in results] == list(range(1, 21))
    assert spy.threaded == INLINE_AFTER


@pytest.mark.parametrize(
    "code",
    ["import time\nreturn 1", "import requests\nreturn 1", "from urllib import parse\nreturn 1", "import urllib.parse"],
)
def test_a_workspace_that_can_wait_never_runs_inline(code, monkeypatch):
    sandbox = workspace(f="return n", g=code)  # the function run imports nothing: its neighbour may
    spy = Spy(sandbox, monkeypatch)

    async def scenario() -> None:
        await warm(sandbox, runs=INLINE_AFTER + 5)

    asyncio.run(scenario())
    assert spy.threaded == INLINE_AFTER + 5


def test_may_wait_knows_the_modules_that_wait():
    assert may_wait({"time"}) and may_wait({"urllib.request"}) and may_wait({"requests"})
    assert not may_wait({"math", "json", "re", "datetime"})


def test_a_long_run_sends_its_sandbox_back_to_threads_and_one_that_held_the_loop_for_good():
    record = InlineRecord(allowed=True)
    for _ in range(INLINE_AFTER):
        record.ran(0.0001)
    assert record.ready()
    record.ran(0.01)  # not short: back to proving itself
    assert not record.ready()
    for _ in range(INLINE_AFTER):
        record.ran(0.0001)
    assert record.ready()
    record.ran(1.0)  # long on a thread: back to proving itself
    for _ in range(INLINE_AFTER):
        record.ran(0.0001)
    assert record.ready()
    record.ran(1.0, inline=True)  # held a loop too long: never again
    for _ in range(INLINE_AFTER):
        record.ran(0.0001)
    assert not record.ready()
    stopped = InlineRecord(allowed=True)
    stopped.ran(0.0001, stopped=True)  # ended at its timeout or memory cap, wherever it ran
    assert not stopped.allowed


def test_a_hostile_function_short_then_looping_in_user_code_stops_at_its_deadline(monkeypatch):
    sandbox = workspace(f="while n < 0:\n    pass\nreturn n")
    spy = Spy(sandbox, monkeypatch)

    async def scenario() -> tuple[TimeoutExceeded, float, int, RunResult]:
        await warm(sandbox)
        started = time.perf_counter()
        with pytest.raises(TimeoutExceeded) as caught:
            await sandbox.run("f", {"n": -1}, SHORT)
        elapsed = time.perf_counter() - started
        return caught.value, elapsed, spy.threaded, await sandbox.run("f", {"n": 2}, SHORT)

    error, elapsed, threaded, after = asyncio.run(scenario())
    assert threaded == INLINE_AFTER  # the loop ran inline
    assert elapsed < SHORT.timeout + 1.0  # a loop without end, stopped
    assert error.details["line"] in (1, 2) and (error.duration or 0.0) >= SHORT.timeout * 1000
    assert not sandbox.broken and after.result == 2
    assert spy.threaded == INLINE_AFTER + 1  # and its sandbox runs on threads from then on


def test_a_loop_in_host_code_is_interrupted_by_the_watchdog_and_its_sandbox_dropped(monkeypatch):
    sandbox = workspace(f=HOST_LOOP)
    spy = Spy(sandbox, monkeypatch)
    names: list[str] = []
    loop_thread = threading.get_native_id()
    stop = threading.Event()

    def watch_names() -> None:  # as the supervisor does: the loop thread's name, from /proc
        while not stop.is_set():
            with open(f"/proc/self/task/{loop_thread}/comm") as comm:
                names.append(comm.read().strip())
            time.sleep(0.01)

    async def scenario() -> tuple[TimeoutExceeded, float]:
        RUN_LABEL.set("call-42")
        await warm(sandbox)
        watcher = threading.Thread(target=watch_names)
        watcher.start()
        started = time.perf_counter()
        try:
            with pytest.raises(TimeoutExceeded) as caught:
                await sandbox.run("f", {"n": -1}, SHORT)
        finally:
            stop.set()
            watcher.join()
        return caught.value, time.perf_counter() - started

    idle = thread_name()
    error, elapsed = asyncio.run(scenario())
    assert spy.threaded == INLINE_AFTER
    assert elapsed < SHORT.timeout + WATCHDOG_GRACE + TICK + 1.0  # not at the end of the shuffles
    assert "interrupted" in error.message and "dropped" in error.message
    assert sandbox.broken and not sandbox._turns.locked()
    assert "call-42" in names  # the supervisor blames the right run if it stays stuck
    assert thread_name() == idle  # and the thread has its own name back
    with pytest.raises(SandboxCrashed):
        asyncio.run(sandbox.run("f", {"n": 1}, SHORT))


def test_the_loop_stays_usable_after_an_interrupted_inline_run():
    sandbox = workspace(f=HOST_LOOP)

    async def scenario() -> list[Any]:
        await warm(sandbox)
        with pytest.raises(TimeoutExceeded):
            await sandbox.run("f", {"n": -1}, SHORT)
        await asyncio.sleep(2 * TICK)  # no Deadline left pending for this thread
        return [await asyncio.sleep(0.01, n) for n in range(3)]

    assert asyncio.run(scenario()) == [0, 1, 2]


def test_an_inline_run_hands_its_logs_over_as_it_makes_them():
    sandbox = workspace(f="print('one')\nprint('two')\nreturn n")
    seen: list[str] = []

    async def scenario() -> RunResult:
        await warm(sandbox)
        return await sandbox.run("f", {"n": 3}, SHORT, on_log=lambda entry: seen.append(entry["message"]))

    result = asyncio.run(scenario())
    assert seen == ["one", "two"] and [entry["message"] for entry in result.logs] == ["one", "two"]


def test_inline_runs_keep_the_size_guards_and_the_bounded_decimal_context():
    sandbox = workspace(
        f="if n == 2:\n    return 'x' * 10 ** 10\nif n == 3:\n    from decimal import Decimal\n"
        "    return str(Decimal(10) ** 10 ** 9)\nif n == 4:\n    raise ValueError('no')\nreturn n"
    )

    async def scenario() -> list[type[BaseException]]:
        await warm(sandbox)
        raised: list[type[BaseException]] = []
        for n in (2, 3, 4):
            try:
                await sandbox.run("f", {"n": n}, SHORT)
            except (MemoryLimitExceeded, FunctionError) as exc:
                raised.append(type(exc))
        return raised

    assert asyncio.run(scenario()) == [MemoryLimitExceeded, FunctionError, FunctionError]


def test_a_run_while_another_of_its_sandbox_is_on_a_thread_goes_to_a_thread_too(monkeypatch):
    sandbox = workspace(f="return n", slow="x = 0\nfor i in range(100000):\n    x += i\nreturn x")
    spy = Spy(sandbox, monkeypatch)

    async def scenario() -> list[Any]:
        slow = asyncio.ensure_future(sandbox.run("slow", {}, SHORT))  # not proven short yet: on a thread
        await asyncio.sleep(0)
        sandbox._inline.short_runs = INLINE_AFTER  # as if it had been
        results = [await sandbox.run("f", {"n": 5}, SHORT), await slow]
        return [r.result for r in results]

    assert asyncio.run(scenario()) == [5, sum(range(100000))]
    assert spy.threaded == 2


def test_user_code_recurses_as_deep_inline_as_on_a_thread(monkeypatch):
    code = "def r(k):\n    try:\n        return r(k + 1)\n    except RecursionError:\n        return k\nreturn r(0)"
    sandbox = workspace(f=code)
    spy = Spy(sandbox, monkeypatch)

    async def scenario() -> list[int]:
        return [(await sandbox.run("f", {}, SHORT)).result for _ in range(INLINE_AFTER + 2)]

    depths = asyncio.run(scenario())
    assert spy.threaded == INLINE_AFTER
    assert len(set(depths)) == 1, depths
