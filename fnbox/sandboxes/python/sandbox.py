"""PythonSandbox: one workspace version's Python functions, warm in one module namespace.

A run happens on a worker thread (executor.py), or, in a worker process, when it is short and
its workspace cannot wait, on the caller's event-loop thread (inline.py: a watchdog thread
stands in for the event loop below). Its deadline is enforced twice:

1. in the thread: the policy put a deadline check in every loop, function and
   comprehension of user code, so a run past its timeout raises `Deadline` by itself
   and the sandbox stays usable;
2. in the event loop: a watchdog answers TimeoutExceeded shortly after the timeout even
   if the thread is stuck outside user code, marks the sandbox broken (the pool drops it)
   and raises `Deadline` asynchronously into the thread for when it returns to bytecode.

Cancelling the caller's task stops a run: a queued one never starts; a running one has its
deadline moved to now, so its next check raises `Deadline`; one still going CANCEL_WAIT
seconds later (in host code) gets `Deadline` raised into its thread and the sandbox is
marked broken, as with the watchdog.

Runs overlap while they wait (outbound requests, `time.sleep`): see turns.py. The pool
gives a sandbox up to FUNCTIONS_CONCURRENCY_PER_SANDBOX runs at once; their user code takes
turns, each with its own deadline, `env`, logs, budget and outbound session.
A workspace whose functions cannot wait has its calls queued in the sandbox instead, and
one thread runs them one after the other (runqueue.py); a call queued behind a run that
breaks the sandbox goes back to the pool (pool.Requeue) for a fresh one.

`limits.memory` only scales the size guards here: an in-process run cannot be capped
for real; the worker processes' OS limit does that. A run that hits that limit gets a
real MemoryError, answered as MemoryLimitExceeded once its frames are freed; its sandbox
is dropped, with whatever its globals held.
"""

from __future__ import annotations

import asyncio
import decimal
import functools
import sys
import threading
import traceback
import weakref
from collections.abc import Callable, Mapping, Sequence
from time import perf_counter, thread_time
from typing import Any

from fnbox.sandboxes import loops
from fnbox.sandboxes.base import RUN_LABEL, FunctionSource, Limits, LiveLog, LogCollector, OnLog, RunResult
from fnbox.sandboxes.errors import (
    CompilationError,
    FnboxError,
    FunctionError,
    MemoryLimitExceeded,
    NotFound,
    Overloaded,
    SandboxCrashed,
    TimeoutExceeded,
)
from fnbox.sandboxes.holds import HOLDS
from fnbox.sandboxes.network import Egress
from fnbox.sandboxes.pool import QUEUE_WAIT, Requeue
from fnbox.sandboxes.python import inline
from fnbox.sandboxes.python.executor import (
    IDLE_THREAD_NAME,
    executor,
    hand_back,
    interrupt,
    name_thread,
    thread_name,
)
from fnbox.sandboxes.python.guards import Budget, Deadline, Guards
from fnbox.sandboxes.python.inline import INLINE_GRACE, INLINE_HOLD, Expiry, InlineRecord, may_wait, watchdog
from fnbox.sandboxes.python.modules import ALLOWED_MODULES, Modules
from fnbox.sandboxes.python.namespace import build_namespace
from fnbox.sandboxes.python.output import Output
from fnbox.sandboxes.python.results import NotJSON, error_message, format_stack, to_json, user_frames
from fnbox.sandboxes.python.runqueue import Queued, RunQueue
from fnbox.sandboxes.python.sizes import TooBig, decimal_context
from fnbox.sandboxes.python.source import MAX_SOURCE_SIZE, compile_function
from fnbox.sandboxes.python.turns import Run, Turns, set_current

#: Runs of this process that may overlap another run of their own sandbox. Each holds a
#: thread while it waits, and a worker's memory cap holds about 90 of them (see executor.py):
#: past this many, such runs wait for a thread on the event loop, and a sandbox's first run,
#: a neighbour's hello, always finds one.
MAX_OVERLAPPING = 48
#: How long after the timeout the watchdog gives up on the thread.
WATCHDOG_GRACE = 0.25
#: How long a cancelled run has to reach a deadline check before it is interrupted.
CANCEL_WAIT = 0.5

