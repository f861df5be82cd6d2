"""Runs of one Python sandbox that overlap while they wait.

The runs of a sandbox share its module namespace, whose `_deadline_`, `env`, log sink and
size budget are those of the run that holds the sandbox's turn: user code runs one run at
a time. A run that waits (an outbound request, `time.sleep`) gives its turn up meanwhile
and takes it back after, putting its own state back in place, so the runs of a workspace
overlap where they wait and never where they run code. While it waits its thread does not
count against the threads that run code (executor.blocking), so a wait holds up neither
the other runs of its workspace nor those of other workspaces.

Code running for a run finds it with `current()` (its thread is its own until it ends).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from time import perf_counter
from types import MappingProxyType
from typing import Any

from fnbox.sandboxes.base import LiveLog, LogCollector
from fnbox.sandboxes.network import Egress
from fnbox.sandboxes.outbound import OutboundError, OutboundResponse, OutboundSession, OutboundTimeout
from fnbox.sandboxes.python.executor import executor
from fnbox.sandboxes.python.guards import Deadline
from fnbox.sandboxes.python.sizes import Budget

__all__ = ["FairTurn", "Run", "Turns", "current", "set_current"]

#: Seconds a wait on the network may pass the run's deadline by, so that the run's own
#: Deadline, not the request's timeout, is what ends a run out of time.
TURN_SLICE = 0.05
#: Seconds past its deadline a run waits for its turn before the sandbox is given up on.
TURN_GRACE = 1.0

_local = threading.local()


def current() -> Run | None:
    """The run this thread is running, if any."""
    run: Run | None = getattr(_local, "run", None)
    return run


class Run:
    """One run of a sandbox, as its caller's loop and its thread share it (under the sandbox's thread lock)."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        live: LiveLog | None,
        label: str | None,
        memory: int,
        env: Mapping[str, str] | None = None,
        outbound: Egress | None = None,
    ) -> None:
        self.loop = loop
        self.live = live
        self.collector = LogCollector(live=live)
        self.env = MappingProxyType(dict(env or {}))  # `env` of the run: read-only
        self.label = label  # the name its thread takes while it runs (sandboxes.base.RUN_LABEL)
        self.memory = memory
        self.outbound = outbound
        self.thread_id: int | None = None  # while its thread runs it
        self.started = 0.0
        self.deadline = 0.0  # perf_counter() past which it stops
        self.cancelled = False
        self.interrupted = False  # Deadline raised into its thread from outside
        self.has_turn = False
        self.away = False  # gave its turn up to wait
        self.ended = False  # its caller is done with it: no new request starts
        self.session: OutboundSession | None = None
        self.pending: set[concurrent.futures.Future[Any]] = set()
        self.turns: Turns | None = None
        #: Told (on the caller's loop) when the run gets the sandbox's turn, and if it has to wait for it.
        self.on_start: Callable[[], None] | None = None
        self.on_wait: Callable[[], None] | None = None
        self.queued = False  # waiting for its first turn

    # On its thread.

    @contextlib.contextmanager
    def waiting(self) -> Iterator[None]:
        """Give the sandbox's turn up for the block, take it back after; raise Deadline if the run is out of time."""
        turns = self.turns
        if turns is None or not self.has_turn:
            yield
            return
        turns.give(self, waiting=True)
        with executor().blocking():
            try:
                yield
            finally:
                turns.take_back(self)
        if perf_counter() > self.deadline:
            raise Deadline

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Sequence[tuple[str, str]] = (),
        body: bytes = b"",
        redirect: str = "follow",
        timeout: float | None = None,
    ) -> OutboundResponse:
        """Send an outbound request through the run's session, on its loop, waiting outside the turn."""
        if self.outbound is None:
            raise OutboundError("outbound requests are not available in this sandbox")
        coroutine = self._request(method, url, headers, body, redirect, timeout)
        try:
            future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        except RuntimeError:  # the loop is closed: the worker is stopping
            coroutine.close()
            raise Deadline from None
        self.pending.add(future)
        try:
            with self.waiting():
                left = self.deadline - perf_counter()
                try:
                    return future.result(timeout=max(left, 0.0) + TURN_SLICE)
                except (concurrent.futures.TimeoutError, concurrent.futures.CancelledError):
                    future.cancel()
                    raise Deadline from None
                except OutboundTimeout as exc:
                    if exc.run_ended:  # cut at the run's deadline: the run ends there, its code does not go on
                        raise Deadline from None
                    raise
        finally:
            self.pending.discard(future)

    # On the loop.

    async def _request(
        self,
        method: str,
        url: str,
        headers: Sequence[tuple[str, str]],
        body: bytes,
        redirect: str,
        timeout: float | None,
    ) -> OutboundResponse:
        if self.ended:
            raise OutboundError("the run is over")
        if self.session is None:
            assert self.outbound is not None
            # A little after the run's own: the run's Deadline, not the request's timeout, ends a run out of time.
            deadline = time.monotonic() + (self.deadline - perf_counter()) + 2 * TURN_SLICE
            self.session = self.outbound.session(deadline=deadline, on_log=self._log_request)
        return await self.session.request(method, url, headers=headers, body=body, redirect=redirect, timeout=timeout)

    def _log_request(self, message: str) -> None:
        self.collector.add("debug", message)

    def cancel_requests(self) -> None:
        """Cancel the requests the run waits for (from any thread): its wait ends at once."""
        for future in list(self.pending):
            future.cancel()

    async def end(self) -> None:
        """The run is over: cancel and close what it left open."""
        self.ended = True
        self.cancel_requests()
        if self.session is not None:
            session, self.session = self.session, None
            with contextlib.suppress(Exception):
                await session.aclose()


