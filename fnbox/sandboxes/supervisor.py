"""The supervisor: warm sandboxes kept in worker processes it starts, watches and restarts.

`WorkerPool` has the interface of the in-process `SandboxPool` (compile, run, drop,
start, close), so the Runtime does not know which one it drives. Each language gets
`workers` processes; a workspace is always routed to the same one, so its `cache`
stays coherent.

The supervisor enforces what a language-level sandbox cannot:
- a run that passes its deadline by `grace` seconds gets its worker killed; that run
  answers TimeoutExceeded;
- a JavaScript worker whose RSS passes `js_rss_mb` is killed (V8 reserves address space
  at start, so RLIMIT_AS cannot be used); a Python worker runs under RLIMIT_AS;
- a worker that dies is restarted. A call that was alone on it answers at once
  (MemoryLimitExceeded when it was killed for its memory, else SandboxCrashed). When
  several were in flight, all but a timed-out one are retried once on the fresh worker,
  one at a time: an innocent neighbour then succeeds, and the call that killed the worker
  kills it once more, alone, and then answers. A run that already handed entries to
  `on_log` is not retried (its caller has seen it run; a second run would log them again);
- a JavaScript worker ends itself when an isolate stays stuck in V8's native code
  (see sandboxes.worker); its calls in flight are all retried.

A run's log entries reach the caller's `on_log` as the worker sends them (only runs that
ask get log frames). Cancelling the task awaiting `run` sends the worker a cancel for that
call and raises CancelledError at once; the call stays watched: if the worker has not
answered it within CANCEL_GRACE seconds, the run did not stop, and the worker is killed as
for an overrun (its other calls retried).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import os
import signal
import sys
import time
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fnbox import metrics
from fnbox.sandboxes import answers, protocol
from fnbox.sandboxes.base import (
    MAX_LOG_ENTRIES,
    MAX_LOG_MESSAGE,
    FunctionSource,
    JSONValue,
    Limits,
    OnLog,
    RunResult,
)
from fnbox.sandboxes.errors import (
    CompilationError,
    FnboxError,
    MemoryLimitExceeded,
    SandboxCrashed,
    TimeoutExceeded,
    error_from_json,
)
from fnbox.sandboxes.languages import LANGUAGES
from fnbox.sandboxes.network import EgressSettings
from fnbox.sandboxes.pool import CONCURRENCY_PER_SANDBOX, IDLE_TIMEOUT, MAX_QUEUE, MAX_SANDBOXES, SandboxKey
from fnbox.sandboxes.quarantine import QUARANTINE_SECONDS, Quarantine

__all__ = ["JS_WORKER_RSS_MB", "PYTHON_MEMORY_MB", "WorkerOptions", "WorkerPool"]

logger = logging.getLogger("fnbox")

#: The memory cap of a Python worker (RLIMIT_AS), and the RSS past which a JavaScript worker is killed, MB.
PYTHON_MEMORY_MB = 512.0
JS_WORKER_RSS_MB = 2048.0

#: Over how long, and how much CPU time (clock ticks), a run's thread must keep busy to
#: be taken for the one freezing its worker (see `_culprit`).
BUSY_SAMPLE = 0.1
BUSY_TICKS = 2
#: How often the supervisor looks at deadlines and memory.
WATCH_INTERVAL = 0.05
#: Calls of one turn of the loop that leave for a worker together at most. Under a warm load
#: the server and a worker otherwise take turns, each idle while the other works on all the
#: calls at once (bench/overlap.py); in smaller groups the worker starts on the first while
#: the server makes the rest.
FRAMES_AT_ONCE = 4
#: Seconds a worker with calls waiting for their turn may say nothing before the supervisor
#: looks whether one of them runs after all (see `_started_unheard`).
SILENT_WAITING = 0.5
#: Why a worker was killed when one of its calls overran: the others on it are innocent.
NEIGHBOUR_OVERRAN = "killed because a neighbouring call overran its deadline"
#: Why a worker ended itself (see sandboxes.worker): the calls in flight are innocent too.
RECYCLED = "it recycled itself to free an isolate stuck in native code"
#: Why a worker died of a signal the supervisor did not send (an operator's kill, a stop of
#: the machine): no call of it is to blame, so even one alone on it is retried.
KILLED_FROM_OUTSIDE = "it was killed from outside fnbox"
_OUTSIDE_SIGNALS = frozenset({-signal.SIGKILL, -signal.SIGTERM, -signal.SIGINT, -signal.SIGHUP})
#: Why a worker that crashed soon after one of its runs was stopped at a cap died: the calls in flight are innocent.
LINGERING = "it crashed soon after a run was stopped at its timeout or memory cap"
#: Seconds after a timeout during which a crash is blamed on it.
LINGER_SECONDS = 60.0
#: Quarantine workers are numbered from here in logs (the others from 0).
QUARANTINE_INDEX = 100
#: The deadline of operations that are not runs (compile, drop).
CONTROL_TIMEOUT = 30.0
#: Seconds a scrape of /metrics waits for one worker's counts.
METRICS_TIMEOUT = 2.0
#: Seconds a cancelled call has to stop in its worker before the worker is killed.
CANCEL_GRACE = 1.0
#: Log levels a worker may send.
LOG_LEVELS = frozenset({"debug", "info", "warn", "error"})


@dataclass(frozen=True)
class WorkerOptions:
    workers: int = 2
    max_sandboxes: int = MAX_SANDBOXES  # shared out among the workers of a language
    idle_timeout: float = IDLE_TIMEOUT
    max_queue: int = MAX_QUEUE
    python_modules: tuple[str, ...] | None = None  # None: every vetted module
    node_modules: tuple[str, ...] | None = None  # None: the JavaScript sandbox's default
    python_memory_mb: float = PYTHON_MEMORY_MB
    js_rss_mb: float = JS_WORKER_RSS_MB
    js_stuck_after: float = 10.0  # seconds an isolate may stay stuck before its worker recycles itself
    grace: float = 0.5  # past a run's timeout, before its worker is killed
    quarantine_seconds: float = QUARANTINE_SECONDS  # a workspace that got its worker killed runs apart
    languages: tuple[str, ...] = tuple(LANGUAGES)
    factory: str | None = None  # module:callable, for tests with fake sandboxes
    egress: EgressSettings = field(default_factory=EgressSettings)
    concurrency_per_sandbox: int = CONCURRENCY_PER_SANDBOX
    python_inline_runs: bool = True  # short Python runs on the worker's loop thread (sandboxes.python.inline)
    cpus: tuple[int, ...] | None = None  # the CPUs a worker keeps to; None: those of the supervisor's process


class _WorkerDied(Exception):
    """The worker of a call died before answering; `alone` if it was the only call in flight,
    `logged` if the call had passed log entries on."""

    def __init__(
        self,
        reason: str,
        *,
        alone: bool = False,
        logged: bool = False,
        logs: list[dict[str, Any]] | None = None,
        duration: float | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.alone = alone
        self.logged = logged
        self.logs = logs  # the entries the worker sent before it died, and how long the run had run (ms)
        self.duration = duration


@dataclass(eq=False)
class _Call:
    future: asyncio.Future[dict[str, Any]]
    deadline: float
    timeout: float
    on_log: OnLog | None = None
    workspace: str = ""
    logged: int = 0  # entries passed to on_log
    cancelled: bool = False  # its caller gave up; it stays here until the worker answers
    #: Entries received so far (log frames, for runs that ask): the logs of its answer if its worker dies.
    received: list[dict[str, Any]] = field(default_factory=list)
    #: When it was sent, or started after waiting for its turn: what its duration counts from.
    started: float = field(default_factory=time.monotonic)

    def log(self, entry: Any) -> None:
        """Keep and pass on an entry of a log frame: checked, as a worker runs hostile code."""
        if self.cancelled or self.future.done() or len(self.received) >= MAX_LOG_ENTRIES:
            return
        if not isinstance(entry, dict):
            return
        level, message, when = entry.get("level"), entry.get("message"), entry.get("time")
        if level not in LOG_LEVELS or type(message) is not str or type(when) not in (int, float):
            return
        checked = {"level": level, "message": message[: MAX_LOG_MESSAGE + 64], "time": when}
        self.received.append(checked)
        if self.on_log is None:
            return
        self.logged += 1
        try:
            self.on_log(checked)
        except Exception:  # the caller's bug must not stop the reading of answers
            logger.exception("on_log failed")

    def died(self, reason: str, *, alone: bool = False) -> _WorkerDied:
        """The failure of this call when its worker died, with what it had logged and its duration."""
        elapsed = time.monotonic() - self.started
        return _WorkerDied(
            reason,
            alone=alone,
            logged=self.logged > 0,
            logs=list(self.received),
            duration=round(max(elapsed, 0.0) * 1000, 3),
        )


@dataclass(eq=False)
class _Worker:
    """One worker process and the calls waiting for its answers."""

    language: str
    index: int
    options: WorkerOptions
    process: asyncio.subprocess.Process | None = None
    calls: dict[int, _Call] = field(default_factory=dict)
    reader_task: asyncio.Task[None] | None = None
    death: str | None = None  # why the supervisor killed it, if it did
    #: The last run it answered TimeoutExceeded or MemoryLimitExceeded (when, workspace): what
    #: such a run leaves (V8's native work going on, a heap at its cap) may crash the worker later.
    timed_out: tuple[float, str] | None = None
    #: The workspace to blame for its death when no call in flight was (see LINGERING).
    suspect: str | None = None
    ids: itertools.count[int] = field(default_factory=itertools.count)
    #: When its last frame came: a worker that spoke within WATCH_INTERVAL is not frozen.
    heard: float = 0.0
    spared: bool = False  # its overdue calls were given one more watch tick (see `_watch_one`)
    #: The event loop it was started on (asking for the running loop costs a system call each time).
    loop: asyncio.AbstractEventLoop | None = None
    #: Held by a call retried on it after the worker died under several: one retry at a time.
    retrying: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def start(self) -> None:
        per_worker = max(1, self.options.max_sandboxes // self.options.workers)
        command = [
            # -P: the working directory never comes first on sys.path, so it cannot shadow fnbox.
            sys.executable,
            "-P",
            "-m",
            "fnbox.sandboxes.worker",
            "--language",
            self.language,
            "--max-sandboxes",
            str(per_worker),
            "--idle-timeout",
            str(self.options.idle_timeout),
            "--max-queue",
            str(self.options.max_queue),
        ]
        if self.language == "javascript":
            command += ["--stuck-after", str(self.options.js_stuck_after)]
            if self.options.node_modules is not None:
                command += ["--node-modules", ",".join(self.options.node_modules)]
        if self.language == "python":
            command += ["--address-space-mb", str(self.options.python_memory_mb)]
            if self.options.python_modules is not None:
                command += ["--python-modules", *self.options.python_modules]
            if self.options.python_inline_runs:
                command.append("--inline-runs")
        if self.options.factory:
            command += ["--factory", self.options.factory]
        command += ["--egress", self.options.egress.to_json()]
        command += ["--concurrency-per-sandbox", str(self.options.concurrency_per_sandbox)]
        if self.options.cpus is not None:
            command += ["--cpus", ",".join(map(str, self.options.cpus))]
        self.process, ended = await answers.start_process(command, self._dispatch)
        self.death = None
        assert self.process.stdin is not None
        self.loop = asyncio.get_running_loop()
        self.frames = protocol.FrameWriter(self.process.stdin, at_most=FRAMES_AT_ONCE)
        self.reader_task = asyncio.create_task(self._read_answers(self.process, ended))

    def _lingering(self) -> bool:
        return self.timed_out is not None and time.monotonic() - self.timed_out[0] < LINGER_SECONDS

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None and self.death is None

    async def request(
        self, message: dict[str, Any], *, timeout: float, on_log: OnLog | None = None, workspace: str = ""
    ) -> dict[str, Any]:
        if not self.alive or self.process is None or self.process.stdin is None:
            raise _WorkerDied("the worker is restarting")
        if self.frames.is_closing():
            raise _WorkerDied("its pipe is closed")
        call_id = next(self.ids)
        future: asyncio.Future[dict[str, Any]] = (self.loop or asyncio.get_running_loop()).create_future()
        call = self.calls[call_id] = _Call(future, time.monotonic() + timeout, timeout, on_log, workspace)
        try:
            try:
                message["id"] = call_id  # the message is the caller's to send: no copy of it
                self.frames.write(protocol.encode(message))
            except (BrokenPipeError, ConnectionResetError) as exc:
                raise _WorkerDied(f"its pipe broke: {exc}") from None
            return await future
        except asyncio.CancelledError:
            self._cancel(call_id, call)
            raise
        finally:
            if not call.cancelled:
                self.calls.pop(call_id, None)

    def _cancel(self, call_id: int, call: _Call) -> None:
        """Have the worker stop a call; the watch kills the worker if it has not answered in time."""
        stdin = self.process.stdin if self.process is not None else None
        if not self.alive or stdin is None or call_id not in self.calls:
            return
        if call.future.done() and not call.future.cancelled():
            return  # its answer came before its caller gave up: the worker has nothing left to stop
        call.cancelled = True
        call.deadline = min(call.deadline, time.monotonic() + CANCEL_GRACE)
        try:
            self.frames.write(protocol.encode({"op": "cancel", "call": call_id}))
        except (BrokenPipeError, ConnectionResetError):
            pass  # it is dying: the reader clears its calls

    def kill(self, reason: str) -> None:
        if self.process is not None and self.process.returncode is None and self.death is None:
            self.death = reason
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    async def busy_calls(self) -> set[int]:
        """Calls whose thread in the worker kept a CPU busy over the last BUSY_SAMPLE seconds.

        Only threads named after their run (sandboxes.base.RUN_LABEL) are looked at; a
        thread waiting for the GIL gets next to no CPU time.
        """
        process = self.process
        if process is None:
            return set()
        before = _thread_cpu_ticks(process.pid)
        if not before:  # no run on a thread of its own (JavaScript, or nothing started)
            return set()
        await asyncio.sleep(BUSY_SAMPLE)
        after = _thread_cpu_ticks(process.pid)
        spent = {call_id: ticks - before.get(call_id, ticks) for call_id, ticks in after.items()}
        busy = {call_id for call_id, ticks in spent.items() if ticks >= BUSY_TICKS}
        if not busy and spent and (most := max(spent.values())) > 0:
            # A machine short of cores gives the thread holding the GIL less than BUSY_TICKS (and
            # the threads waiting for it nothing): the one that got the most is the one running.
            busy = {call_id for call_id, ticks in spent.items() if ticks == most}
        return busy

    def rss_mb(self) -> float:
        if self.process is None:
            return 0.0
        try:
            with open(f"/proc/{self.process.pid}/statm") as statm:
                pages = int(statm.read().split()[1])
        except (OSError, ValueError, IndexError):
            return 0.0
        return pages * os.sysconf("SC_PAGE_SIZE") / (1024 * 1024)

    def _dispatch(self, messages: list[dict[str, Any]]) -> None:
        """The frames of one read of the worker's stdout, handed on in order from the read callback."""
        self.heard = time.monotonic()
        calls = self.calls
        for message in messages:
            call_id = message.get("id")
            if type(call_id) is not int or (call := calls.get(call_id)) is None:
                continue
            if "log" in message:
                call.log(message["log"])
            elif message.get("waiting"):
                if not call.cancelled:
                    call.deadline = math.inf  # queued behind its workspace: it runs nothing yet
            elif message.get("started"):
                if not call.cancelled:
                    call.started = time.monotonic()
                    call.deadline = call.started + call.timeout  # it waited in the worker's queue
            elif call.cancelled:
                del calls[call_id]  # it stopped
            elif not call.future.done():
                if _timed_out(message):
                    self.timed_out = (time.monotonic(), call.workspace)
                call.future.set_result(message)

    async def _read_answers(self, process: asyncio.subprocess.Process, ended: asyncio.Future[str | None]) -> None:
        """Wait for the end of the worker's answers (`_dispatch` hands them on), then fail what it left unanswered."""
        broken = await ended
        if broken is not None:
            self.kill(broken)
        await process.wait()
        if process.returncode == protocol.RECYCLED:
            self.death = RECYCLED
        elif self.death is None and process.returncode in _OUTSIDE_SIGNALS:
            self.death = KILLED_FROM_OUTSIDE
        elif self.death is None and self._lingering():
            # A crash (V8's fatal errors abort) soon after a run timed out or ran out of memory:
            # what that run left (native work going on after its answer, a heap at its cap) is
            # the likely cause, not the calls in flight.
            self.death = f"{LINGERING} (exit status {process.returncode})"
            self.suspect = self.timed_out[1] if self.timed_out else None
        elif self.death is None:
            self.death = f"the worker exited with status {process.returncode}"
        reason = self.death
        for call_id in [call_id for call_id, call in self.calls.items() if call.cancelled]:
            del self.calls[call_id]  # stopped with the worker
        pending = [call for call in self.calls.values() if not call.future.done()]
        alone = len(pending) == 1 and reason not in (NEIGHBOUR_OVERRAN, RECYCLED, KILLED_FROM_OUTSIDE)
        alone = alone and not reason.startswith(LINGERING)
        for call in pending:
            call.future.set_exception(call.died(reason, alone=alone))


