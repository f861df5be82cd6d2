"""A worker process: warm sandboxes of one language, served to the supervisor over a pipe.

Started by the supervisor as `python -m sandboxes.worker --language ...`. It keeps its
own SandboxPool (LRU and idle expiry per worker) and answers the supervisor's frames
(compile, run, drop) concurrently. A run frame with `"logs": true` gets a frame
`{"id", "log": entry}` for each log entry as it is made; `{"op": "cancel", "call": id}`
cancels that call, which then answers `{"id", "cancelled": true}` once stopped.

A JavaScript worker with an isolate stuck in V8's native code for `--stuck-after`
seconds (`sandboxes.js.stuck_isolates`: a loop no TerminateExecution reaches, which goes
on spinning a thread after its run answered TimeoutExceeded) ends itself with status
`protocol.RECYCLED` once no call is in flight, or RECYCLE_GRACE seconds later if calls
keep coming: only the process ending frees that thread and its memory. The supervisor
restarts it and retries the calls that were in flight.

The protocol uses the process's original stdin and stdout; fd 1 is pointed at stderr so
that nothing a library prints can break a frame.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import importlib
import logging
import os
import resource
import sys
import time
from collections.abc import Coroutine
from typing import Any, BinaryIO

import uvloop

from fnbox import logs, metrics
from fnbox.sandboxes import arrivals, loops, protocol
from fnbox.sandboxes.base import RUN_LABEL, LogEntry, RunResult, SandboxFactory
from fnbox.sandboxes.errors import FnboxError, MemoryLimitExceeded, SandboxCrashed
from fnbox.sandboxes.holds import HOLDS
from fnbox.sandboxes.languages import LANGUAGES, sandbox_factory
from fnbox.sandboxes.network import EgressSettings
from fnbox.sandboxes.pool import CONCURRENCY_PER_SANDBOX, SandboxKey, SandboxPool, SourcesMissing

MEGABYTE = 1024 * 1024
PR_SET_PDEATHSIG = 1
#: A run that starts this many seconds after it arrived tells the supervisor it started.
LATE_START = 0.005
#: How often a JavaScript worker looks for stuck isolates.
STUCK_CHECK_EVERY = 0.25
#: Seconds a worker with a stuck isolate waits for a moment with no call in flight.
RECYCLE_GRACE = 10.0


async def serve(
    pool: SandboxPool,
    requests: BinaryIO,
    writer: protocol.FrameWriter,
    tasks: dict[Any, asyncio.Task[None]],
    *,
    at_once: bool = False,
) -> None:
    """Answer the frames of the pipe `requests` (a file) until the supervisor closes it; `tasks` holds the
    calls in flight, by id. With `at_once`, runs the pool can make at once are made in the read (see Calls)."""
    loop = asyncio.get_running_loop()
    transport, calls = await loop.connect_read_pipe(lambda: Calls(pool, writer, tasks, at_once=at_once), requests)
    try:
        await calls.closed
    finally:
        transport.close()


class Calls(asyncio.Protocol):
    """The supervisor's frames, taken as they are read: each call's task starts from the read itself,
    without a reader task's turn of the loop in between, and a cancel acts in the order it came.

    With `at_once` (a worker whose short Python runs hold its loop anyway: see sandboxes.python.inline),
    a run whose warm sandbox no other call is using, and which follows no logs, is made in the read
    itself when its sandbox can (`SandboxPool.run_now`): its answer is queued before the next frame
    is looked at, and no task is made for it. A later cancel of it finds the call answered.

    `closed` ends when the pipe does, or fails with ProtocolError on a frame that breaks the protocol.
    """

    def __init__(
        self,
        pool: SandboxPool,
        writer: protocol.FrameWriter,
        tasks: dict[Any, asyncio.Task[None]],
        *,
        at_once: bool = False,
    ):
        self.pool = pool
        self.writer = writer
        self.tasks = tasks
        self.at_once = at_once
        self._loop = asyncio.get_running_loop()
        self.closed: asyncio.Future[None] = self._loop.create_future()
        #: Calls whose task has not taken its first step, with the sandbox of each run (see arrivals.py).
        self.unstarted: dict[Any, SandboxKey | None] = {}
        self._frames = protocol.FrameParser()
        self._last_read = time.monotonic()

    def data_received(self, data: bytes) -> None:
        if self.closed.done():
            return
        try:
            messages = self._frames.feed(data)
        except protocol.ProtocolError as exc:
            self.closed.set_exception(exc)
            return
        if not messages:
            return
        now = time.monotonic()
        arrived = HOLDS.arrived(self._last_read, now)  # earlier if a run held the loop meanwhile
        self._last_read = now
        tasks, unstarted = self.tasks, self.unstarted
        for message in messages:
            if message.get("op") == "cancel":
                call = message.get("call")
                cancelled = tasks.get(call)
                if cancelled is not None:
                    cancelled.cancel()
                    if call in unstarted:  # it never runs, so it cannot say so itself (nor forget itself)
                        _started(unstarted, call)
                        del tasks[call]
                        self.writer.write(protocol.encode({"id": call, "cancelled": True}))
                continue
            call_id = message.get("id")
            sandbox = _sandbox_of(message)
            if sandbox is not None and self.at_once and not message.get("logs") and not self.writer.backlogged():
                frame = _answer_now(self.pool, message, self.writer, sandbox, arrived)
                if frame is not None:
                    self.writer.write(frame)
                    continue
            unstarted[call_id] = sandbox
            if sandbox is not None:
                arrivals.read(sandbox)
            tasks[call_id] = self._loop.create_task(  # the loop's own: no look-up of the running loop
                _answer(self.pool, message, self.writer, received=arrived, unstarted=unstarted, tasks=tasks)
            )

    def eof_received(self) -> bool | None:
        self._end()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._end()

    def _end(self) -> None:
        if self.closed.done():
            return
        try:
            self._frames.end()
        except protocol.ProtocolError as exc:
            self.closed.set_exception(exc)
        else:
            self.closed.set_result(None)


async def _answer(
    pool: SandboxPool,
    message: dict[str, Any],
    writer: protocol.FrameWriter,
    *,
    received: float | None = None,
    unstarted: dict[Any, SandboxKey | None] | None = None,
    tasks: dict[Any, asyncio.Task[None]] | None = None,
) -> None:
    """Answer one call; `tasks` (where its task is, by id) loses it as it ends.

    A run is awaited here rather than in a coroutine of its own: one level less for each of
    its suspensions and resumptions to pass through.
    """
    call_id = message.get("id")
    reports: _Reports | None = None
    try:
        sandbox = None if unstarted is None else _started(unstarted, call_id)
        if sandbox is not None and arrivals.coming(sandbox):
            arrivals.follow()  # in this task's own context: more runs for its sandbox are about to start
        try:
            if message.get("op") == "run":
                reports, run = _run(pool, message, writer, call_id, received, sandbox)
                if run is None:
                    reply = {"id": call_id, "missing": True}
                else:
                    reply = {"id": call_id, "result": protocol.result_to_json(await run)}
            else:
                reply = {"id": call_id}
                reply.update(await _handle(pool, message))
        except SourcesMissing:
            reply = {"id": call_id, "missing": True}  # its sandbox was replaced while it waited: the supervisor resends
        except FnboxError as exc:
            reply = {"id": call_id, "error": exc.to_json()}
        except asyncio.CancelledError:
            try:
                writer.write(protocol.encode({"id": call_id, "cancelled": True}))
            except Exception:
                pass
            raise
        except BaseException as exc:
            reply = _failed(call_id, exc)
        finally:
            if reports is not None and reports.wait_report is not None:
                reports.wait_report.cancel()
        writer.write(_frame(call_id, reply))
        await writer.drain()
    finally:
        if tasks is not None:
            tasks.pop(call_id, None)


def _answer_now(
    pool: SandboxPool, message: dict[str, Any], writer: protocol.FrameWriter, key: SandboxKey, received: float
) -> bytes | None:
    """The answer frame of a run frame whose run the pool makes at once, in the read that brought
    it (see SandboxPool.run_now): no task, nor a turn of the loop, for the calls most runs are.
    None, with nothing done, when the run needs a task (`_answer`)."""
    call_id = message.get("id")
    try:
        reports = _Reports(call_id, writer, received)
        result = pool.run_now(
            key,
            message["function"],
            message["parameters"],
            protocol.limits_from_json(message["limits"]),
            label=f"call-{call_id}",
            on_start=reports.start,
            env=message.get("env"),
        )
        if result is None:
            return None
        reply = {"id": call_id, "result": protocol.result_to_json(result)}
    except FnboxError as exc:
        reply = {"id": call_id, "error": exc.to_json()}
    except BaseException as exc:  # as `_answer`: the read goes on to the next frame
        reply = _failed(call_id, exc)
    return _frame(call_id, reply)


def _failed(call_id: Any, exc: BaseException) -> dict[str, Any]:
    """The answer to a call the worker itself failed (a malformed frame, a bug)."""
    return {"id": call_id, "error": SandboxCrashed(f"the worker failed: {type(exc).__name__}: {exc}").to_json()}


def _frame(call_id: Any, reply: dict[str, Any]) -> bytes:
    """A call's answer as a frame; an answer that cannot be sent is answered with why."""
    try:
        return protocol.encode(reply)
    except protocol.ProtocolError as exc:
        return protocol.encode(
            {"id": call_id, "error": MemoryLimitExceeded(f"the answer is too big to send: {exc}").to_json()}
        )
    except (TypeError, ValueError) as exc:
        return protocol.encode({"id": call_id, "error": SandboxCrashed(f"the answer cannot be sent: {exc}").to_json()})