_Entry = tuple[Callable[..., Any], tuple[str, ...]]


class PythonSandbox:
    """Compiled once, run many times; runs overlap only while they wait (see turns.py)."""

    #: Runs the pool lets in at once: as many as it allows (FUNCTIONS_CONCURRENCY_PER_SANDBOX).
    #: Where a run can wait, they overlap while they wait; otherwise they queue in the sandbox
    #: (runqueue.py), holding no thread, and one thread runs them one after the other.
    concurrency = 1 << 16
    #: Its runs are given their outbound access (see Sandbox.run).
    reaches_network = True
    #: It calls `on_start` once a run has the sandbox's turn (see Sandbox).
    reports_start = True

    def __init__(self, functions: Sequence[FunctionSource], allowed_modules: frozenset[str]) -> None:
        self.errors: dict[str, CompilationError] = {}
        self.broken = False
        self._budget = Budget()
        self._guards = Guards({}, self._budget)
        self._output = Output()
        self._namespace = build_namespace(self._guards, Modules(self._guards, allowed_modules), self._output)
        self._functions: dict[str, _Entry] = {}
        self._sources: dict[str, tuple[str, list[str]]] = {}
        self._imports: list[frozenset[str]] = []
        keeps_state = False
        source_left = MAX_SOURCE_SIZE
        for function in functions:
            try:
                compiled = compile_function(function, allowed_modules, source_left=source_left)
            except CompilationError as exc:
                self.errors[function.name] = exc
                self._namespace[function.name] = _does_not_compile(exc)
                continue
            finally:
                source_left -= len(function.code)
            exec(compiled.code, self._namespace)  # only defines the function
            self._functions[function.name] = (self._namespace[function.name], compiled.parameters)
            self._sources[compiled.filename] = (function.name, compiled.lines)
            self._imports.append(compiled.imports)
            keeps_state = keeps_state or compiled.keeps_state
        self._thread_lock = threading.Lock()
        waits = any(may_wait(imports) for imports in self._imports)
        #: The calls of a sandbox whose runs cannot wait, for the thread that runs them in turn.
        self._queue = None if waits else RunQueue(self._thread_lock)
        # A run that goes long inline is run again on a thread (see _run_inline): only where
        # nothing of the first attempt can show in the second.
        self._inline = InlineRecord(allowed=not waits and not keeps_state)
        self._in_flight = 0  # runs of this sandbox given to a thread (or waiting to be), on the loop
        self._turns = Turns(self._namespace, self._budget, self._set_collector, self._thread_lock, self._stuck)
        self._closed = False

    def _set_collector(self, collector: LogCollector) -> None:
        self._output.collector = collector

    def _stuck(self) -> None:
        self.broken = True

    async def run(
        self,
        function: str,
        parameters: Mapping[str, Any],
        limits: Limits,
        *,
        on_log: OnLog | None = None,
        env: Mapping[str, str] | None = None,
        outbound: Egress | None = None,
        on_start: Callable[[], None] | None = None,
        on_wait: Callable[[], None] | None = None,
    ) -> RunResult:
        entry = self._functions.get(function)
        if entry is None:
            error = self.errors.get(function)
            if error is not None:
                raise CompilationError(error.message, details=dict(error.details), logs=[], duration=0.0)
            message = f"no Python function named {function!r}"
            raise NotFound(message, details={"function": function}, logs=[], duration=0.0)
        if self.broken or self._closed:
            why = "closed" if self._closed else "dropped after a run got stuck or ran out of memory"
            raise SandboxCrashed(
                f"this Python sandbox was {why}", details={"function": function}, logs=[], duration=0.0
            )
        loop = loops.running()
        overlapping = self._in_flight > 0
        if not overlapping and on_log is None and self._inline_now():
            result = self._run_inline(function, entry, parameters, limits, loop, env, on_start, RUN_LABEL.get())
            if result is not None:
                return result
        self._in_flight += 1
        try:
            if self._queue is not None:
                return await self._run_queued(
                    function, entry, parameters, limits, loop, on_log, env, outbound, on_start, on_wait
                )
            if not overlapping:
                return await self._run(
                    function, entry, parameters, limits, loop, on_log, env, outbound, on_start, on_wait
                )
            slots = _overlapping(loop)
            try:
                async with asyncio.timeout(limits.timeout):
                    await slots.acquire()
            except TimeoutError:
                message = f"function {function!r} waited {limits.timeout:g} s for a thread (runs that wait fill them)"
                raise Overloaded(message, details={"function": function}, logs=[], duration=0.0) from None
            try:
                return await self._run(
                    function, entry, parameters, limits, loop, on_log, env, outbound, on_start, on_wait
                )
            finally:
                slots.release()
        finally:
            self._in_flight -= 1

    def run_now(
        self,
        function: str,
        parameters: Mapping[str, Any],
        limits: Limits,
        *,
        label: str | None,
        env: Mapping[str, str] | None = None,
        on_start: Callable[[], None] | None = None,
    ) -> RunResult | None:
        """The run, made at once on the caller's event loop, when `run` would make it inline without
        awaiting anything (see inline.py); None, with nothing done, when it would not.

        `label` names the run as RUN_LABEL does in `run`'s context. Raises what `run` would,
        and Requeue for a run stopped at INLINE_HOLD, which the caller then makes through `run`.
        """
        entry = self._functions.get(function)
        if entry is None or self.broken or self._closed or self._in_flight or not self._inline_now():
            return None
        return self._run_inline(function, entry, parameters, limits, loops.running(), env, on_start, label)

    def _inline_now(self) -> bool:
        """Whether a run that finds no other run of this sandbox in flight goes inline."""
        return self._inline.ready() and inline.enabled() and not inline.paused()

    def _run_inline(
        self,
        function: str,
        entry: _Entry,
        parameters: Mapping[str, Any],
        limits: Limits,
        loop: asyncio.AbstractEventLoop,
        env: Mapping[str, str] | None,
        on_start: Callable[[], None] | None,
        label: str | None,
    ) -> RunResult | None:
        """Run on this thread, the caller's event loop held meanwhile (see inline.py); None if the turn is taken.

        A run still going INLINE_HOLD seconds after its start is stopped there, by its own deadline
        checks or else by the watchdog, and raises Requeue: the pool runs it again from the start,
        on a thread (on a fresh sandbox if the watchdog interrupted it), with its whole timeout.
        Its sandbox runs on threads from then on.
        """
        job = Run(loop, None, label, limits.memory, env)
        if not self._turns.try_take(job):
            return None
        limit = sys.getrecursionlimit()
        cpu: float | None = None  # the thread's CPU time as the function is called (each read is a system call)
        stopped = True  # unless it ends otherwise than at its timeout or memory cap
        try:
            try:
                if on_start is not None:
                    on_start()
                decimal.setcontext(_bounded_decimal())
                if _thread_headroom:  # user code recurses as deep as on a run thread (the probes' frames counted)
                    sys.setrecursionlimit(max(limit + _thread_headroom[0] - _headroom_here() - 1, 100))
                with self._thread_lock:
                    job.thread_id = threading.get_ident()
                    job.started = perf_counter()
                    job.deadline = job.started + limits.timeout
                    self._turns.install(job)
                    held_until = job.started + INLINE_HOLD
                    if held_until < job.deadline:  # its checks stop it there (the namespace's, not the run's)
                        self._namespace["_deadline_"] = held_until
                expiry = min(job.deadline + WATCHDOG_GRACE, held_until + INLINE_GRACE)
                watchdog().arm(Expiry(expiry, functools.partial(self._expire_inline, job)))
                if label is not None:
                    _loop_name.run(label)
                set_current(job)
                cpu = thread_time()
                result = self._call(function, entry, parameters, limits, job.collector, job.started)
                stopped = False
                return result
            except FnboxError as exc:
                stopped = isinstance(exc, (TimeoutExceeded, MemoryLimitExceeded))
                raise
            finally:
                self._end_inline(job, label, limit, _cpu_since(cpu), stopped)
        except (Deadline, TimeoutExceeded) as exc:
            if isinstance(exc, Deadline):  # raised into this thread by the watchdog after the run's own handlers
                self._end_inline(job, label, limit, _cpu_since(cpu), True)
            # Stopped at INLINE_HOLD, before its timeout: the pool runs it again on a thread (on a
            # fresh sandbox if the watchdog dropped this one).
            if perf_counter() < job.deadline:
                inline.moved()
                raise Requeue from None
            if isinstance(exc, TimeoutExceeded):
                failure: FnboxError = exc
            else:
                message = _timeout_message(function, limits)
                failure = self._failure(TimeoutExceeded, function, message, None, job.started, job.collector)
        if job.interrupted:  # in host code that its checks do not reach: as the watchdog of a run thread says
            failure.message += " and was interrupted; its sandbox is dropped"
        raise failure

    def _end_inline(self, job: Run, label: str | None, recursion_limit: int, cpu: float, stopped: bool) -> None:
        """Put the thread back as it was: safe to repeat, and proof against the one Deadline the watchdog may raise."""
        while True:
            try:
                with self._thread_lock:
                    job.thread_id = None  # the watchdog leaves it alone from now on
                    if job.interrupted:
                        interrupt(threading.get_ident(), None)  # a Deadline still pending
                break
            except Deadline:  # the pending one, raised before it was cleared
                continue
        if job.ended:
            return
        job.ended = True
        sys.setrecursionlimit(recursion_limit)
        watchdog().disarm()
        set_current(None)
        if job.started:
            HOLDS.held(perf_counter() - job.started)
        stopped = stopped or job.interrupted or self.broken
        self._inline.ran(cpu, stopped=stopped, inline=True)
        self._turns.give(job)
        if label is not None:
            if stopped:
                _loop_name.back()
            else:
                _loop_name.back_soon(job.loop)

    def _expire_inline(self, job: Run) -> None:
        """On the watchdog's thread: the inline run is past INLINE_HOLD or its timeout in code its checks do not reach."""
        with self._thread_lock:
            if job.thread_id is None:
                return
            interrupt(job.thread_id, Deadline)
            job.interrupted = True
            self.broken = True  # what it interrupted may be left half done: the pool drops the sandbox

    async def _run(
        self,
        function: str,
        entry: _Entry,
        parameters: Mapping[str, Any],
        limits: Limits,
        loop: asyncio.AbstractEventLoop,
        on_log: OnLog | None,
        env: Mapping[str, str] | None,
        outbound: Egress | None,
        on_start: Callable[[], None] | None = None,
        on_wait: Callable[[], None] | None = None,
    ) -> RunResult:
        live = None if on_log is None else LiveLog(loop, on_log)
        job = Run(loop, live, RUN_LABEL.get(), limits.memory, env, outbound)
        job.on_start, job.on_wait = on_start, on_wait
        try:
            future = executor().submit(self._run_sync, function, entry, parameters, limits, job)
        except MemoryError as exc:
            raise MemoryLimitExceeded(str(exc), details={"function": function}, logs=[], duration=0.0) from None
        return await self._outcome(future, job, function, limits)

    async def _run_queued(
        self,
        function: str,
        entry: _Entry,
        parameters: Mapping[str, Any],
        limits: Limits,
        loop: asyncio.AbstractEventLoop,
        on_log: OnLog | None,
        env: Mapping[str, str] | None,
        outbound: Egress | None,
        on_start: Callable[[], None] | None,
        on_wait: Callable[[], None] | None,
    ) -> RunResult:
        """Queue the call for the thread that drains this sandbox's queue (see runqueue.py)."""
        assert self._queue is not None
        live = None if on_log is None else LiveLog(loop, on_log)
        job = Run(loop, live, RUN_LABEL.get(), limits.memory, env, outbound)
        job.on_start = on_start
        future: asyncio.Future[RunResult] = loop.create_future()
        call = Queued(future, job, function, entry, parameters, limits, perf_counter())
        if self._queue.put(call):
            try:
                executor().start(self._drain)
            except MemoryError as exc:
                self._queue.clear()
                self._queue.stop()
                raise MemoryLimitExceeded(str(exc), details={"function": function}, logs=[], duration=0.0) from None
        elif on_wait is not None:
            on_wait()
        return await self._outcome(future, job, function, limits, call.since)

    async def _outcome(
        self, future: asyncio.Future[RunResult], job: Run, function: str, limits: Limits, since: float | None = None
    ) -> RunResult:
        """A run's outcome, under its watchdog; a cancel stops the run; what it left open is closed."""
        watchdog = job.loop.call_later(
            limits.timeout + WATCHDOG_GRACE, self._expire, future, job, function, limits, since
        )
        try:
            return await future
        except asyncio.CancelledError:
            await self._cancel(job)
            raise
        finally:
            watchdog.cancel()
            if job.live is not None:
                job.live.close()
            job.ended = True  # no new request of it starts from here
            if job.pending or job.session is not None:
                await job.end()  # cancel and close what it left open

    def _drain(self) -> bool:
        """On a run thread: run the queued calls one after the other, each answered as it ends.

        Each run starts its own deadline, limits, 'started' report and thread name when it
        starts (in `_run_sync`). The thread is named after the run it runs, and keeps that
        name only until the next one starts or the drain ends. Where jobs of other sandboxes
        wait for a thread, the drain goes to the back of their line after each run.

        True once the thread counts as idle again: it does so as it finds the queue empty, so
        that a call queued right after finds it idle instead of starting another thread.
        """
        queue = self._queue
        assert queue is not None
        threads = executor()
        named = False  # the thread bears the name of the last run
        try:
            while (call := queue.take(on_empty=threads.idle)) is not None:
                if self.broken:
                    self._requeue(call)
                    continue
                job = call.job
                if named and job.label is None:
                    name_thread(IDLE_THREAD_NAME)
                named = job.label is not None
                outcome: RunResult | BaseException | None
                try:
                    outcome, failed = (
                        self._run_sync(call.name, call.entry, call.parameters, call.limits, job, False),
                        False,
                    )
                except BaseException as exc:  # delivered to the caller, whatever it is
                    outcome, failed = exc, True
                    self._leave(job)
                hand_back(call.future, outcome, failed)
                del call, job, outcome
                if threads.contended() and len(queue):
                    threads.start(self._drain)  # the queue stays drained, by the next thread free
                    return False
            return True
        except BaseException:
            queue.stop()  # a drain that could not go on: the next call queued starts one
            return False
        finally:
            if named:
                try:
                    name_thread(IDLE_THREAD_NAME)
                except Deadline:  # raised into the thread late: the run it was for is over
                    pass

    def _leave(self, job: Run) -> None:
        """The run's thread leaves it after an exception out of `_run_sync` (a Deadline raised into it late)."""
        while True:
            try:
                with self._thread_lock:
                    if job.thread_id is not None:
                        job.thread_id = None
                        interrupt(threading.get_ident(), None)  # a Deadline still pending
                return
            except Deadline:
                continue

    def _requeue(self, call: Queued) -> None:
        """Give a queued call back to the pool, for a fresh sandbox (this one broke before it started)."""
        with self._thread_lock:
            call.job.cancelled = True
        hand_back(call.future, Requeue(), True)

    def _requeue_all(self) -> None:
        """This sandbox broke: the calls queued behind the run that broke it go to a fresh one."""
        if self._queue is not None:
            for call in self._queue.clear():
                self._requeue(call)

    async def _cancel(self, job: Run) -> None:
        """Stop a run whose caller gave up: see the module's docstring."""
        with self._thread_lock:
            job.cancelled = True  # if it has not started, it never will
            if job.thread_id is None:
                return
            job.deadline = 0.0
            if job.has_turn:
                self._namespace["_deadline_"] = 0.0
        job.cancel_requests()
        try:
            give_up = perf_counter() + CANCEL_WAIT
            while job.thread_id is not None and perf_counter() < give_up:
                await asyncio.sleep(0.005)
        finally:
            with self._thread_lock:
                # In host code, or cancelled again meanwhile; a run waiting for its turn stops when it gets it.
                if job.thread_id is not None and not job.away:
                    interrupt(job.thread_id, Deadline)
                    job.interrupted = True
                    self.broken = True
            if self.broken:
                self._requeue_all()

    def close(self) -> None:
        """Drops the namespace: a thread still running in it stops at its next check."""
        self._closed = True
        self._functions.clear()
        self._sources.clear()
        self._namespace.clear()

    # The part that runs on the worker thread.

    def _run_sync(
        self, name: str, entry: _Entry, parameters: Mapping[str, Any], limits: Limits, job: Run, rename: bool = True
    ) -> RunResult | None:
        """One run, with the sandbox's turn; `rename`: the thread takes its idle name back after it."""
        wait = max(limits.timeout, QUEUE_WAIT)
        if not self._turns.take(job, wait):
            message = f"waited {wait:g} s for a turn in the workspace's sandbox without getting one"
            raise Overloaded(message, details={"function": name}, logs=[], duration=0.0)
        try:
            with self._thread_lock:
                if job.cancelled:
                    return None  # nobody waits for it any more
                job.thread_id = threading.get_ident()
                job.started = perf_counter()
                job.deadline = job.started + limits.timeout
                self._turns.install(job)
            if job.on_start is not None:
                try:
                    job.loop.call_soon_threadsafe(job.on_start)
                except RuntimeError:  # the caller's loop is closed
                    pass
            if job.label is not None:
                name_thread(job.label)
            if not _thread_headroom:
                _thread_headroom.append(_headroom())  # for inline runs (see _run_inline)
            set_current(job)
            timed = inline.enabled()  # the CPU time of its runs tells whether they may go inline
            cpu = thread_time() if timed else 0.0
            stopped = True  # unless it ends otherwise than at its timeout or memory cap
            try:
                result = self._call(name, entry, parameters, limits, job.collector, job.started)
                stopped = False
                return result
            except FnboxError as exc:
                stopped = isinstance(exc, (TimeoutExceeded, MemoryLimitExceeded))
                raise
            finally:
                if timed:
                    self._inline.ran(thread_time() - cpu, stopped=stopped or self.broken)
                set_current(None)
                if rename and job.label is not None:
                    name_thread(IDLE_THREAD_NAME)
                with self._thread_lock:
                    job.thread_id = None
                    if job.interrupted:  # the watchdog or a cancel fired: clear a still pending Deadline
                        interrupt(threading.get_ident(), None)
        finally:
            self._turns.give(job)

    def _call(
        self,
        name: str,
        entry: _Entry,
        parameters: Mapping[str, Any],
        limits: Limits,
        collector: LogCollector,
        started: float,
    ) -> RunResult:
        function, _ = entry
        arguments = dict(parameters)  # declared ones bind their locals, the others reach `params`
        namespace = self._namespace
        failure: FnboxError
        try:
            try:
                result = to_json(function(**arguments), self._budget.items, self._guards.check_deadline)
            finally:
                namespace["_deadline_"] = 0.0  # user code run later (a generator's finally) stops at once
            duration = (perf_counter() - started) * 1000
            if duration <= limits.timeout * 1000:
                return RunResult(result, collector.finish(), duration)
            failure = self._failure(TimeoutExceeded, name, _timeout_message(name, limits), None, started, collector)
        except Deadline as exc:
            failure = self._failure(TimeoutExceeded, name, _timeout_message(name, limits), exc, started, collector)
        except TooBig as exc:  # a size guard refused it before allocating: nothing to clean up
            failure = self._failure(MemoryLimitExceeded, name, f"MemoryError: {exc}", exc, started, collector)
        except MemoryError as exc:
            failure = self._out_of_memory(name, exc, started, collector)
        except NotJSON as exc:
            failure = self._failure(FunctionError, name, str(exc), None, started, collector)
        except RecursionError as exc:
            message = "RecursionError: maximum recursion depth exceeded"
            failure = self._failure(FunctionError, name, message, exc, started, collector)
        except BaseException as exc:
            try:
                failure = self._failure(FunctionError, name, error_message(exc), exc, started, collector)
            except MemoryError:
                failure = self._out_of_memory(name, exc, started, collector)
        raise failure  # outside the except blocks: no traceback of user code stays attached

    def _out_of_memory(self, name: str, exc: BaseException, started: float, collector: LogCollector) -> FnboxError:
        """A real MemoryError: the process hit its memory cap (RLIMIT_AS in a worker).

        The run's frames still hold what filled the memory: they are cleared before
        anything else is allocated. What the sandbox's globals hold (its `cache`) is
        freed by dropping the sandbox, so the worker goes on serving the others.
        """
        traceback.clear_frames(exc.__traceback__)
        self.broken = True
        message = "MemoryError: the run ran out of memory; its sandbox is dropped to free what it held"
        try:
            return self._failure(MemoryLimitExceeded, name, message, exc, started, collector)
        except MemoryError:
            duration = (perf_counter() - started) * 1000
            return MemoryLimitExceeded(message, details={"function": name}, logs=[], duration=duration)

    def _failure(
        self,
        kind: type[FnboxError],
        name: str,
        message: str,
        exc: BaseException | None,
        started: float,
        collector: LogCollector,
    ) -> FnboxError:
        duration = (perf_counter() - started) * 1000
        details: dict[str, Any] = {"function": name}
        if exc is not None:
            frames = user_frames(exc.__traceback__, self._sources)
            details["line"] = frames[-1][2] if frames else None
            details["stack"] = format_stack(frames, message)
        return kind(message, details=details, logs=collector.finish(), duration=duration)

    # The watchdog, on the event loop.

    def _expire(
        self, future: asyncio.Future[RunResult], job: Run, name: str, limits: Limits, since: float | None = None
    ) -> None:
        """`since`: when the call was queued in the sandbox (runqueue.py), whose wait is bounded here."""
        if future.done():
            return
        with self._thread_lock:
            if job.queued:  # behind the workspace's other runs: its timeout starts with its turn
                wait = max(limits.timeout, QUEUE_WAIT)
                if since is not None and perf_counter() - since > wait:
                    job.cancelled = True  # it never starts
                    message = f"waited {wait:g} s for a turn in the workspace's sandbox without getting one"
                    future.set_exception(Overloaded(message, details={"function": name}, logs=[], duration=0.0))
                    return
                asyncio.get_running_loop().call_later(limits.timeout, self._expire, future, job, name, limits, since)
                return
            thread_id, started = job.thread_id, job.started
            left = started + limits.timeout + WATCHDOG_GRACE - perf_counter()
            if job.away:  # for its turn, held by a run that its own watchdog stops
                job.cancel_requests()
            elif thread_id is not None and left <= 0:  # stuck: stop it at its next bytecode
                interrupt(thread_id, Deadline)
                job.interrupted = True
                self.broken = True  # and have the pool drop the sandbox
        if thread_id is None and started:
            return  # it ran and ended: its outcome is on the loop's queue, behind this timer
        if thread_id is None:
            message = f"function {name!r} did not get to run within its timeout (all worker threads were busy)"
            future.set_exception(Overloaded(message, details={"function": name}, logs=[], duration=0.0))
        elif left > 0:  # it waited for a thread and started late: its own deadline is later
            asyncio.get_running_loop().call_later(left, self._expire, future, job, name, limits, since)
        else:
            if self.broken:
                self._requeue_all()
            message = _timeout_message(name, limits) + " and did not stop; its sandbox is dropped"
            logs, duration = list(job.collector.entries), (perf_counter() - job.started) * 1000
            future.set_exception(TimeoutExceeded(message, details={"function": name}, logs=logs, duration=duration))


