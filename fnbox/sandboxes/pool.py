"""The pool of warm sandboxes: an LRU with idle expiry, keyed by workspace version.

Each sandbox runs one call at a time (its `cache` and logs stay coherent), or, for a
sandbox whose runs can overlap while they wait (its `concurrency`), up to
`concurrency_per_sandbox` at once; callers queue in front of it, up to a bound, and a full
or too slow queue answers Overloaded.
A sandbox leaving the pool (evicted, idle, replaced by a new version, or dropped) is
retired: it is closed as soon as the calls already holding it have finished, so a run
in flight always finishes on the version it started with.

Cancelling the task awaiting `run` cancels the call: one still queued never starts, one
running is stopped by its sandbox (see `Sandbox.run`).
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from cachetools import TTLCache

from fnbox import metrics
from fnbox.sandboxes.base import FunctionSource, JSONValue, Limits, OnLog, RunResult, Sandbox, SandboxFactory
from fnbox.sandboxes.errors import CompilationError, Overloaded
from fnbox.sandboxes.network import Egress

__all__ = [
    "IDLE_TIMEOUT",
    "MAX_QUEUE",
    "MAX_SANDBOXES",
    "Pool",
    "Requeue",
    "SandboxKey",
    "SandboxPool",
    "SourcesMissing",
]

#: Warm sandboxes kept, all languages together, and seconds an idle one stays warm.
MAX_SANDBOXES = 500
IDLE_TIMEOUT = 3600.0
#: Calls queued on or running in one sandbox at once; one more answers Overloaded.
MAX_QUEUE = 64
#: Seconds a call may wait for its turn when its own timeout is shorter: a queue of a few
#: calls of a second must not answer Overloaded (nor on a stop, when calls accepted are all
#: answered within the grace period), and MAX_QUEUE already bounds how many wait.
QUEUE_WAIT = 60.0


class SourcesMissing(Exception):
    """No warm sandbox for a key, and no sources to build one from."""


class Requeue(Exception):
    """A sandbox gave a call back before it started (a run before it broke the sandbox): the
    pool runs it on a fresh sandbox, as it does a call that finds its sandbox broken."""


class SandboxKey(NamedTuple):
    """A workspace version's sandbox of one language (a tuple: hashed and compared in C, on every call)."""

    workspace: str
    language: str
    version: str


class Pool(Protocol):
    """What the Runtime needs of a pool: this in-process one, or workers.WorkerPool."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def compile(
        self, key: SandboxKey, sources: Sequence[FunctionSource], *, keep_on_error: bool = False
    ) -> Mapping[str, CompilationError]: ...

    async def run(
        self,
        key: SandboxKey,
        sources: Sequence[FunctionSource],
        function: str,
        parameters: Mapping[str, JSONValue],
        limits: Limits,
        *,
        on_log: OnLog | None = None,
        env: Mapping[str, str] | None = None,
        egress: Sequence[str] | None = None,
    ) -> RunResult: ...

    async def drop(self, workspace: str) -> None: ...


#: Runs of one sandbox that may overlap, when its language allows it.
CONCURRENCY_PER_SANDBOX = 32


@dataclass(eq=False)
class _Entry:
    sandbox: Sandbox
    #: A turn to run: one, or as many as the sandbox can overlap (see SandboxPool).
    lock: asyncio.Semaphore = field(default_factory=asyncio.Semaphore)
    holders: int = 0  # calls queued on or running in this sandbox
    retired: bool = False
    touched: float = float("-inf")  # when a use last restarted its idle clock

    def retire(self) -> None:
        self.retired = True
        if self.holders == 0:
            self.sandbox.close()


class _WarmSandboxes(TTLCache[SandboxKey, "_Entry"]):
    """cachetools' TTLCache, retiring what it evicts or lets expire."""

    def popitem(self) -> tuple[SandboxKey, _Entry]:
        key, entry = super().popitem()
        entry.retire()
        return key, entry

    def expire(self, time: float | None = None) -> list[tuple[SandboxKey, _Entry]]:
        expired = super().expire(time)
        for _, entry in expired:
            entry.retire()
        return expired


