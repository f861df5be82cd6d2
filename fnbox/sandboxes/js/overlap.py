"""A workspace's JavaScript functions in one isolate, and in more while its runs wait.

An isolate runs one run at a time (its mailbox, logs, `process.env` and timeout are the
run's). A run that waits on the network would hold its workspace's next runs behind it,
so when every isolate of the workspace is busy with a run that waits on an outbound
request or lookup, the next run gets an isolate of its own: a spare one, or a new one
compiled from the same functions (about 10 ms). Runs that compute rather than wait still
take turns in the first isolate, as before: those that may (no live logs, no `process.env`
of their own) queue inside it and go out in batches (see batch.py), the others wait here;
the pool bounds how many runs come at once (FUNCTIONS_CONCURRENCY_PER_SANDBOX).

Each isolate has its own `cache`: the workspace's `cache` is the first isolate's, which
every run uses when runs do not overlap; an overlapping run sees the cache of the isolate
it got (best effort, as a cache is anyway). Isolates beyond the first are closed when a
run ends and more than SPARES of them are idle, or when they break.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable, Mapping, Sequence

from fnbox.sandboxes import loops
from fnbox.sandboxes.base import FunctionSource, JSONValue, Limits, OnLog, RunResult
from fnbox.sandboxes.errors import CompilationError, Overloaded, SandboxCrashed
from fnbox.sandboxes.js.names import NODE_MODULES
from fnbox.sandboxes.js.sandbox import JsSandbox, compile_workspace
from fnbox.sandboxes.network import Egress
from fnbox.sandboxes.pool import QUEUE_WAIT, Requeue

__all__ = ["MAX_ISOLATES", "SPARES", "OverlappingJsSandbox", "compile_overlapping"]

#: Isolates of one workspace at most (each costs a few MB and a thread).
MAX_ISOLATES = 32
#: Idle isolates beyond the first kept for the next overlapping runs.
SPARES = 2
#: Isolates beyond the first of their workspace in this process, all workspaces together:
#: past it, runs wait for an isolate of their workspace, and the worker keeps its memory
#: and CPU for the others (a neighbour's first isolate is never among them).
MAX_SPILLED = 128
_spilled = 0
_spilled_lock = threading.Lock()


def compile_overlapping(
    functions: Sequence[FunctionSource], node_modules: Sequence[str] = NODE_MODULES
) -> OverlappingJsSandbox:
    return OverlappingJsSandbox(compile_workspace(functions, node_modules), functions, node_modules)


class OverlappingJsSandbox:
    """The Sandbox of a JavaScript workspace: its first isolate, and the ones its waiting runs spill to."""

    reaches_network = True
    #: It calls `on_start` once a run has its isolate (see Sandbox).
    reports_start = True
    #: Runs that may overlap: as many as the pool allows (FUNCTIONS_CONCURRENCY_PER_SANDBOX).
    concurrency = MAX_ISOLATES

    def __init__(self, first: JsSandbox, functions: Sequence[FunctionSource], node_modules: Sequence[str]) -> None:
        self._first = first
        self._functions = tuple(functions)
        self._node_modules = tuple(node_modules)
        self._busy: dict[JsSandbox, int] = {}  # isolates with runs, and how many (queued ones too)
        self._spares: list[JsSandbox] = []
        self._count = 1  # isolates, first included
        self._closed = False
        self._waiters: list[asyncio.Future[None]] = []  # runs waiting for an isolate
        self._replacing: asyncio.Future[JsSandbox] | None = None
        first.on_waiting = self._changed_threadsafe

    @property
    def errors(self) -> Mapping[str, CompilationError]:
        return self._first.errors

    @property
    def broken(self) -> bool:
        return self._first.broken

    @broken.setter
    def broken(self, value: bool) -> None:
        self._first.broken = value

    async def run(
        self,
        function: str,
        parameters: Mapping[str, JSONValue],
        limits: Limits,
        *,
        on_log: OnLog | None = None,
        env: Mapping[str, str] | None = None,
        outbound: Egress | None = None,
        on_start: Callable[[], None] | None = None,
        on_wait: Callable[[], None] | None = None,
    ) -> RunResult:
        wait = max(limits.timeout, QUEUE_WAIT)
        loop = loops.running()  # the worker's pinned loop, handed to the layers below (no look-up each)
        deadline = loop.time() + wait
        batchable = on_log is None and not env
        if on_start is not None:
            on_start = _Once(on_start)  # a run given back before it started says so only once
        while True:
            try:
                isolate = self._free_first()
                if isolate is None and batchable and self._first.joinable():
                    isolate = self._first  # it queues there, and goes out in the isolate's next batch
                if isolate is None:
                    isolate = await self._isolate(on_wait, deadline, batchable)
            except TimeoutError:
                raise _overloaded(wait, function) from None
            joined = isolate is self._first and isolate in self._busy  # to wait for its turn in there
            self._busy[isolate] = self._busy.get(isolate, 0) + 1
            if on_start is not None and not joined:
                on_start()
                on_start = None
            try:
                if joined:
                    overdue = (deadline, functools.partial(_overloaded, wait, function))
                    return await isolate.run(
                        function,
                        parameters,
                        limits,
                        on_log=on_log,
                        env=env,
                        outbound=outbound,
                        on_start=on_start,
                        on_wait=on_wait,
                        overdue=overdue,
                        loop=loop,
                    )
                return await isolate.run(
                    function, parameters, limits, on_log=on_log, env=env, outbound=outbound, loop=loop
                )
            except Requeue:
                if self._closed:
                    raise
                on_wait = None  # it never started: another turn (a fresh first isolate if that one broke)
            finally:
                left = self._busy.get(isolate, 1) - 1
                if left > 0:
                    self._busy[isolate] = left
                else:
                    self._busy.pop(isolate, None)
                if isolate is not self._first:
                    self._put_back(isolate)
                self._freed()

    def _free_first(self) -> JsSandbox | None:
        """The first isolate if a run can have it at once (the usual case): no wait to bound."""
        first = self._first
        if first in self._busy or (first.broken and not self._closed):
            return None
        return first

    async def _isolate(self, on_wait: Callable[[], None] | None, deadline: float, batchable: bool = False) -> JsSandbox:
        """The first isolate once it is free; a spare or a new one while every busy one waits on the network.

        TimeoutError at `deadline` (the loop's time). A queued run's wait is bounded by a timer
        on its waiter rather than asyncio.timeout, which costs several times more per run.
        """
        loop = asyncio.get_running_loop()
        while True:
            first = self._first
            if first.broken and not self._closed and first not in self._busy:
                async with asyncio.timeout_at(deadline):
                    await self._replace_first(first)  # a run before this one broke it
                continue
            if first not in self._busy or self._closed or (batchable and first.joinable()):
                return first  # (a closed one answers the run why)
            if self._all_wait():
                if self._spares:
                    return self._spares.pop()
                if self._count < MAX_ISOLATES and _take_spill():
                    try:
                        async with asyncio.timeout_at(deadline):
                            return await self._new_isolate()
                    except BaseException:
                        _give_spill()
                        raise
            if on_wait is not None:
                on_wait()  # queued behind the workspace's other runs: no deadline runs yet
                on_wait = None
            waiter = loop.create_future()
            timer = loop.call_at(deadline, _expire, waiter)
            self._waiters.append(waiter)
            try:
                await waiter
            except BaseException:
                if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                    self._freed()  # woken, but leaving (cancelled): the next run looks instead
                raise
            finally:
                timer.cancel()
                if waiter in self._waiters:
                    self._waiters.remove(waiter)

    async def _replace_first(self, broken: JsSandbox) -> None:
        """A fresh first isolate for the runs that waited behind one that broke (the pool retires
        this sandbox, and sends later runs to a new one; these finish here)."""
        if self._replacing is None:
            self._replacing = asyncio.ensure_future(self._new_isolate())
        replacing = self._replacing
        try:
            fresh = await asyncio.shield(replacing)
        finally:
            if self._replacing is replacing and replacing.done():
                self._replacing = None
        if self._first is broken:
            self._first = fresh
            self._count -= 1  # the broken one
            broken.close()

    async def _new_isolate(self) -> JsSandbox:
        self._count += 1
        try:
            isolate = await asyncio.to_thread(compile_workspace, self._functions, self._node_modules)
        except BaseException:
            self._count -= 1
            raise
        isolate.on_waiting = self._changed_threadsafe
        if self._closed:
            isolate.close()
            self._count -= 1
            raise SandboxCrashed("the JavaScript sandbox was closed", logs=[], duration=0.0)
        return isolate

    def _all_wait(self) -> bool:
        return all(isolate.waiting_on_network() for isolate in self._busy)

    def _freed(self) -> None:
        """A run ended: its isolate can take one more run, so the run waiting longest looks
        again (waking them all would cost each of them a turn of the loop per run)."""
        while self._waiters:
            waiter = self._waiters.pop(0)
            if not waiter.done():
                waiter.set_result(None)
                return

    def _changed(self) -> None:
        """A run began to wait on the network: every run waiting for an isolate looks again
        (each may get one of its own now)."""
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def _changed_threadsafe(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            loop.call_soon_threadsafe(self._changed)
        except RuntimeError:  # the loop is closed
            pass

    def _put_back(self, isolate: JsSandbox) -> None:
        if self._closed or isolate.broken or len(self._spares) >= SPARES:
            self._count -= 1
            _give_spill()
            # Off the loop: closing waits for V8 to free the isolate, which takes a while under load.
            threading.Thread(target=isolate.close, name="fnbox-js-spill-close", daemon=True).start()
        else:
            self._spares.append(isolate)

    def close(self) -> None:
        self._closed = True
        self._first.close()
        for isolate in self._spares:
            isolate.close()
            _give_spill()
        for isolate in self._busy:
            if isolate is not self._first:
                isolate.close()  # its run ends, and puts it back: counted then
        self._spares.clear()


class _Once:
    def __init__(self, call: Callable[[], None]) -> None:
        self._call: Callable[[], None] | None = call

    def __call__(self) -> None:
        call, self._call = self._call, None
        if call is not None:
            call()


def _overloaded(wait: float, function: str) -> Overloaded:
    message = f"waited {wait:g} s for a turn in the workspace's isolates without getting one"
    return Overloaded(message, details={"function": function}, logs=[], duration=0.0)


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


def _take_spill() -> bool:
    global _spilled
    with _spilled_lock:
        if _spilled >= MAX_SPILLED:
            return False
        _spilled += 1
        return True


def _give_spill() -> None:
    global _spilled
    with _spilled_lock:
        _spilled -= 1