def _sandbox_of(message: dict[str, Any]) -> SandboxKey | None:
    """The sandbox a frame runs on, if it is a run."""
    key = message.get("key")
    if message.get("op") != "run" or not isinstance(key, list) or len(key) != 3:
        return None
    return SandboxKey(*key) if all(isinstance(part, str) for part in key) else None


def _started(unstarted: dict[Any, SandboxKey | None], call_id: Any) -> SandboxKey | None:
    """A call took its first step (or was cancelled before it): no longer counted as about to start."""
    sandbox = unstarted.pop(call_id, None)
    if sandbox is not None:
        arrivals.started(sandbox)
    return sandbox


class _Reports:
    """What a run tells the supervisor before its answer, as it happens: that it waits for its turn,
    that it starts late, its log entries (one object per run rather than a closure for each)."""

    __slots__ = ("call_id", "received", "wait_report", "waited", "writer")

    def __init__(self, call_id: Any, writer: protocol.FrameWriter, received: float) -> None:
        self.call_id = call_id
        self.writer = writer
        self.received = received
        self.waited = False
        self.wait_report: asyncio.TimerHandle | None = None

    def wait(self) -> None:
        # Queued behind another call of its workspace: no deadline runs until it starts. Said
        # only once it has waited LATE_START, so that a short wait costs no frame (nor "started").
        self.wait_report = loops.running().call_later(LATE_START, self._waiting)

    def _waiting(self) -> None:
        self.waited = True
        _report(self.writer, protocol.encode({"id": self.call_id, "waiting": True}))

    def start(self) -> None:
        # The supervisor's deadline counts from the start of the run, not from its queueing.
        if self.wait_report is not None:
            self.wait_report.cancel()
        if self.waited or time.monotonic() - self.received > LATE_START:
            _report(self.writer, protocol.encode({"id": self.call_id, "started": True}))

    def log(self, entry: LogEntry) -> None:
        try:
            _report(self.writer, protocol.encode({"id": self.call_id, "log": entry}))
        except (protocol.ProtocolError, TypeError, ValueError):
            pass  # it still ends up in the run's logs, or its error says why not


