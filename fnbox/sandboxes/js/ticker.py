"""One timer for the runs of a sandbox, which come one after another.

A run is watched every MEMORY_POLL seconds and at its deadline (see sandbox.py). A timer per
run, set when it starts and cancelled when it ends, costs a timer handle and two calls into
the loop per run, though a short run never sees it fire. Here the timer is left armed when
a run ends: the next run keeps it if it fires soon enough for that run, and moves it sooner
otherwise; a tick with no run to watch lets it lapse.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

__all__ = ["Ticker"]


class Ticker:
    def __init__(self, on_tick: Callable[[], None]) -> None:
        self._on_tick = on_tick
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._due = 0.0  # the loop's time the timer fires at

    def within(self, loop: asyncio.AbstractEventLoop, delay: float) -> None:
        """Tick on `loop` within `delay` s: at that time, or sooner if already due sooner."""
        due = loop.time() + delay
        if self._timer is not None:
            if self._loop is loop and self._due <= due:
                return
            self._timer.cancel()
        self._timer = loop.call_at(due, self._tick)
        self._loop = loop
        self._due = due

    def cancel(self) -> None:
        """No tick from now on, until `within` again."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _tick(self) -> None:
        self._timer = None
        self._on_tick()
