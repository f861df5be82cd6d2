"""Callbacks due a fixed delay after each is armed, on one timer of the loop.

A timer handle per call (call_later, then cancel when the call moves on first) costs a few
microseconds with uvloop, and most are cancelled before they fire. With one delay for all,
the callbacks fall due in the order they were armed: a queue and one timer, moved on when it
fires, do the same for an append and a flag.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable

__all__ = ["FixedDelay", "Pending"]


class Pending:
    """An armed callback; `cancel` keeps it from running."""

    __slots__ = ("callback", "cancelled")

    def __init__(self, callback: Callable[[], None]) -> None:
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FixedDelay:
    """Run callbacks `delay` s after each is armed (or a little later), on `loop`'s thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop, delay: float) -> None:
        self._loop = loop
        self._delay = delay
        self._queue: collections.deque[tuple[float, Pending]] = collections.deque()
        self._timer: asyncio.TimerHandle | None = None

    def __len__(self) -> int:
        """Callbacks armed and not yet run or dropped (cancelled ones included until their time)."""
        return len(self._queue)

    def arm(self, callback: Callable[[], None]) -> Pending:
        due = self._loop.time() + self._delay
        pending = Pending(callback)
        self._queue.append((due, pending))
        if self._timer is None:
            self._timer = self._loop.call_at(due, self._fire)
        return pending

    def _fire(self) -> None:
        self._timer = None
        queue = self._queue
        now = self._loop.time()
        while queue and (queue[0][0] <= now or queue[0][1].cancelled):
            _, pending = queue.popleft()
            if not pending.cancelled:
                pending.cancelled = True  # runs once
                try:
                    pending.callback()
                except Exception as exc:  # one failing callback must not cost the others theirs
                    self._loop.call_exception_handler({"message": "a delayed callback failed", "exception": exc})
        if queue:
            self._timer = self._loop.call_at(queue[0][0], self._fire)

    def close(self) -> None:
        """Drop every armed callback."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._queue.clear()
