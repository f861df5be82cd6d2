"""Short Python runs on the worker's event-loop thread, without the hop to a run thread.

Handing a run to a thread and its outcome back to the loop costs a worker more CPU than a
short function itself (two wake-ups and a GIL hand-off each way). A sandbox runs a call
inline, on the caller's thread, when all of these hold:

- inline runs are enabled in this process (`enable`: worker processes only, whose one
  event loop runs them one after the other; an embedding process keeps its loop for itself);
- none of the workspace's functions imports a module through which a run can wait
  (WAITING_MODULES: `time.sleep`, outbound requests), so no run of it ever blocks the
  loop on I/O or a sleep, and its runs never overlap;
- its last INLINE_AFTER runs each took less than INLINE_SHORT of CPU time, and none since
  it was compiled held the loop longer than INLINE_HOLD (of CPU time) nor ended at its
  timeout or memory cap;
- no other run of the sandbox is in flight.

A run that turns out long holds the loop for as long as it runs: its own deadline checks
stop it at its timeout, and a loop in host code that no check reaches gets `Deadline`
raised into the loop thread by the Watchdog thread (the event loop cannot: it is the one
held), WATCHDOG_GRACE plus at most TICK after its timeout. Its sandbox then never runs
inline again. C code holding the GIL is beyond both, as on a run thread: the supervisor
kills the worker, whose loop thread bears the run's name (sandboxes.base.RUN_LABEL).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

#: Top-level modules through which a run can wait (time.sleep, requests, urllib.request).
WAITING_MODULES = frozenset({"time", "requests", "urllib"})
#: Runs a sandbox must have had, each taking less than INLINE_SHORT seconds of CPU time, before its runs go inline.
INLINE_AFTER = 8
INLINE_SHORT = 0.005
#: Seconds of CPU time past which an inline run's sandbox runs on threads for good.
INLINE_HOLD = 0.05
#: How often the watchdog looks at the inline run in progress, seconds.
TICK = 0.05
#: Seconds without an inline run after which the watchdog sleeps until the next one.
PARK_AFTER = 1.0
#: Bytes of the watchdog thread's stack (under a worker's RLIMIT_AS every stack counts whole).
STACK_SIZE = 256 * 1024

_enabled = False


def enable() -> bool:
    """Let sandboxes of this process run short calls inline (see the module's docstring).

    Starts the watchdog now, while the process has memory for its thread: inline runs stay
    off (False) if it cannot start.
    """
    global _enabled
    try:
        _watchdog.start()
    except RuntimeError:  # "can't start new thread"
        return False
    _enabled = True
    return True


def enabled() -> bool:
    return _enabled


def may_wait(imports: Iterable[str]) -> bool:
    """Whether code importing these modules can wait (on the network, a sleep)."""
    return any(name.partition(".")[0] in WAITING_MODULES for name in imports)


@dataclass
class InlineRecord:
    """What one sandbox's runs so far say about running the next one inline."""

    allowed: bool  # False for good: a workspace that can wait, or a run that held the loop
    short_runs: int = 0  # consecutive runs shorter than INLINE_SHORT

    def ready(self) -> bool:
        return self.allowed and self.short_runs >= INLINE_AFTER

    def ran(self, seconds: float, *, stopped: bool = False, inline: bool = False) -> None:
        """A run of the sandbox took `seconds` of its thread's CPU time (waits for the GIL or for
        a core do not count); `stopped` if its timeout or memory cap ended it, `inline` if it
        held the loop."""
        if stopped or (inline and seconds > INLINE_HOLD):
            self.allowed = False
        elif seconds < INLINE_SHORT:
            self.short_runs += 1
        else:
            self.short_runs = 0


class Expiry:
    """An inline run as the watchdog sees it: what to call, once, when it is past `at` (perf_counter)."""

    __slots__ = ("at", "expire", "fired")

    def __init__(self, at: float, expire: Callable[[], None]) -> None:
        self.at = at
        self.expire = expire
        self.fired = False


class Watchdog:
    """One daemon thread per process that stops an inline run overrunning its deadline.

    Arming costs a field write: the thread looks every TICK seconds while runs come, and
    parks when none came for PARK_AFTER seconds (the next arm wakes it).
    """

    def __init__(self) -> None:
        self._armed: Expiry | None = None
        self._last_armed = 0.0
        self._parked = False
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def arm(self, expiry: Expiry) -> None:
        """Watch a run (the thread has been started)."""
        self._armed = expiry
        if self._parked:
            self._wake.set()

    def disarm(self) -> None:
        self._armed = None

    def start(self) -> None:
        with self._lock:
            if self._thread is None:
                previous = threading.stack_size(STACK_SIZE)
                try:
                    thread = threading.Thread(target=self._watch, name="fnbox-watchdog", daemon=True)
                    thread.start()
                finally:
                    threading.stack_size(previous)
                self._thread = thread

    def _watch(self) -> None:
        while True:
            armed = self._armed
            now = time.perf_counter()
            if armed is not None:
                self._last_armed = now
                if now > armed.at and not armed.fired:
                    armed.fired = True  # once: a run that goes on after it is the supervisor's
                    armed.expire()
            elif now - self._last_armed > PARK_AFTER:
                self._parked = True
                if self._armed is None:  # an arm after this line sees _parked and wakes the thread
                    self._wake.wait()
                self._wake.clear()
                self._parked = False
                self._last_armed = time.perf_counter()
                continue
            time.sleep(TICK)


_watchdog = Watchdog()


def watchdog() -> Watchdog:
    return _watchdog
