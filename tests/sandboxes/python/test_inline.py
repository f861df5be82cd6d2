"""Short Python runs on the caller's event-loop thread (sandboxes.python.inline), as a worker runs them."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from fnbox.sandboxes.base import RUN_LABEL, FunctionSource, Limits, Parameter, RunResult
from fnbox.sandboxes.errors import FunctionError, MemoryLimitExceeded, TimeoutExceeded
from fnbox.sandboxes.pool import Requeue, SandboxKey, SandboxPool
from fnbox.sandboxes.python import inline
from fnbox.sandboxes.python import sandbox as sandbox_module
from fnbox.sandboxes.python.executor import thread_name
from fnbox.sandboxes.python.inline import (
    INLINE_AFTER,
    INLINE_GRACE,
    INLINE_HOLD,
    MAX_MOVES,
    MOVES_WINDOW,
    TICK,
    InlineRecord,
    may_wait,
)
from fnbox.sandboxes.python.sandbox import WATCHDOG_GRACE, PythonSandbox, compile_workspace

SHORT = Limits(timeout=0.3, memory=64 * 2**20)
#: random.shuffle loops in host Python code, which has no deadline checks of its own.
#: One call of host Python code of a second or more, with no deadline check of user code after its start.
HOST_CALL = "import random\nif n < 0:\n    random.shuffle([0] * 4000000)\nreturn n"


pytestmark = pytest.mark.usefixtures("inline_runs")  # (conftest.py)


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


class Pooled:
    """A workspace's runs through a pool, as a worker makes them: a run given back (Requeue) runs
    again, on a fresh sandbox if its own was dropped. Keeps the sandboxes it made."""

    def __init__(self, **functions: str) -> None:
        self.sources = [
            FunctionSource(name, code, (Parameter("n", has_default=True),)) for name, code in functions.items()
        ]
        self.made: list[PythonSandbox] = []
        self.pool = SandboxPool(factories={"python": self._make}, max_sandboxes=4, idle_timeout=60)

    def _make(self, sources: Any) -> PythonSandbox:
        self.made.append(compile_workspace(sources))
        return self.made[-1]

    async def run(self, n: int, limits: Limits = SHORT) -> RunResult:
        return await self.pool.run(SandboxKey("w", "python", "v1"), self.sources, "f", {"n": n}, limits)

    async def warm(self) -> None:
        for n in range(INLINE_AFTER):
            await self.run(n)

    async def timed_out(self, n: int) -> tuple[TimeoutExceeded, float, float]:
        """A run that times out, the seconds it took, and the longest the loop went without a turn meanwhile."""
        with LoopWatch() as watch:
            await asyncio.sleep(0.01)
            started = time.perf_counter()
            with pytest.raises(TimeoutExceeded) as caught:
                await self.run(n)
            elapsed = time.perf_counter() - started
        return caught.value, elapsed, watch.longest


class LoopWatch:
    """The longest the event loop went without a turn, while it watches: what the calls of
    other workspaces in the same worker would have waited."""

    def __init__(self) -> None:
        self.longest = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _watch(self) -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            self.longest = max(self.longest, now - last)
            last = now

    def __enter__(self) -> LoopWatch:
        self._task = asyncio.get_running_loop().create_task(self._watch())
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self._task is not None
        self._task.cancel()


def test_a_hostile_function_short_then_looping_in_user_code_holds_the_loop_briefly_then_stops_at_its_deadline():
    pooled = Pooled(f="while n < 0:\n    pass\nreturn n")

    async def scenario() -> tuple[tuple[TimeoutExceeded, float, float], RunResult]:
        await pooled.warm()
        assert pooled.made[0]._inline.ready()  # its next run goes inline
        return await pooled.timed_out(-1), await pooled.run(2)

    (error, elapsed, held), after = asyncio.run(scenario())
    assert held < INLINE_HOLD + 0.15, held  # stopped at INLINE_HOLD, not at its timeout (0.3 s)
    assert SHORT.timeout <= elapsed < INLINE_HOLD + SHORT.timeout + 1.0  # then its whole timeout on a thread
    assert error.details["line"] in (1, 2) and (error.duration or 0.0) >= SHORT.timeout * 1000
    sandbox = pooled.made[0]
    assert len(pooled.made) == 1 and not sandbox.broken and after.result == 2
    assert not sandbox._inline.allowed  # its sandbox runs on threads from then on
    assert len(inline._moves) == 1  # counted towards the pause of inline runs


def test_a_loop_in_host_code_is_interrupted_by_the_watchdog_and_run_again_on_a_fresh_sandbox():
    # The run must be in host code (random.shuffle) at INLINE_HOLD. A thread kept off the CPU for
    # that long before it gets there is stopped by its own deadline check instead, and its sandbox
    # is not dropped (one sandbox made, the loop not held): then the scenario is tried again.
    for _ in range(3):
        pooled, names, error, held, elapsed, idle = _host_code_loop_inline()
        if len(pooled.made) > 1 or held >= INLINE_HOLD + INLINE_GRACE + TICK + 0.2:
            break
    assert held < INLINE_HOLD + INLINE_GRACE + TICK + 0.2, held  # not until its timeout (0.3 s) and more
    assert "call-42" in names  # while it held the loop, the supervisor would have blamed the right run
    assert thread_name() == idle  # and the thread has its own name back
    first, fresh = pooled.made  # the interrupted sandbox was dropped; a fresh one ran it on a thread
    assert first.broken and not first._turns.locked()
    assert "did not stop" in error.message and "dropped" in error.message  # as a run thread's watchdog says
    assert elapsed < INLINE_HOLD + INLINE_GRACE + TICK + SHORT.timeout + WATCHDOG_GRACE + 1.0


def _host_code_loop_inline() -> tuple[Pooled, list[str], TimeoutExceeded, float, float, str]:
    """A run looping in host code on the loop's thread: the pool, the loop thread's names seen
    meanwhile, the run's error, the longest the loop was held, the run's time, the thread's name before."""
    pooled = Pooled(f=HOST_CALL)
    names: list[str] = []
    loop_thread = threading.get_native_id()
    stop = threading.Event()

    def watch_names() -> None:  # as the supervisor does: the loop thread's name, from /proc
        while not stop.is_set():
            with open(f"/proc/self/task/{loop_thread}/comm") as comm:
                names.append(comm.read().strip())
            time.sleep(0.01)

    async def scenario() -> tuple[TimeoutExceeded, float, float]:
        RUN_LABEL.set("call-42")
        await pooled.warm()
        watcher = threading.Thread(target=watch_names)
        watcher.start()
        try:
            return await pooled.timed_out(-1)
        finally:
            stop.set()
            watcher.join()

    idle = thread_name()
    error, elapsed, held = asyncio.run(scenario())
    return pooled, names, error, held, elapsed, idle