def _run(
    pool: SandboxPool,
    message: dict[str, Any],
    writer: protocol.FrameWriter,
    call_id: Any,
    received: float | None,
    sandbox: SandboxKey | None,
) -> tuple[_Reports | None, Coroutine[Any, Any, RunResult] | None]:
    """A run frame's reports and its run on the pool, to await; no run when the supervisor must send its sources.

    `sandbox` is the frame's key, when its read already made it (see `_sandbox_of`).
    """
    key = SandboxKey(*message["key"]) if sandbox is None else sandbox
    sources = message.get("sources")
    if sources is None and key not in pool:
        return None, None
    RUN_LABEL.set(f"call-{call_id}")  # this task's own context: see RUN_LABEL
    reports = _Reports(call_id, writer, time.monotonic() if received is None else received)
    return reports, pool.run(
        key,
        protocol.sources_from_json(sources) if sources else (),
        message["function"],
        message["parameters"],
        protocol.limits_from_json(message["limits"]),
        on_log=reports.log if message.get("logs") else None,
        on_start=reports.start,
        on_wait=reports.wait,
        env=message.get("env"),
        egress=_egress_entries(message.get("egress")),
    )


async def _handle(pool: SandboxPool, message: dict[str, Any]) -> dict[str, Any]:
    """The answer to a frame other than a run."""
    operation = message.get("op")
    if operation == "compile":
        errors = await pool.compile(
            SandboxKey(*message["key"]),
            protocol.sources_from_json(message["sources"]),
            keep_on_error=bool(message.get("keep_on_error")),
        )
        return {"errors": {name: error.to_json() for name, error in errors.items()}}
    if operation == "drop":
        await pool.drop(message["workspace"])
        return {}
    if operation == "metrics":
        return {"text": metrics.exposition().decode()}
    raise SandboxCrashed(f"unknown operation {operation!r}")