class Turns:
    """The turn of one sandbox: which run's state its namespace holds."""

    def __init__(
        self,
        namespace: dict[str, Any],
        budget: Budget,
        set_collector: Callable[[LogCollector], None],
        thread_lock: threading.Lock,
        on_stuck: Callable[[], None],
    ) -> None:
        self._namespace = namespace
        self._budget = budget
        self._set_collector = set_collector
        self._thread_lock = thread_lock  # the sandbox's lock over its runs' shared fields
        self._on_stuck = on_stuck
        self._lock = FairTurn()
        self.holder: Run | None = None

    def locked(self) -> bool:
        """Whether a run holds the turn."""
        return self._lock.locked()

    def try_take(self, run: Run) -> bool:
        """A run's first turn if it is free now; its state is put in place by `install`."""
        if not self._lock.acquire(timeout=0.0):
            return False
        run.turns = self
        run.has_turn = True
        return True

    def take(self, run: Run, timeout: float) -> bool:
        """A run's first turn, within `timeout` seconds; its state is put in place by `install`."""
        run.turns = self
        if not self._lock.acquire(timeout=0.0):
            run.queued = True  # behind the workspace's other runs: no deadline runs yet
            if run.on_wait is not None:
                try:
                    run.loop.call_soon_threadsafe(run.on_wait)
                except RuntimeError:  # the caller's loop is closed
                    pass
            with executor().blocking():
                if not self._lock.acquire(timeout=timeout):
                    run.queued = False
                    return False
        run.has_turn = True
        return True

    def install(self, run: Run) -> None:
        """Make the namespace the run's (under the thread lock, with the turn held)."""
        run.has_turn = True
        run.away = False
        run.queued = False
        self.holder = run
        self._namespace["_deadline_"] = run.deadline
        self._namespace["env"] = run.env
        self._set_collector(run.collector)
        self._budget.set_memory(run.memory)

    def give(self, run: Run, *, waiting: bool = False) -> None:
        with self._thread_lock:
            if not run.has_turn:
                return
            run.has_turn = False
            run.away = waiting
            self.holder = None
            self._namespace["_deadline_"] = 0.0
        self._lock.release()

    def take_back(self, run: Run) -> None:
        """Take the turn back after a wait; a turn that does not come (its holder is stuck) drops the sandbox."""
        give_up = max(run.deadline, perf_counter()) + TURN_GRACE
        if not self._lock.acquire(timeout=give_up - perf_counter(), returning=True):
            with self._thread_lock:
                run.away = False
            self._on_stuck()
            raise Deadline
        with self._thread_lock:
            self.install(run)


class FairTurn:
    """A lock handed over in order: runs coming back from a wait first, then new runs, each
    first come first served (a plain lock lets a busy workspace's newest run starve its oldest)."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._held = False
        self._returning: deque[threading.Event] = deque()
        self._new: deque[threading.Event] = deque()

    def locked(self) -> bool:
        return self._held

    def acquire(self, *, timeout: float, returning: bool = False) -> bool:
        with self._mutex:
            if not self._held and not self._returning and not self._new:
                self._held = True
                return True
            if timeout <= 0:
                return False
            waiter = threading.Event()
            (self._returning if returning else self._new).append(waiter)
        if waiter.wait(timeout):
            return True
        with self._mutex:
            queue = self._returning if returning else self._new
            if waiter in queue:
                queue.remove(waiter)
                return False
        return True  # handed over as the wait ended

    def release(self) -> None:
        with self._mutex:
            queue = self._returning or self._new
            if queue:
                queue.popleft().set()  # the turn passes straight to it: still held
            else:
                self._held = False


def set_current(run: Run | None) -> None:
    _local.run = run
