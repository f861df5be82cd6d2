"""sandboxes.loops: the running loop, asked of asyncio unless a process pinned its only one."""

from __future__ import annotations

import asyncio

import pytest

from fnbox.sandboxes import loops


def test_the_running_loop_is_asyncio_s_until_one_is_pinned():
    async def ask() -> tuple[bool, bool]:
        running = asyncio.get_running_loop()
        unpinned = loops.running() is running
        loops.pin(running)
        try:
            return unpinned, loops.running() is running
        finally:
            loops.pin(None)

    assert asyncio.run(ask()) == (True, True)
    with pytest.raises(RuntimeError):  # no loop runs, none is pinned: as asyncio says
        loops.running()