#: Whether a run may hold this worker's event loop (a Python run inline, a test's fake): then a
#: frame saying a run waits, starts or logs leaves at once, as the loop may not get back to it
#: for a while. V8 runs JavaScript, and Python runs run (unless inline), on threads of their
#: own: there such a frame leaves with the other frames of the loop's turn, in one write.
_reports_at_once = True


def _report(writer: protocol.FrameWriter, frame: bytes) -> None:
    writer.write(frame)
    if _reports_at_once:
        writer.flush()


def _egress_entries(entries: Any) -> list[str] | None:
    """A run frame's `egress` list (the workspace's narrowing of the policy), as the pool takes it."""
    if entries is None:
        return None
    if not isinstance(entries, list) or not all(isinstance(entry, str) for entry in entries):
        raise SandboxCrashed("a run frame's egress must be a list of strings")
    return entries


def _factory(
    language: str, factory_path: str | None, python_modules: list[str] | None, node_modules: str | None = None
) -> SandboxFactory:
    if factory_path:
        module, _, name = factory_path.partition(":")
        factory: SandboxFactory = getattr(importlib.import_module(module), name)()
        return factory
    return sandbox_factory(
        language,
        python_modules=None if python_modules is None else tuple(python_modules),
        node_modules=None if node_modules is None else tuple(filter(None, node_modules.split(","))),
    )


async def _main(args: argparse.Namespace, protocol_in: int, protocol_out: int) -> None:
    loop = asyncio.get_running_loop()
    transport, stream_protocol = await loop.connect_write_pipe(
        asyncio.streams.FlowControlMixin, os.fdopen(protocol_out, "wb", 0)
    )
    writer = protocol.FrameWriter(asyncio.StreamWriter(transport, stream_protocol, None, loop))
    pool = SandboxPool(
        factories={args.language: _factory(args.language, args.factory, args.python_modules, args.node_modules)},
        max_sandboxes=args.max_sandboxes,
        idle_timeout=args.idle_timeout,
        max_queue=args.max_queue,
        egress=EgressSettings.from_json(args.egress).build(),
        concurrency_per_sandbox=args.concurrency_per_sandbox,
    )
    await pool.start()
    loops.pin(loop)  # this process's only loop, from here to its end
    tasks: dict[Any, asyncio.Task[None]] = {}
    recycler = (
        asyncio.create_task(_recycle_when_stuck(args.stuck_after, tasks)) if args.stuck_after is not None else None
    )
    try:
        await serve(pool, os.fdopen(protocol_in, "rb", 0), writer, tasks, at_once=_runs_inline(args))
    finally:
        if recycler is not None:
            recycler.cancel()
        await pool.close()
        loops.pin(None)


def _runs_inline(args: argparse.Namespace) -> bool:
    """Whether this worker makes short Python runs on its loop's thread (see sandboxes.python.inline)."""
    return bool(args.language == "python" and args.inline_runs)