def test_inline_runs_of_one_turn_name_the_loop_thread_after_each_call_and_give_its_name_back_once(monkeypatch):
    sandbox = workspace(f="return n + 1")
    renames: list[str] = []
    name_thread = sandbox_module.name_thread
    monkeypatch.setattr(sandbox_module, "name_thread", lambda name: (renames.append(name), name_thread(name)))

    async def labelled(n: int) -> RunResult:
        RUN_LABEL.set(f"call-{n}")  # as the worker sets it for each call's task
        return await sandbox.run("f", {"n": n}, SHORT)

    async def scenario() -> list[RunResult]:
        await warm(sandbox)
        renames.clear()
        return await asyncio.gather(*(labelled(n) for n in range(5)))  # their runs in one turn of the loop

    idle = thread_name()
    results = asyncio.run(scenario())
    assert [r.result for r in results] == [1, 2, 3, 4, 5]
    assert renames == ["call-0", "call-1", "call-2", "call-3", "call-4", idle]  # each run under its own call's name
    assert thread_name() == idle


def test_a_loop_closed_before_the_thread_had_its_name_back_keeps_no_later_loop_from_giving_it_back():
    sandbox = workspace(f="return n + 1")

    async def labelled(n: int) -> RunResult:
        RUN_LABEL.set(f"call-{n}")
        return await sandbox.run("f", {"n": n}, SHORT)

    async def run_then_stop() -> None:
        await warm(sandbox)
        await labelled(7)
        asyncio.get_running_loop().stop()  # before the loop's next turn, where the name would come back

    idle = thread_name()
    loop = asyncio.new_event_loop()
    try:
        task = loop.create_task(run_then_stop())
        loop.run_forever()
    finally:
        loop.close()
    assert task.done() and task.exception() is None
    assert thread_name() == "call-7"
    asyncio.run(labelled(8))
    assert thread_name() == idle


