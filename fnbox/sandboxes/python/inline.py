"""Short Python runs on the worker's event-loop thread, without the hop to a run thread.

Handing a run to a thread and its outcome back to the loop costs a worker more CPU than a
short function itself (two wake-ups and a GIL hand-off each way). A sandbox runs a call
inline, on the caller's thread, when all of these hold:

- inline runs are enabled in this process (`enable`: worker processes only, whose one
  event loop runs them one after the other; an embedding process keeps its loop for itself);
- none of the workspace's functions imports a module through which a run can wait
  (WAITING_MODULES: `time.sleep`, outbound requests), so no run of it ever blocks the
  loop on I/O or a sleep, and its runs never overlap;
- none of them names `cache` or declares a `global`, so a run leaves nothing behind for the
  next ones (see below: a run may be started again);
- its caller does not follow its logs live (entries already sent could not be taken back);
- its last INLINE_AFTER runs each took less than INLINE_SHORT of CPU time, and none since
  it was compiled held the loop longer than INLINE_HOLD (of CPU time) nor ended at its
  timeout or memory cap;
- no other run of the sandbox is in flight.

A run that turns out long holds the loop, and the calls of other workspaces behind it, for
INLINE_HOLD at most: its own deadline checks stop it there, and a loop in host code that no
check reaches gets `Deadline` raised into the loop thread by the Watchdog thread (the event
loop cannot: it is the one held) at most INLINE_GRACE plus TICK later, which drops the
sandbox. The run is then started again from the beginning on a run thread, with its whole
timeout, and its sandbox never runs inline again. What the first attempt did is gone with it:
its logs, and nothing else of it can reach the second (the rules above). A tenant saving new
versions of a workspace to hold the loop again and again is bounded too: after MAX_MOVES such
runs within MOVES_WINDOW seconds, no run of this process goes inline for MOVES_WINDOW seconds.
C code holding the GIL is beyond both, as on a run thread: the supervisor kills the worker,
whose loop thread bears the run's name (sandboxes.base.RUN_LABEL).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

#: Top-level modules through which a run can wait (time.sleep, requests, urllib.request).
WAITING_MODULES = frozenset({"time", "requests", "urllib"})
#: Runs a sandbox must have had, each taking less than INLINE_SHORT seconds of CPU time, before its runs go inline.
INLINE_AFTER = 8
INLINE_SHORT = 0.005
#: Seconds an inline run may hold the loop (wall time from its start) before it is stopped and
#: started again on a thread; a run that took longer than this of CPU time sends its sandbox to
#: threads for good, wherever it ran.
INLINE_HOLD = 0.05
#: Seconds past INLINE_HOLD after which the watchdog interrupts an inline run its checks did not stop.
INLINE_GRACE = 0.05
#: Inline runs stopped at INLINE_HOLD within MOVES_WINDOW seconds after which inline runs pause
#: for MOVES_WINDOW seconds: what the calls of other workspaces may wait behind such runs is bounded.
MAX_MOVES = 10
MOVES_WINDOW = 60.0
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


_clock = time.monotonic
_moves: deque[float] = deque(maxlen=MAX_MOVES)  # when the last inline runs were stopped at INLINE_HOLD
_paused_until = 0.0  # _clock() before which no run goes inline


def moved() -> None:
    """An inline run was stopped at INLINE_HOLD (see the module's docstring)."""
    global _paused_until
    now = _clock()
    _moves.append(now)
    if len(_moves) == MAX_MOVES and now - _moves[0] < MOVES_WINDOW:
        _paused_until = now + MOVES_WINDOW
        _moves.clear()


def paused() -> bool:
    """Whether inline runs pause for now, after too many were stopped at INLINE_HOLD."""
    return _paused_until > _clock()


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