class SandboxPool:
    """Warm sandboxes of every language, built by `factories` (language -> factory).

    Only plain data crosses this interface (sources in, results and errors out), so a
    pool that keeps its sandboxes in worker processes can stand in for this one.
    """

    def __init__(
        self,
        *,
        factories: Mapping[str, SandboxFactory],
        max_sandboxes: int,
        idle_timeout: float,
        max_queue: int = MAX_QUEUE,
        queue_wait: float = QUEUE_WAIT,
        clock: Callable[[], float] = time.monotonic,
        egress: Egress | None = None,
        concurrency_per_sandbox: int = CONCURRENCY_PER_SANDBOX,
    ) -> None:
        self.max_queue = max_queue
        self.queue_wait = queue_wait
        #: Outbound access of the runs (None: their sandboxes get none).
        self.egress = egress
        self.concurrency_per_sandbox = concurrency_per_sandbox
        self._factories = dict(factories)
        #: A use restarts a sandbox's idle clock at most this often (a TTLCache insert costs
        #: microseconds): kept warm up to that much longer, never dropped sooner.
        self._touch_every = min(1.0, idle_timeout / 8)
        self._clock = clock
        self._warm = _WarmSandboxes(maxsize=max_sandboxes, ttl=idle_timeout + self._touch_every, timer=clock)
        self._building: dict[SandboxKey, asyncio.Future[_Entry]] = {}
        self._sweep_interval = min(max(idle_timeout / 4, 0.05), 30.0)
        self._sweeper: asyncio.Task[None] | None = None
        metrics.watch_pool(self)

    def warm_load(self) -> list[tuple[str, int]]:
        """(language, calls queued on or running in it) of each warm sandbox, for the metrics."""
        return [(key.language, entry.holders) for key, entry in list(self._warm.items())]

    def __contains__(self, key: SandboxKey) -> bool:
        return key in self._warm

    def __len__(self) -> int:
        return len(self._warm)

    async def compile(
        self, key: SandboxKey, sources: Sequence[FunctionSource], *, keep_on_error: bool = False
    ) -> Mapping[str, CompilationError]:
        """Compile a workspace version and make it the warm one; return its compile errors.

        With errors, the new version is kept only if `keep_on_error` (its other functions
        then run); otherwise the version already warm stays in place.
        """
        sandbox = await self._compiled(key, sources)
        if sandbox.errors and not keep_on_error:
            sandbox.close()
            return sandbox.errors
        self._retire_where(lambda other: other.workspace == key.workspace and other.language == key.language)
        self._warm[key] = self._new_entry(sandbox)
        return sandbox.errors

    async def start(self) -> None:
        """Start dropping idle sandboxes in the background."""
        if self._sweeper is None:
            self._sweeper = asyncio.create_task(self._sweep_idle())

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        self._retire_where(lambda key: True)

    async def drop(self, workspace: str) -> None:
        self._retire_where(lambda key: key.workspace == workspace)

    def sweep(self) -> None:
        """Retire the sandboxes idle for longer than the idle timeout."""
        self._warm.expire()

    async def _sweep_idle(self) -> None:
        while True:
            await asyncio.sleep(self._sweep_interval)
            self.sweep()

    async def run(
        self,
        key: SandboxKey,
        sources: Sequence[FunctionSource],
        function: str,
        parameters: Mapping[str, JSONValue],
        limits: Limits,
        *,
        on_log: OnLog | None = None,
        on_start: Callable[[], None] | None = None,
        env: Mapping[str, str] | None = None,
        on_wait: Callable[[], None] | None = None,
        egress: Sequence[str] | None = None,
    ) -> RunResult:
        """Run on the warm sandbox for `key`, compiling `sources` if there is none.

        `on_log` gets the run's log entries as they are made (see `Sandbox.run`);
        `on_start` is called when the run gets its turn (after compiling and queueing),
        `on_wait` when it has to wait for it behind another call; `egress` is the
        workspace's list narrowing the pool's egress policy.
        """
        extra: dict[str, Any] = {}
        if env:  # only then: a sandbox of a language without secrets need not take it
            extra["env"] = env
        outbound = None if self.egress is None else self.egress.for_workspace(egress)
        while True:
            entry = await self._entry(key, sources)
            if entry.holders >= self.max_queue:
                raise Overloaded(
                    f"{entry.holders} calls are already waiting for workspace {key.workspace!r}; try again later",
                    details={"workspace": key.workspace, "queued": entry.holders},
                )
            entry.holders += 1
            try:
                arrived = time.perf_counter()
                if entry.lock.locked():
                    await self._acquire(entry, key, max(limits.timeout, self.queue_wait), on_wait)
                else:
                    await entry.lock.acquire()  # free: taken at once, without a turn of the loop
                try:
                    if entry.sandbox.broken:
                        continue  # a call before this one wedged it: take a fresh one
                    if on_start is not None and getattr(entry.sandbox, "reports_start", False):
                        # Its runs may still wait inside it: the wait ends when it says they start.
                        extra["on_start"] = functools.partial(_started, key.language, arrived, on_start)
                        if on_wait is not None:
                            extra["on_wait"] = on_wait
                    else:  # without a caller to tell, no report from the sandbox's thread: a wake-up less
                        _started(key.language, arrived, on_start)
                    if outbound is not None and getattr(entry.sandbox, "reaches_network", False):
                        extra["outbound"] = outbound
                    try:
                        return await entry.sandbox.run(function, parameters, limits, on_log=on_log, **extra)
                    except Requeue:
                        continue
                finally:
                    entry.lock.release()
                    if entry.sandbox.broken:
                        self._retire(key, entry)
            finally:
                entry.holders -= 1
                if entry.retired and entry.holders == 0:
                    entry.sandbox.close()

    def run_now(
        self,
        key: SandboxKey,
        function: str,
        parameters: Mapping[str, JSONValue],
        limits: Limits,
        *,
        label: str | None,
        on_start: Callable[[], None] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> RunResult | None:
        """The run made at once, without awaiting, on a warm sandbox that no other call is using
        and that can make it so (its `run_now`: see Sandbox); None, with nothing done, otherwise:
        then `run` makes it. Raises what `run` would.

        Nothing else on this loop runs meanwhile, so the sandbox's turn needs no taking. `label`
        names the run, as RUN_LABEL does for `run`'s callers.
        """
        entry = self._warm_entry(key)
        if entry is None or entry.holders or entry.sandbox.broken:
            return None
        run_now = getattr(entry.sandbox, "run_now", None)
        if run_now is None:
            return None
        entry.holders += 1
        try:
            started = functools.partial(_started, key.language, time.perf_counter(), on_start)
            result: RunResult | None = run_now(
                function, parameters, limits, label=label, env=env or None, on_start=started
            )
            return result
        except Requeue:
            return None  # stopped before its timeout: `run` makes it again from the start
        finally:
            entry.holders -= 1
            if entry.sandbox.broken:
                self._retire(key, entry)
            if entry.retired and entry.holders == 0:
                entry.sandbox.close()

    @staticmethod
    async def _acquire(entry: _Entry, key: SandboxKey, wait: float, on_wait: Callable[[], None] | None) -> None:
        """A turn on a sandbox whose turns are all taken: wait for one, at most `wait` s."""
        if on_wait is not None:
            on_wait()
        # Not wait_for: on Python 3.11 it swallows a cancel that comes as the lock is granted.
        try:
            async with asyncio.timeout(wait):
                await entry.lock.acquire()
        except TimeoutError:
            raise Overloaded(
                f"waited {wait:g} s for workspace {key.workspace!r} without getting a turn",
                details={"workspace": key.workspace},
            ) from None

    def _retire(self, key: SandboxKey, entry: _Entry) -> None:
        if self._warm.get(key) is entry:
            del self._warm[key]
        entry.retired = True

    def _warm_entry(self, key: SandboxKey) -> _Entry | None:
        """The warm sandbox of `key`, used now, or None."""
        try:
            entry = self._warm[key]
        except KeyError:
            return None
        now = self._clock()
        if now - entry.touched >= self._touch_every:
            entry.touched = now
            self._warm[key] = entry  # a use restarts its idle clock
        return entry

    async def _entry(self, key: SandboxKey, sources: Sequence[FunctionSource]) -> _Entry:
        entry = self._warm_entry(key)
        if entry is not None:
            return entry
        building = self._building.get(key)
        if building is None and not sources:
            # A worker's caller sends no sources while the sandbox is warm; it may have been
            # replaced since (broken by a run before this one): ask for them, never build empty.
            raise SourcesMissing(key)
        if building is None:
            # A task of its own: a caller cancelled meanwhile cancels neither the build nor the
            # other callers waiting for it.
            building = asyncio.ensure_future(self._build(key, sources))
            building.add_done_callback(_retrieve)
            self._building[key] = building
        return await asyncio.shield(building)

    async def _build(self, key: SandboxKey, sources: Sequence[FunctionSource]) -> _Entry:
        try:
            sandbox = await self._compiled(key, sources)
        finally:
            del self._building[key]
        entry = self._new_entry(sandbox)
        self._warm[key] = entry
        return entry

    def _new_entry(self, sandbox: Sandbox) -> _Entry:
        # A sandbox says how many of its runs may overlap (they take turns in its code and
        # overlap only while they wait); by default one at a time.
        overlap = min(self.concurrency_per_sandbox, getattr(sandbox, "concurrency", 1))
        return _Entry(sandbox, asyncio.Semaphore(max(1, overlap)), touched=self._clock())

    async def _compiled(self, key: SandboxKey, sources: Sequence[FunctionSource]) -> Sandbox:
        """A new sandbox of `sources`, counted and timed in the compile metrics."""
        with metrics.timed() as took:
            sandbox: Sandbox = await asyncio.to_thread(self._factories[key.language], sources)
        metrics.COMPILES.labels(key.language, "error" if sandbox.errors else "ok").inc()
        metrics.COMPILE_DURATION.labels(key.language).observe(took.seconds)
        return sandbox

    def _retire_where(self, matches: Callable[[SandboxKey], Any]) -> None:
        self._warm.expire()
        for key in [key for key in list(self._warm.keys()) if matches(key)]:
            entry = self._warm.pop(key, None)
            if entry is not None:
                entry.retire()


def _started(language: str, arrived: float, on_start: Callable[[], None] | None) -> None:
    """A run starts: how long it waited for its sandbox goes to the metrics, then its caller is told."""
    metrics.SANDBOX_WAIT.series(language).add(time.perf_counter() - arrived)
    if on_start is not None:
        on_start()


def _retrieve(building: asyncio.Future[_Entry]) -> None:
    """Mark a failed build's error as seen: every caller waiting for it may have gone."""
    if not building.cancelled():
        building.exception()