_OVERLAPPING: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()


def _overlapping(loop: asyncio.AbstractEventLoop) -> asyncio.Semaphore:
    """The slots of MAX_OVERLAPPING on this loop (an asyncio semaphore belongs to one loop)."""
    slots = _OVERLAPPING.get(loop)
    if slots is None:
        slots = _OVERLAPPING[loop] = asyncio.Semaphore(MAX_OVERLAPPING)
    return slots


#: How deep a probe called by `_run_sync` recursed, on the first run thread to run one.
_thread_headroom: list[int] = []
_loop_headrooms: dict[tuple[int, int], int] = {}


def _headroom() -> int:
    """How deep the caller's callee can recurse before RecursionError."""

    def down(depth: int) -> int:
        try:
            return down(depth + 1)
        except RecursionError:
            return depth

    return down(0)


def _cpu_since(start: float | None) -> float:
    """The calling thread's CPU time since `start` (its `thread_time()`), none if never started."""
    return 0.0 if start is None else thread_time() - start


def _headroom_here() -> int:
    """`_headroom()` from the caller, measured once per thread and coroutine chain."""
    frame, chain = sys._getframe(1), 0
    while frame is not None:  # the chain of coroutines, down to the event loop's step of their task
        chain += 1
        frame = frame.f_back  # type: ignore[assignment]
    key = (threading.get_ident(), chain)
    headroom = _loop_headrooms.get(key)
    if headroom is None:
        headroom = _loop_headrooms[key] = _headroom()
    return headroom


