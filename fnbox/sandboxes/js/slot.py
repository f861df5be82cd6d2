"""A lock for runs of one sandbox, which may come from different event loops."""

from __future__ import annotations

import asyncio
import threading
from collections import deque

__all__ = ["RunSlot"]


class RunSlot:
    """One run at a time, first come first served, from any loop or thread.

    asyncio.Lock belongs to one loop; the pool serialises runs already, so this only
    keeps overlapping callers from corrupting a sandbox, at the cost of one
    uncontended threading.Lock on the usual path.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._busy = False
        self._waiters: deque[_Waiter] = deque()

    @property
    def busy(self) -> bool:
        """Whether a run holds the slot (or it is being handed to one)."""
        return self._busy

    async def acquire(self) -> None:
        with self._lock:
            if not self._busy:
                self._busy = True
                return
            waiter = _Waiter(asyncio.get_running_loop())
            self._waiters.append(waiter)
        try:
            await waiter.future
        except asyncio.CancelledError:
            with self._lock:
                granted = waiter.granted
                if not granted:
                    self._waiters.remove(waiter)
            if granted:  # handed over meanwhile: pass it on
                self.release()
            raise

    def release(self) -> None:
        with self._lock:
            while self._waiters:
                waiter = self._waiters.popleft()
                try:
                    waiter.loop.call_soon_threadsafe(waiter.wake)
                except RuntimeError:  # that loop is closed: next one
                    continue
                waiter.granted = True
                return
            self._busy = False


class _Waiter:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.future: asyncio.Future[None] = loop.create_future()
        self.granted = False

    def wake(self) -> None:
        if not self.future.done():
            self.future.set_result(None)
