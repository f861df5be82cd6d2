"""The running event loop, for a process that runs only one.

`asyncio.get_running_loop()` makes a system call (getpid, to notice a fork) each time it
is asked, on the hot path of every run. A worker process runs one loop for its whole life:
it pins it here, and the code of its runs (both languages) asks `running()`, which asks
asyncio only where no loop is pinned (sandboxes in the server process, tests).
"""

from __future__ import annotations

import asyncio

_pinned: asyncio.AbstractEventLoop | None = None


def pin(loop: asyncio.AbstractEventLoop | None) -> None:
    """The one loop this process runs from now on (None: no longer known)."""
    global _pinned
    _pinned = loop


def running() -> asyncio.AbstractEventLoop:
    """The running loop, called from a coroutine or a callback on it."""
    return _pinned if _pinned is not None else asyncio.get_running_loop()
