"""When a run last held its worker's event loop (a Python run on the loop thread: see
sandboxes.python.inline), so that the calls whose frames arrived meanwhile start their
deadlines when they start, not when they were sent (see sandboxes.worker)."""

from __future__ import annotations

import time

#: A hold shorter than this is not worth noting (a worker reports a start this late, LATE_START).
NOTED = 0.005


class LoopHolds:
    """The last hold of this process's event loop worth noting, in time.monotonic() seconds."""

    def __init__(self) -> None:
        self.started = 0.0
        self.ended = 0.0

    def held(self, seconds: float) -> None:
        """The loop was held for the last `seconds`."""
        if seconds >= NOTED:
            self.ended = time.monotonic()
            self.started = self.ended - seconds

    def arrived(self, previous_read: float, now: float) -> float:
        """When frames read at `now` may have arrived, at the earliest, the last read being at `previous_read`."""
        return self.started if self.ended > previous_read else now


HOLDS = LoopHolds()