class WorkerPool:
    def __init__(self, options: WorkerOptions) -> None:
        self.options = options
        self._workers = {
            language: [_Worker(language, index, options) for index in range(options.workers)]
            for language in options.languages
        }
        self._quarantine: Quarantine[_Worker] = Quarantine(
            options.quarantine_seconds, lambda language, index: _Worker(language, QUARANTINE_INDEX + index, options)
        )
        self._starting: dict[_Worker, asyncio.Task[None]] = {}
        self._retiring: set[asyncio.Task[None]] = set()
        self._watcher: asyncio.Task[None] | None = None
        self._closing = False

    async def start(self) -> None:
        await asyncio.gather(*(worker.start() for worker in self._all()))
        self._watcher = asyncio.create_task(self._watch())

    async def close(self) -> None:
        self._closing = True
        if self._watcher is not None:
            self._watcher.cancel()
            # A restart it was making is undone (its process killed and reaped) before this
            # returns: left to the end of the loop, that process would never be reaped.
            await asyncio.gather(self._watcher, return_exceptions=True)
        for worker in self._all():
            if worker.process is not None and worker.process.returncode is None:
                if worker.process.stdin is not None:
                    worker.process.stdin.close()
                worker.kill("the service is stopping")
        for worker in self._all():
            if worker.reader_task is not None:
                await asyncio.gather(worker.reader_task, return_exceptions=True)
        await asyncio.gather(*self._retiring, return_exceptions=True)

    def worker_pids(self, language: str) -> list[int]:
        return [w.process.pid for w in self._workers[language] if w.process is not None]

    async def compile(
        self, key: SandboxKey, sources: Sequence[FunctionSource], *, keep_on_error: bool = False
    ) -> Mapping[str, CompilationError]:
        answer = await self._call(
            key,
            {
                "op": "compile",
                "key": _key(key),
                "sources": protocol.sources_to_json(sources),
                "keep_on_error": keep_on_error,
            },
            timeout=CONTROL_TIMEOUT,
        )
        errors: dict[str, CompilationError] = {}
        for name, body in answer.get("errors", {}).items():
            error = error_from_json(body)
            errors[name] = (
                error if isinstance(error, CompilationError) else CompilationError(error.message, details=error.details)
            )
        return errors

    async def run(
        self,
        key: SandboxKey,
        sources: Sequence[FunctionSource],
        function: str,
        parameters: Mapping[str, JSONValue],
        limits: Limits,
        *,
        on_log: OnLog | None = None,
        env: Mapping[str, str] | None = None,
        egress: Sequence[str] | None = None,
    ) -> RunResult:
        """Run in the workspace's worker; see the module's docstring for `on_log` and cancelling."""
        message: dict[str, Any] = {
            "op": "run",
            "key": _key(key),
            "function": function,
            "parameters": parameters,
            "limits": protocol.limits_to_json(limits),
        }
        if on_log is not None:
            message["logs"] = True  # log frames cost a frame per entry: only for callers that follow them
        if env:
            message["env"] = dict(env)
        if egress is not None:
            message["egress"] = list(egress)
        timeout = limits.timeout + self.options.grace
        answer = await self._call(key, message, timeout=timeout, sources=sources, on_log=on_log)
        return protocol.result_from_json(answer["result"])

    async def metrics(self) -> list[str]:
        """The exposition text of each live worker's metrics (see fnbox.metrics)."""
        texts = []
        for worker in self._all():
            if worker.alive:
                try:
                    async with asyncio.timeout(METRICS_TIMEOUT):
                        answer = await worker.request({"op": "metrics"}, timeout=CONTROL_TIMEOUT)
                except (_WorkerDied, TimeoutError):
                    continue  # a scrape without this worker's counts rather than none
                if isinstance(answer.get("text"), str):
                    texts.append(answer["text"])
        return texts

    async def drop(self, workspace: str) -> None:
        for language in self._workers:
            key = SandboxKey(workspace, language, "")
            message = {"op": "drop", "workspace": workspace}
            await self._call(key, message, timeout=CONTROL_TIMEOUT)
            home = self._home(key)
            if (language, workspace) in self._quarantine and home.alive:
                await home.request(message, timeout=CONTROL_TIMEOUT)  # its sandbox from before the quarantine

    async def _call(
        self,
        key: SandboxKey,
        message: dict[str, Any],
        *,
        timeout: float,
        sources: Sequence[FunctionSource] | None = None,
        on_log: OnLog | None = None,
    ) -> dict[str, Any]:
        """Send to the workspace's worker, with the sources if it has no warm sandbox for them.

        A call whose worker died under it is tried once more, in all (see the module's doc).
        """
        for attempt in (1, 2):
            # Again on a retry: its workspace may be quarantined now.
            worker = self._worker_now(key) or await self._worker_for(key)
            try:
                if not worker.alive:
                    await self._ready(worker)
                retry = attempt == 2
                if retry:
                    # The calls a death cut short are retried one at a time: the one that caused it,
                    # run again, kills the worker alone (and is blamed), not with the innocent retried too.
                    await worker.retrying.acquire()
                try:
                    answer = await worker.request(message, timeout=timeout, on_log=on_log, workspace=key.workspace)
                    if answer.get("missing") and sources is not None:
                        message_with_sources = {**message, "sources": protocol.sources_to_json(sources)}
                        answer = await worker.request(
                            message_with_sources, timeout=timeout, on_log=on_log, workspace=key.workspace
                        )
                finally:
                    if retry:
                        worker.retrying.release()
                break
            except _WorkerDied as died:
                # A call that was alone on its worker killed it: retrying would kill it again.
                if died.reason.startswith("timeout") or died.alone or died.logged or attempt == 2:
                    if message.get("op") == "run" and _blamed(died.reason):
                        self._quarantine.add(key.language, key.workspace, died.reason)
                    error = self._died_error(died.reason)
                    if message.get("op") == "run":
                        error.logs, error.duration = died.logs, died.duration
                    raise error from None
        if "error" in answer:
            raise error_from_json(answer["error"])
        return answer

    def _home(self, key: SandboxKey) -> _Worker:
        workers = self._workers[key.language]
        return workers[zlib.crc32(key.workspace.encode()) % len(workers)]

    def _worker_now(self, key: SandboxKey) -> _Worker | None:
        """`_worker_for` when nothing is to be awaited (its worker is not to be started first), else None."""
        worker = self._quarantine.worker_for(key.language, key.workspace)
        if worker is None:
            return self._home(key)
        return worker if worker.process is not None else None

    async def _worker_for(self, key: SandboxKey) -> _Worker:
        """The workspace's own worker, or its quarantine worker (started on first use)."""
        worker = self._quarantine.worker_for(key.language, key.workspace)
        if worker is None:
            return self._home(key)
        if worker.process is None:
            starting = self._starting.get(worker)
            if starting is None:
                starting = self._starting[worker] = asyncio.create_task(worker.start())
            try:
                await asyncio.shield(starting)
            finally:
                self._starting.pop(worker, None)
        return worker

    def _end_quarantines(self) -> None:
        for worker in self._quarantine.expire(busy=lambda worker: bool(worker.calls)):
            task = asyncio.create_task(self._retire(worker))
            self._retiring.add(task)
            task.add_done_callback(self._retiring.discard)

    @staticmethod
    async def _retire(worker: _Worker) -> None:
        if worker.process is None:
            return
        if worker.process.stdin is not None:
            worker.process.stdin.close()
        worker.kill("its quarantine is over")
        if worker.reader_task is not None:
            await asyncio.gather(worker.reader_task, return_exceptions=True)

    @staticmethod
    def _died_error(reason: str) -> FnboxError:
        if reason.startswith("timeout"):
            return TimeoutExceeded("the run passed its timeout and its worker was stopped", details={"reason": reason})
        if reason.startswith("memory"):
            return MemoryLimitExceeded(f"the worker passed its memory cap and was stopped ({reason})")
        return SandboxCrashed(f"the sandbox's worker died ({reason}); the service goes on")

    async def _ready(self, worker: _Worker) -> None:
        """Wait until a dead worker has been restarted."""
        for _ in range(1000):
            if worker.alive:
                return
            await asyncio.sleep(0.01)
        raise _WorkerDied("the worker did not restart")

    async def _watch(self) -> None:
        while not self._closing:
            await asyncio.sleep(WATCH_INTERVAL)
            now = time.monotonic()
            self._end_quarantines()
            for worker in self._all():
                await self._watch_one(worker, now)

    async def _watch_one(self, worker: _Worker, now: float) -> None:
        process = worker.process
        if process is None:
            return
        if process.returncode is not None and not self._closing:
            if worker.reader_task is not None:
                await asyncio.gather(worker.reader_task, return_exceptions=True)
            logger.warning(
                "%s worker %d stopped (%s); restarting it",
                worker.language,
                worker.index,
                worker.death or process.returncode,
            )
            metrics.WORKER_RESTARTS.labels(worker.language, metrics.restart_reason(worker.death)).inc()
            if worker.suspect is not None:
                self._quarantine.add(worker.language, worker.suspect, worker.death or "it crashed")
            worker.suspect, worker.timed_out = None, None
            await worker.start()
            return
        if now - worker.heard > SILENT_WAITING:
            _started_unheard(worker)
        overdue = [(call.deadline, call_id) for call_id, call in worker.calls.items() if now > call.deadline]
        if overdue and now - worker.heard < WATCH_INTERVAL and not worker.spared:
            # It spoke just now, so it is not frozen: its loop was held by a run that just ended,
            # say (sandboxes.python.inline), and the calls that waited behind it are saying when
            # they started. One tick more, never two in a row: a kill is put off by WATCH_INTERVAL at most.
            worker.spared, overdue = True, []
        else:
            worker.spared = False
        culprit_id = await _culprit(worker, overdue) if overdue else None
        if culprit_id is not None and time.monotonic() <= getattr(worker.calls.get(culprit_id), "deadline", 0.0):
            culprit_id = None  # started late since (its deadline moved while the busy threads were sampled)
        culprit = worker.calls.pop(culprit_id, None) if culprit_id is not None and worker.process is process else None
        if culprit is not None:
            if not culprit.future.done():
                culprit.future.set_exception(culprit.died("timeout: the call overran its deadline"))
            if culprit.workspace:
                self._quarantine.add(worker.language, culprit.workspace, "it overran its deadline")
            worker.kill(NEIGHBOUR_OVERRAN)
        if worker.language == "javascript" and worker.rss_mb() > self.options.js_rss_mb:
            worker.kill(f"memory: its RSS passed {self.options.js_rss_mb:g} MB")

    def _all(self) -> list[_Worker]:
        return [worker for workers in self._workers.values() for worker in workers] + self._quarantine.workers()


