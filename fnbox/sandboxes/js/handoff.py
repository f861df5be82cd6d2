"""A run's end handed from V8's thread to the event loop without the GIL, when `_handoff` is built.

Through ctypes alone, each of a run's two callbacks on V8's thread (its eval completed, its
`notify`) takes the GIL: V8's thread waits for the loop's thread to let go of it, the loop's
thread waits to take it back, and neither does anything else meanwhile. `_handoff`, a small C
extension built with the package (setup.py), is the callback mini-racer calls instead: it drops a
run's completed eval on V8's thread, copies the mailbox while JS waits in `notify` and writes a
record to a pipe of the loop the run waits on; that loop reads it with its other file
descriptors (`Pipe`). Everything else (errors, live logs, host calls, set-up) still goes to the
engine's Python callback, as it does when `_handoff` is missing: then `native` is None and the
engine takes the pure-Python path throughout.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import struct
import weakref
from collections.abc import Callable
from typing import Any

__all__ = ["QUIET", "SIGNAL", "Pipe", "native", "pipe_for", "signals"]

#: The C extension, or None. Engines made while it is None take the pure-Python path.
native: Any
try:
    native = importlib.import_module("fnbox.sandboxes.js._handoff")
except ImportError:  # built without a C compiler
    native = None
#: Callback id flags the C side handles itself (see _handoff.c).
QUIET = 1 << 62
SIGNAL = 1 << 61
#: What the C side writes per SIGNAL: id, address and size of the mailbox's copy, when JS notified.
_RECORD = struct.Struct("=QQQd")
_READ = _RECORD.size * 512

#: The handler of each SIGNAL id, called on the loop that reads the record: (mailbox copy, when,
#: that loop: a look-up of the running loop is a system call on Python 3.11).
signals: dict[int, Callable[[bytes, float, asyncio.AbstractEventLoop], None]] = {}


class Pipe:
    """One event loop's end of the hand-off: SIGNAL records arrive here."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.read_fd, self.write_fd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._loop = weakref.ref(loop)  # (not the loop itself: it keys this pipe in _pipes)
        loop.add_reader(self.read_fd, self.drain)
        # Closed only once the loop is gone: an isolate may still write to it until then.
        weakref.finalize(loop, _retire, native, self.read_fd, self.write_fd)

    def drain(self) -> None:
        try:
            data = os.read(self.read_fd, _READ)
        except (BlockingIOError, InterruptedError):
            return
        taken = [
            (callback_id, native.take(copy, size), ended)
            for callback_id, copy, size, ended in _RECORD.iter_unpack(data)
        ]
        loop = self._loop()
        if loop is None:
            return
        for callback_id, mail, ended in taken:
            handler = signals.get(callback_id)
            if handler is None:
                continue
            try:
                handler(mail, ended, loop)
            except Exception:  # one bad copy must not cost the runs after it their outcomes
                pass


_pipes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Pipe] = weakref.WeakKeyDictionary()


def pipe_for(loop: asyncio.AbstractEventLoop) -> Pipe:
    """The loop's pipe, made on first use (on the loop's thread)."""
    pipe = _pipes.get(loop)
    if pipe is None:
        pipe = _pipes[loop] = Pipe(loop)
    return pipe


def _retire(extension: Any, read_fd: int, write_fd: int) -> None:
    extension.retire_fd(write_fd)  # no isolate writes to it from now on
    try:
        while data := os.read(read_fd, _READ):
            for _, copy, size, _ in _RECORD.iter_unpack(data):
                extension.take(copy, size)  # frees the copies nobody read
    except OSError:
        pass
    os.close(read_fd)
    os.close(write_fd)
