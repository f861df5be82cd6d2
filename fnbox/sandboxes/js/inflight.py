"""A run in flight in an isolate: where its outcome goes, and what became of its eval.

Shared by a sandbox's lone runs and its batches (sandbox.py, batch.py). A run's outcome
comes back on the isolate's thread, through the context's inbox (see context.py), which
resolves the run's future with it; anything else that ends its wait is a Signal.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from fnbox.sandboxes.base import MAX_LOG_ENTRIES, LiveLog, LogEntry
from fnbox.sandboxes.errors import FnboxError
from fnbox.sandboxes.js import outcome
from fnbox.sandboxes.js.engine import EngineError, resolve_threadsafe
from fnbox.sandboxes.js.hostnet import JsNetwork
from fnbox.sandboxes.js.mailbox import CAPACITY, Mail

__all__ = [
    "CANCELLED",
    "CLOSED",
    "MAX_LIVE_ENTRY",
    "MEMORY",
    "PROBE_TIMEOUT",
    "START_WAIT",
    "TIMEOUT",
    "WEDGED",
    "Run",
    "Signal",
]

#: Seconds a timed-out run's isolate has to answer the probe, or be dropped. An isolate
#: that is not stuck answers in well under a millisecond.
PROBE_TIMEOUT = 0.1
#: Seconds a run may wait for its isolate to pick it up (plus 0.1 s a MB of a request that
#: V8 must parse); past that, work a previous run left behind has wedged the isolate, and
#: the run moves to a fresh one. Generous: a busy machine must not pass for a wedged isolate.
START_WAIT = 0.25
#: Bytes of one live log entry: far more than runtime.js ever makes (an 8 Ki-character
#: message, JSON-escaped), so only a broken runtime passes it.
MAX_LIVE_ENTRY = 8 * CAPACITY


@dataclass(frozen=True)
class Signal:
    """Why a run stopped waiting, other than its outcome or a failed eval."""

    name: str


TIMEOUT = Signal("timeout")
MEMORY = Signal("memory")
CLOSED = Signal("closed")
WEDGED = Signal("wedged")
CANCELLED = Signal("cancelled")  # a batched run's caller gave up


class Run:
    """A run in flight: where its outcome goes, and what became of its eval."""

    __slots__ = (
        "eval_done",
        "future",
        "handed",
        "id",
        "index",
        "live",
        "loop",
        "mail",
        "network",
        "partial",
        "picked_up",
        "posted",
        "start_wait",
        "started",
        "task",
        "timeout",
    )

    def __init__(self, run_id: int, loop: asyncio.AbstractEventLoop, started: float, live: LiveLog | None) -> None:
        self.id = run_id
        self.loop = loop
        self.live = live  # the caller's on_log, if it follows the run's logs
        self.handed: list[LogEntry] = []  # the entries handed over live so far
        self.partial = bytearray()  # a live entry's pieces until its last
        self.future: asyncio.Future[Any] = loop.create_future()
        self.started = started  # when the caller's run began: its timeout counts from there
        self.posted = 0.0  # when this eval was posted to the isolate
        self.start_wait = START_WAIT
        self.picked_up = False
        self.task = 0
        self.eval_done = False
        self.timeout = 0.0  # seconds from `started`
        self.index = -1  # its place in its batch, if it is in one
        self.mail: tuple[Mail, float] | None = None  # its outcome, once handed over
        self.network: JsNetwork | None = None  # a batched run's outbound requests

    def on_eval_done(self, value: Any) -> None:
        # On the isolate's thread. A completed eval only means the run has started. (A quiet
        # eval on the native path is only heard of when it fails: eval_done stays False.)
        self.eval_done = True
        if isinstance(value, EngineError):
            resolve_threadsafe(self.loop, self.future, value)

    def on_piece(self, data: bytes, more: bool) -> None:
        # On the isolate's thread, JS waiting: a piece of a log entry runtime.js made.
        partial = self.partial
        if len(partial) + len(data) > MAX_LIVE_ENTRY or len(self.handed) >= MAX_LOG_ENTRIES or self.live is None:
            partial.clear()
            return
        partial += data
        if more:
            return
        text = partial.decode("utf-16-le", "replace")
        partial.clear()
        try:
            entry = outcome.load(text)
        except FnboxError:
            return
        self.handed.append(entry)
        self.live(entry)

    def elapsed(self) -> float:
        return (time.perf_counter() - self.started) * 1000