def test_the_loop_stays_usable_after_an_interrupted_inline_run():
    sandbox = workspace(f=HOST_CALL)

    async def scenario() -> list[Any]:
        await warm(sandbox)
        with pytest.raises(Requeue):  # the pool runs it again, on a fresh sandbox
            await sandbox.run("f", {"n": -1}, SHORT)
        await asyncio.sleep(2 * TICK)  # no Deadline left pending for this thread
        return [await asyncio.sleep(0.01, n) for n in range(3)]

    assert asyncio.run(scenario()) == [0, 1, 2]
    assert sandbox.broken


def test_a_run_that_goes_long_inline_is_run_again_from_the_start_and_answered_once():
    # Longer than INLINE_HOLD, well within its timeout: its answer and logs are those of one run.
    pooled = Pooled(f="print('start', n)\nx = 0\nif n < 0:\n    for i in range(3000000):\n        x += i\nreturn x")
    limits = Limits(timeout=30.0, memory=64 * 2**20)

    async def scenario() -> RunResult:
        await pooled.warm()
        return await pooled.run(-1, limits)

    result = asyncio.run(scenario())
    assert result.result == sum(range(3000000))
    assert [entry["message"] for entry in result.logs] == ["start -1"]
    assert len(inline._moves) == 1  # it was stopped inline and run again
    assert len(pooled.made) == 1 and not pooled.made[0]._inline.allowed


def test_inline_runs_pause_after_many_were_stopped_at_the_hold(monkeypatch):
    sandbox = workspace(f="return n")  # short: ready to go inline
    spy = Spy(sandbox, monkeypatch)
    clock = [1000.0]
    monkeypatch.setattr(inline, "_clock", lambda: clock[0])

    async def scenario() -> list[int]:
        await warm(sandbox)
        threaded = []
        for _ in range(MAX_MOVES - 1):  # a tenant saving new versions to hold the loop again and again
            inline.moved()
            clock[0] += 1.0
        await sandbox.run("f", {"n": 1}, SHORT)
        threaded.append(spy.threaded)  # not yet paused: inline
        inline.moved()
        await sandbox.run("f", {"n": 1}, SHORT)
        threaded.append(spy.threaded)  # paused: on a thread
        clock[0] += MOVES_WINDOW + 1
        await sandbox.run("f", {"n": 1}, SHORT)
        threaded.append(spy.threaded)  # the pause is over
        return threaded

    assert asyncio.run(scenario()) == [INLINE_AFTER, INLINE_AFTER + 1, INLINE_AFTER + 1]


def test_moves_spread_over_more_than_the_window_never_pause_inline_runs(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(inline, "_clock", lambda: clock[0])
    for _ in range(3 * MAX_MOVES):
        inline.moved()
        clock[0] += MOVES_WINDOW / (MAX_MOVES - 1) + 0.1
    assert not inline.paused()


@pytest.mark.parametrize("code", ["cache['n'] = n\nreturn n", "global seen\nseen = n\nreturn n"])
def test_a_workspace_that_keeps_state_between_runs_never_runs_inline(code, monkeypatch):
    sandbox = workspace(f="return n", g=code)  # the function run keeps nothing: its neighbour may
    spy = Spy(sandbox, monkeypatch)

    async def scenario() -> None:
        for n in range(2 * INLINE_AFTER):
            await sandbox.run("f", {"n": n}, SHORT)

    asyncio.run(scenario())
    assert spy.threaded == 2 * INLINE_AFTER  # a run started again could see what the first attempt left


def test_a_run_whose_logs_are_followed_goes_to_a_thread_and_hands_them_over_as_it_makes_them(monkeypatch):
    sandbox = workspace(f="print('one')\nprint('two')\nreturn n")
    spy = Spy(sandbox, monkeypatch)
    seen: list[str] = []

    async def scenario() -> RunResult:
        await warm(sandbox)
        return await sandbox.run("f", {"n": 3}, SHORT, on_log=lambda entry: seen.append(entry["message"]))

    result = asyncio.run(scenario())
    assert seen == ["one", "two"] and [entry["message"] for entry in result.logs] == ["one", "two"]
    assert spy.threaded == INLINE_AFTER + 1  # entries it had sent could not be taken back were it run again


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