async def _recycle_when_stuck(stuck_after: float, tasks: dict[Any, asyncio.Task[None]]) -> None:
    from fnbox.sandboxes.js.engine import stuck_isolates

    stuck_since: float | None = None
    while True:
        await asyncio.sleep(STUCK_CHECK_EVERY)
        if not stuck_isolates(stuck_after):
            stuck_since = None
            continue
        stuck_since = stuck_since or time.monotonic()
        if not tasks or time.monotonic() - stuck_since > RECYCLE_GRACE:
            logging.getLogger("fnbox.worker").warning(
                "fnbox worker %d: an isolate is stuck in native code; recycling", os.getpid()
            )
            os._exit(protocol.RECYCLED)  # a normal exit would wait for the stuck thread


def _schedule_as_batch_work() -> None:
    """Have Linux schedule this process's threads as batch work (`SCHED_BATCH`): a thread
    woken here waits for the running one's turn to end rather than taking its CPU at once.

    The server's event loop and a JavaScript worker's threads (its loop, V8's) wake each other
    for every run; woken on the CPU of the thread that woke it, a thread would take that CPU
    from it in the middle of its work. As batch work, a warm JavaScript hello answered 1.07 to
    1.12 times the requests/s in alternating rounds (`bench/variants.py`); Python, whose short
    runs wake no other thread, was unchanged. Fairness is as before: only the wake-up differs.
    """
    if hasattr(os, "SCHED_BATCH"):
        with contextlib.suppress(OSError):
            os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m fnbox.sandboxes.worker")
    parser.add_argument("--language", required=True, choices=list(LANGUAGES))
    parser.add_argument("--max-sandboxes", type=int, required=True)
    parser.add_argument("--idle-timeout", type=float, required=True)
    parser.add_argument("--max-queue", type=int, required=True)
    parser.add_argument("--python-modules", nargs="*", help="the import allow-list (default: every vetted module)")
    parser.add_argument("--node-modules", help="the Node modules a function may require, comma-separated")
    parser.add_argument("--address-space-mb", type=float, help="RLIMIT_AS of this process")
    parser.add_argument(
        "--stuck-after", type=float, help="JavaScript: seconds before a stuck isolate recycles the worker"
    )
    parser.add_argument("--factory", help="module:callable building a sandbox factory (tests)")
    parser.add_argument("--egress", default="{}", help="the outbound settings, as EgressSettings JSON")
    parser.add_argument("--concurrency-per-sandbox", type=int, default=CONCURRENCY_PER_SANDBOX)
    parser.add_argument("--inline-runs", action="store_true", help="short Python runs on the loop thread")
    parser.add_argument("--cpus", help="the CPUs this process keeps to, comma-separated (else the supervisor's)")
    args = parser.parse_args(argv)

    global _reports_at_once
    _reports_at_once = _runs_inline(args) or args.factory is not None
    logs.configure(os.environ.get("LOG_FORMAT", "text"), level=logging.WARNING)
    # Die with the supervisor even when stuck in C code that never reads the pipe again.
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, 9)
    if args.cpus:
        # Before any thread starts (each keeps the CPUs of the thread that started it): the server
        # may have kept itself, and so this process, to one CPU (see fnbox.server.affinity).
        os.sched_setaffinity(0, {int(cpu) for cpu in args.cpus.split(",")})
    _schedule_as_batch_work()  # before any thread starts too: each keeps its starter's policy
    protocol_in, protocol_out = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(2, 1)
    if args.address_space_mb:
        limit = int(args.address_space_mb * MEGABYTE)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        if args.language == "python":
            from fnbox.sandboxes.python.memory import tune_allocator_under_address_space_limit

            tune_allocator_under_address_space_limit()  # before any thread starts
    if _runs_inline(args):
        from fnbox.sandboxes.python import inline

        inline.enable()  # short runs on the loop thread: see sandboxes.python.inline
    try:
        uvloop.run(_main(args, protocol_in, protocol_out))
    except KeyboardInterrupt:
        pass
    sys.exit(0)


if __name__ == "__main__":
    main()
