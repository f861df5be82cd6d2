"""The one interface between the pool and a language: compile a workspace, run, close.

A sandbox holds one workspace version's functions of one language, compiled once and
kept warm. Everything crossing this interface is plain data (JSON values, dataclasses
of them), so the same calls can later travel over a pipe to a worker process without
changing the callers.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Protocol

from fnbox.sandboxes.errors import CompilationError

#: Log entries kept per run; one more entry says how many were dropped.
MAX_LOG_ENTRIES = 1000
#: Characters kept of one log message.
MAX_LOG_MESSAGE = 8192

JSONValue = Any
LogEntry = dict[str, Any]
#: Called with each log entry of a run while it runs (see `Sandbox.run`).
OnLog = Callable[[LogEntry], None]
#: What a worker calls the run it is answering, in that run's task (see sandboxes.worker).
#: A sandbox that runs code on its own OS thread gives the thread this name meanwhile, so
#: that the supervisor can see in /proc which run's thread holds a frozen worker's CPU.
RUN_LABEL: ContextVar[str | None] = ContextVar("fnbox_run_label", default=None)


@dataclass(frozen=True)
class Parameter:
    """A declared parameter: a local variable of the function body."""

    name: str
    type: str | None = None
    default: JSONValue = None
    has_default: bool = False


@dataclass(frozen=True)
class FunctionSource:
    """One function of a workspace, as the sandbox needs it."""

    name: str
    code: str
    parameters: tuple[Parameter, ...] = ()


@dataclass(frozen=True)
class Limits:
    """Limits of one run: wall-clock seconds and memory bytes."""

    timeout: float
    memory: int


#: Limits a process keeps made, by the values they are made of: a frozen dataclass costs to
#: build, every run needs one, and functions' own limits are few (never let odd ones grow this).
MAX_KEPT_LIMITS = 1024


@dataclass(slots=True)
class RunResult:
    """What a run gave back. Not frozen, though never changed once made: a frozen dataclass
    sets each field through `object.__setattr__`, four times the cost of building this one,
    and the server makes two per warm call (its worker's answer, then with its record's id)."""

    result: JSONValue
    logs: list[LogEntry]
    duration: float  # milliseconds spent running the function
    #: The record the Runtime keeps of this run, if it keeps one.
    execution_id: str | None = None


class Sandbox(Protocol):
    """One workspace version's functions of one language, warm and ready to run.

    `errors` names the functions that failed to compile; running one of them raises its
    CompilationError, and the other functions work as usual.

    `run` raises only `sandboxes.errors` exceptions (FunctionError, TimeoutExceeded,
    MemoryLimitExceeded, SandboxCrashed, CompilationError), each carrying the run's
    logs and duration. After a run the sandbox may have declared itself `broken` (a
    timeout left it wedged, say): the pool then drops it and compiles a fresh one. A call
    still waiting inside a sandbox that breaks never starts there: it raises `pool.Requeue`,
    and the pool runs it on the fresh one.

    With `on_log`, each log entry is also handed to `on_log` as the function makes it,
    on the caller's event loop, before the run ends (entries past MAX_LOG_ENTRIES and
    the note saying how many were dropped are not). Cancelling the task awaiting `run`
    stops the function: it raises CancelledError once the run has stopped, or has been
    given up on and the sandbox marked `broken`.

    `env` (given only when not empty) is the workspace's secrets for this run:
    `process.env` in JavaScript, `env` in Python.

    A sandbox whose `reaches_network` is true is given `outbound` (a `network.Egress`):
    the policy and caps its run's outbound requests go through. One whose `concurrency`
    is above 1 may be given that many runs at once by the pool (see pool.py); one whose
    `reports_start` is true is given the pool's `on_start` and `on_wait` and calls them (on
    the caller's loop): `on_wait` if the run has to wait inside the sandbox for its turn (for
    up to a minute or its timeout if longer, as in the pool), `on_start` when it starts.

    A sandbox may also have `run_now(function, parameters, limits, *, label, env, on_start)`:
    the run made at once on the caller's thread, with nothing awaited, or None with nothing
    done when it cannot be (python/sandbox.py). The pool uses it for a sandbox no other call
    is using (`SandboxPool.run_now`).
    """

    @property
    def errors(self) -> Mapping[str, CompilationError]: ...

    broken: bool

    async def run(
        self,
        function: str,
        parameters: Mapping[str, JSONValue],
        limits: Limits,
        *,
        on_log: OnLog | None = None,
        env: Mapping[str, str] | None = None,
    ) -> RunResult: ...

    def close(self) -> None: ...


#: Compiles a workspace's functions of one language into a warm sandbox.
SandboxFactory = Callable[[Sequence[FunctionSource]], Sandbox]


class LiveLog:
    """Hands a run's log entries to its caller's `on_log`, on the caller's loop, from any thread.

    Entries are delivered in the order they were made, and all of them before the run's
    outcome wakes the caller (both go through the loop's queue). Once `close`d (the run
    is over), entries still on their way are dropped.
    """

    __slots__ = ("_loop", "_on_log", "_open")

    def __init__(self, loop: asyncio.AbstractEventLoop, on_log: OnLog) -> None:
        self._loop = loop
        self._on_log = on_log
        self._open = True

    def __call__(self, entry: LogEntry) -> None:
        try:
            self._loop.call_soon_threadsafe(self._deliver, entry)
        except RuntimeError:  # the loop is closed: nobody is listening any more
            pass

    def _deliver(self, entry: LogEntry) -> None:
        if self._open:
            self._on_log(entry)

    def close(self) -> None:
        self._open = False


@dataclass
class LogCollector:
    """Collects one run's log entries, capped in count and size; `live` gets each one kept."""

    entries: list[LogEntry] = field(default_factory=list)
    dropped: int = 0
    live: Callable[[LogEntry], None] | None = None

    def add(self, level: str, message: str) -> None:
        if len(self.entries) >= MAX_LOG_ENTRIES:
            self.dropped += 1
            return
        if len(message) > MAX_LOG_MESSAGE:
            message = message[:MAX_LOG_MESSAGE] + "… (truncated)"
        entry = {"level": level, "message": message, "time": int(time.time() * 1000)}
        self.entries.append(entry)
        if self.live is not None:
            self.live(entry)

    def finish(self) -> list[LogEntry]:
        if self.dropped:
            self.entries.append(
                {
                    "level": "warn",
                    "message": f"{self.dropped} more log entries were dropped",
                    "time": int(time.time() * 1000),
                }
            )
            self.dropped = 0
        return self.entries
