"""What run threads tell an event loop (a run starts, waits, logs, ends), with one wake-up for many.

`loop.call_soon_threadsafe` builds a handle and wakes the loop for each callback. A run
thread tells its loop two or three things per run (it starts; its outcome), and a thread
draining a queue of short runs tells it that for each run: posted here, they wait in one
list, and the loop is woken only by the first one posted since it last took them. They are
called in the order they were posted, whatever thread posted them (a run's log entries
still come before its outcome).
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Callable
from typing import Any

from fnbox.sandboxes.base import LiveLog, LogEntry, OnLog


class Mailbox:
    """The callbacks posted to one loop from other threads, not yet called."""

    __slots__ = ("__weakref__", "_lock", "_loop", "_posted", "_woken")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._lock = threading.Lock()
        self._posted: list[tuple[Callable[..., Any], tuple[Any, ...]]] = []
        self._woken = False  # a call of `_deliver` is on its way

    def post(self, callback: Callable[..., Any], *args: Any) -> None:
        """Have the loop call `callback(*args)`, from any thread; RuntimeError if the loop is closed."""
        with self._lock:
            self._posted.append((callback, args))
            if self._woken:
                return
            self._woken = True
        try:
            self._loop.call_soon_threadsafe(self._deliver)
        except BaseException:
            with self._lock:
                self._woken = False
            raise

    def _deliver(self) -> None:
        with self._lock:
            posted, self._posted = self._posted, []
            self._woken = False
        for callback, args in posted:
            try:
                callback(*args)
            except Exception as exc:  # as the loop's own handles do: the others still run
                self._loop.call_exception_handler({"message": f"Exception in callback {callback!r}", "exception": exc})


_MAILBOXES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Mailbox] = weakref.WeakKeyDictionary()
_mailboxes_lock = threading.Lock()


def mailbox(loop: asyncio.AbstractEventLoop) -> Mailbox:
    """The mailbox of `loop` (from any thread)."""
    box = _MAILBOXES.get(loop)
    if box is None:
        with _mailboxes_lock:
            box = _MAILBOXES.get(loop)
            if box is None:
                box = _MAILBOXES[loop] = Mailbox(loop)
    return box


def post(loop: asyncio.AbstractEventLoop, callback: Callable[..., Any], *args: Any) -> None:
    """`callback(*args)` on `loop`, through its mailbox; nothing if the loop is closed (nobody listens)."""
    try:
        mailbox(loop).post(callback, *args)
    except RuntimeError:
        pass


class MailedLog(LiveLog):
    """A LiveLog whose entries go through the loop's mailbox: in order with the run's other news."""

    __slots__ = ("_box",)

    def __init__(self, loop: asyncio.AbstractEventLoop, on_log: OnLog) -> None:
        super().__init__(loop, on_log)
        self._box = mailbox(loop)

    def __call__(self, entry: LogEntry) -> None:
        try:
            self._box.post(self._deliver, entry)
        except RuntimeError:  # the loop is closed: nobody is listening any more
            pass