class _LoopName(threading.local):
    """The OS name of a loop's thread, which each inline run gives its call's label while it runs
    (sandboxes.base.RUN_LABEL: the supervisor blames the call whose thread keeps a CPU busy).

    The thread takes its own name back once its loop has run what it had ready, not after
    each run: renaming is a system call, which costs several microseconds on a busy machine,
    and the inline runs of one read of frames follow one another in one turn of the loop.
    No run is under way on the thread meanwhile, and a run stopped at its timeout or memory
    cap gives the name back at once.
    """

    def __init__(self) -> None:
        self.name: str | None = None  # the thread's own name, read before its first inline run
        self.named = False  # it bears the label of a run
        self.back_on: asyncio.AbstractEventLoop | None = None  # the loop that calls `back` soon

    def own(self) -> str:
        if self.name is None:
            self.name = thread_name()
        return self.name

    def run(self, label: str) -> None:
        self.own()  # read before the first rename
        name_thread(label)
        self.named = True

    def back(self) -> None:
        self.back_on = None
        if self.named:
            name_thread(self.own())
            self.named = False

    def back_soon(self, loop: asyncio.AbstractEventLoop) -> None:
        if self.back_on is not loop:  # (a loop closed before it called `back` is not waited for)
            self.back_on = loop
            loop.call_soon(self.back)


_loop_name = _LoopName()


_DECIMAL: list[decimal.Context] = []


def _bounded_decimal() -> decimal.Context:
    """The decimal context of inline runs: bounded, as on run threads (see executor.py)."""
    if not _DECIMAL:
        _DECIMAL.append(decimal_context())
    return _DECIMAL[0]


def _timeout_message(name: str, limits: Limits) -> str:
    return f"function {name!r} ran past its {limits.timeout:g} s timeout"


def _does_not_compile(error: CompilationError) -> Callable[..., Any]:
    """Stands in the namespace for a function that failed to compile, for its callers."""

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(error.message)

    return broken


def compile_workspace(
    functions: Sequence[FunctionSource], *, allowed_modules: Sequence[str] = ALLOWED_MODULES
) -> PythonSandbox:
    """Compile a workspace's Python functions into a warm sandbox.

    `allowed_modules` narrows the import allow-list (PYTHON_BUILTIN_MODULES); a name
    fnbox has not vetted is ignored, so it stays refused.
    """
    return PythonSandbox(functions, frozenset(allowed_modules) & frozenset(ALLOWED_MODULES))
