"""The calls of a sandbox that cannot wait, queued for the one thread that runs them in turn.

A workspace none of whose functions can wait (inline.may_wait) runs one call at a time. Its
calls queue here on the event loop, holding no thread, and one thread takes them one after
the other (a drain): between two runs there is no wake-up of another thread, no turn of the
loop and no second hand-off, which cost a worker more than a short run itself. Each run still
gets its own deadline, limits, thread name and 'started' report when it starts, and its
outcome goes back to its caller as soon as it ends.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fnbox.sandboxes.base import Limits
from fnbox.sandboxes.python.turns import Run


@dataclass(eq=False, slots=True)
class Queued:
    """One call waiting in a sandbox's queue."""

    future: asyncio.Future[Any]
    job: Run
    name: str
    entry: tuple[Callable[..., Any], tuple[str, ...]]
    parameters: Mapping[str, Any]
    limits: Limits
    since: float  # perf_counter() when it was queued


class RunQueue:
    """The queue and whether a thread drains it; `lock` is the sandbox's thread lock.

    A list, not a deque: every warm sandbox has one, mostly empty, and it holds a few calls
    at most (the pool lets FUNCTIONS_CONCURRENCY_PER_SANDBOX in at once).
    """

    __slots__ = ("_calls", "_lock", "draining")

    def __init__(self, lock: threading.Lock) -> None:
        self._lock = lock
        self._calls: list[Queued] = []
        self.draining = False

    def put(self, call: Queued) -> bool:
        """Queue a call; True if no thread drains the queue (the caller starts one)."""
        with self._lock:
            self._calls.append(call)
            call.job.queued = self.draining  # behind another run: its deadline starts with its turn
            if self.draining:
                return False
            self.draining = True
            return True

    def take(self, on_empty: Callable[[], None]) -> Queued | None:
        """The next call still awaited, or None once the queue is empty (the drain ends, after `on_empty`)."""
        with self._lock:
            while self._calls:
                call = self._calls.pop(0)
                if not call.future.done():  # not cancelled, nor answered by its watchdog
                    return call
            on_empty()
            self.draining = False
            return None

    def stop(self) -> None:
        """The thread draining the queue leaves it (no thread could be started, say)."""
        with self._lock:
            self.draining = False

    def clear(self) -> list[Queued]:
        """Take every queued call out, to be answered otherwise."""
        with self._lock:
            calls, self._calls = self._calls, []
            return calls

    def __len__(self) -> int:
        return len(self._calls)