def _timed_out(answer: dict[str, Any]) -> bool:
    """An answer that a run was stopped at its timeout or memory cap (its worker goes on)."""
    error = answer.get("error")
    return isinstance(error, dict) and error.get("error") in (TimeoutExceeded.code, MemoryLimitExceeded.code)


def _blamed(reason: str) -> bool:
    """Whether a worker's death is the doing of the call it is reported to (not of a neighbour or the host)."""
    return reason.startswith(("timeout", "memory", "the worker exited", "broke the protocol"))


def _thread_cpu_ticks(pid: int) -> dict[int, int]:
    """CPU time (user + system, in clock ticks) of a process's threads named `call-ID`, by ID."""
    ticks = {}
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return {}
    for thread in threads:
        try:
            with open(f"/proc/{pid}/task/{thread}/stat") as stat:
                name, _, rest = stat.read().partition(" (")[2].rpartition(") ")
        except OSError:
            continue
        fields = rest.split()
        if name.startswith("call-") and name[5:].isdigit() and len(fields) > 12:
            ticks[int(name[5:])] = int(fields[11]) + int(fields[12])
    return ticks


async def _culprit(worker: _Worker, overdue: list[tuple[float, int]]) -> int | None:
    """The call to blame for a worker with overdue calls, or None to wait a little longer.

    A frozen worker makes every call on it overdue; the oldest froze it, unless a cancelled
    call has not stopped yet (blaming that one costs nobody an answer). But a Python run
    holding the GIL in C (a catastrophic regular expression) also freezes neighbours that
    started before it: where a run's thread keeps a CPU busy (see
    sandboxes.base.RUN_LABEL), that run is the one to blame, once it is overdue itself.
    """
    unstopped = [(call.deadline, call_id) for call_id, call in worker.calls.items() if call.cancelled]
    if unstopped:
        return min(unstopped)[1]
    busy = await worker.busy_calls()
    if busy:
        suspects = [(deadline, call_id) for deadline, call_id in overdue if call_id in busy]
        return min(suspects)[1] if suspects else None
    return min(overdue)[1]


def _started_unheard(worker: _Worker) -> None:
    """Calls said to wait for their turn that a thread bears the name of: they started, but
    their 'started' frame was caught in a loop they froze at once (a regular expression
    holding the GIL in C, say). Their deadline runs from now, so that an overrun is theirs.
    """
    process = worker.process
    if process is None or not any(call.deadline == math.inf and not call.cancelled for call in worker.calls.values()):
        return
    for call_id in _thread_cpu_ticks(process.pid):
        call = worker.calls.get(call_id)
        if call is not None and call.deadline == math.inf and not call.cancelled:
            call.started = time.monotonic()
            call.deadline = call.started + call.timeout


def _key(key: SandboxKey) -> list[str]:
    return [key.workspace, key.language, key.version]
