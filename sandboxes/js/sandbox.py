"""A workspace's JavaScript functions in one V8 context, warm and ready to run.

A run is one eval posted to the isolate's thread, always the same text, `$fnbox.go()`: its
request (run id, function, parameters' JSON) is in the mailbox, a SharedArrayBuffer both
sides use in place. The function's outcome (result or error, as JSON made inside the run)
and its logs land there too, and JS calls `notify`: that callback reads them and wakes the
caller's loop directly. No other call crosses into the isolate.

When a run times out, its eval is cancelled (V8 stops a loop still in it) and a short
probe, `$fnbox.abandon(id)`, checks the isolate answers again. JS spinning in a microtask
or a timer is out of reach of any cancel: then the probe fails, the isolate is freed, and
the sandbox is `broken`, for the pool to replace. A run can also end while work it left
behind spins on (a detached promise loop): a probe after IDLE_CHECK seconds without runs
catches that, so an idle sandbox does not burn a core for long.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from sandboxes.base import MAX_LOG_ENTRIES, MAX_LOG_MESSAGE, FunctionSource, JSONValue, Limits, LogEntry, RunResult
from sandboxes.errors import (
    CompilationError,
    FnboxError,
    InvalidParameters,
    MemoryLimitExceeded,
    NotFound,
    SandboxCrashed,
    TimeoutExceeded,
)
from sandboxes.js import codegen, outcome
from sandboxes.js.engine import Engine, EngineError, Handle, resolve, resolve_threadsafe
from sandboxes.js.mailbox import CAPACITY, HELD, Mail, Mailbox
from sandboxes.js.slot import RunSlot

__all__ = ["JsSandbox", "compile_workspace"]

#: Seconds a timed-out run's isolate has to answer the probe, or be dropped.
PROBE_TIMEOUT = 0.25
#: Seconds between checks of V8's memory-limit flag during a run.
MEMORY_POLL = 0.05
#: Seconds allowed to set up the runtime or compile one function (no user code runs).
SETUP_TIMEOUT = 10.0
#: Seconds close() waits for V8 to free the isolate.
CLOSE_WAIT = 1.0
#: Seconds after a run, if no other follows, to check the isolate is idle; and for it to answer.
IDLE_CHECK = 1.0

_RUNTIME = (Path(__file__).with_name("runtime.js")).read_text(encoding="utf-8")


def compile_workspace(functions: Sequence[FunctionSource]) -> JsSandbox:
    """Compile a workspace's JS functions into a fresh V8 context, each in its own eval.

    Sync, from any thread, inside a running event loop or not: no loop is involved.
    """
    engine = Engine()
    try:
        return JsSandbox(engine, functions)
    except (EngineError, ValueError) as exc:
        engine.close()
        raise SandboxCrashed(f"the JavaScript engine did not start: {exc}") from exc
    except BaseException:
        engine.close()
        raise


def _compilation_error(function: str, line: int | None, message: str) -> CompilationError:
    where = f" (line {line})" if line else ""  # worded as the Python sandbox words it
    return CompilationError(
        f"function {function!r} does not compile{where}: {message}",
        details={"function": function, "line": line},
    )


@dataclass(frozen=True)
class _Signal:
    """Why a run stopped waiting, other than its outcome or a failed eval."""

    name: str


_TIMEOUT = _Signal("timeout")
_MEMORY = _Signal("memory")
_CLOSED = _Signal("closed")


class _Run:
    """A run in flight: where its outcome goes, and what became of its eval."""

    __slots__ = ("id", "loop", "future", "started", "task", "eval_done", "watch")
    watch: asyncio.TimerHandle  # see JsSandbox._watch

    def __init__(self, run_id: int, loop: asyncio.AbstractEventLoop) -> None:
        self.id = run_id
        self.loop = loop
        self.future: asyncio.Future[Any] = loop.create_future()
        self.started = 0.0
        self.task = 0
        self.eval_done = False

    def on_eval_done(self, value: Any) -> None:
        # On the isolate's thread. A completed eval only means the run has started.
        self.eval_done = True
        if isinstance(value, EngineError):
            resolve_threadsafe(self.loop, self.future, value)

    def elapsed(self) -> float:
        return (time.perf_counter() - self.started) * 1000


class _Inbox:
    """Receives `notify` on the isolate's thread (apart from the sandbox, so as not to keep it alive)."""

    def __init__(self) -> None:
        self.mailbox: Mailbox | None = None
        self.current: _Run | None = None

    def on_notify(self) -> None:
        run, mailbox = self.current, self.mailbox
        if run is None or mailbox is None:
            return
        ended = time.perf_counter()
        mail = mailbox.read()  # JS waits for this call to return, so the mail is complete
        if mail.run_id == run.id:
            resolve_threadsafe(run.loop, run.future, (mail, ended))


class JsSandbox:
    """One workspace version's JS functions; see the module docstring for how a run goes."""

    def __init__(self, engine: Engine, functions: Sequence[FunctionSource]) -> None:
        self.errors: dict[str, CompilationError] = {}
        self.broken = False
        self._engine = engine
        self._inbox = _Inbox()
        self._slot = RunSlot()
        self._run_ids = itertools.count(1)
        self._memory_limit: int | None = None
        self._idle_check: asyncio.TimerHandle | None = None
        self._indexes: dict[str, int] = {}  # compiled functions, by name
        self._names = {function.name for function in functions}
        self._install_runtime()
        self._go = engine.script(codegen.GO)
        for function in functions:
            self._define(function)
        self._finalizer = weakref.finalize(self, engine.close, wait=0.0)
        self._finalizer.atexit = False

    # ---- compilation --------------------------------------------------------------------

    def _install_runtime(self) -> None:
        arguments = f"{MAX_LOG_ENTRIES},{MAX_LOG_MESSAGE},{CAPACITY},{codegen.HEADER_LINES}"
        source = f"{_RUNTIME}({arguments})\n//# sourceURL=fnbox:runtime"
        install = self._engine.eval(source, timeout=SETUP_TIMEOUT)
        notify = self._engine.notifier(self._inbox.on_notify)
        self._inbox.mailbox = Mailbox(self._engine.call(install, notify, timeout=SETUP_TIMEOUT))

    def _define(self, function: FunctionSource) -> None:
        name = function.name
        try:
            self._indexes[name] = int(self._engine.eval(codegen.define_call(function), timeout=SETUP_TIMEOUT))
        except ValueError as exc:
            self.errors[name] = _compilation_error(name, None, str(exc))
        except EngineError as exc:
            message, line = codegen.syntax_error(exc.message, function.code)
            self.errors[name] = _compilation_error(name, line, message)

    # ---- runs ---------------------------------------------------------------------------

    async def run(self, function: str, parameters: Mapping[str, JSONValue], limits: Limits) -> RunResult:
        if function not in self._names:
            details = {"function": function}
            raise NotFound(f"no JavaScript function {function!r}", details=details, logs=[], duration=0.0)
        error = self.errors.get(function)
        if error is not None:
            raise CompilationError(error.message, details=error.details, logs=[], duration=0.0)
        try:
            request = codegen.request(parameters)
        except (TypeError, ValueError) as exc:
            raise InvalidParameters(f"the parameters are not JSON: {exc}", logs=[], duration=0.0) from exc
        await self._slot.acquire()
        try:
            return await self._run(function, request, limits)
        finally:
            self._slot.release()

    async def _run(self, function: str, request: str, limits: Limits) -> RunResult:
        mailbox = self._inbox.mailbox
        if self.broken or self._engine.closing or mailbox is None:
            raise SandboxCrashed("the JavaScript sandbox is closed", logs=[], duration=0.0)
        if self._idle_check is not None:
            self._idle_check.cancel()  # this run's own timeout covers a busy isolate now
        run = _Run(next(self._run_ids), asyncio.get_running_loop())
        index = self._indexes[function]
        source: str | Handle = self._go
        if not mailbox.post(run.id, index, request):  # too big: it goes in the eval's text
            source = codegen.run_call(run.id, index, request)
        if limits.memory != self._memory_limit:
            self._engine.set_memory_limit(limits.memory)
            self._memory_limit = limits.memory
        self._inbox.current = run
        run.watch = run.loop.call_later(min(MEMORY_POLL, limits.timeout), self._watch, run, limits.timeout)
        try:
            try:
                run.started = time.perf_counter()
                run.task = self._engine.start_eval(source, run.on_eval_done)
                signal = await run.future
            except EngineError as exc:
                raise SandboxCrashed(f"the JavaScript engine failed: {exc.message}", logs=[], duration=0.0) from exc
            except asyncio.CancelledError:
                self._break()  # the caller gave up: nobody waits for a probe, drop the isolate
                raise
            finally:
                run.watch.cancel()
            if isinstance(signal, tuple):
                mail, ended = signal
                return await self._finish(function, run, mail, (ended - run.started) * 1000, limits)
            raise await self._failure(run, signal, limits)
        finally:
            self._inbox.current = None
            if not self.broken:
                self._idle_check = run.loop.call_later(IDLE_CHECK, self._check_idle)

    async def _finish(self, function: str, run: _Run, mail: Mail, duration: float, limits: Limits) -> RunResult:
        text = mail.outcome
        if mail.state == HELD:  # too big for the mailbox
            try:
                remaining = limits.timeout - run.elapsed() / 1000
                text = await self._engine.eval_async("$fnbox.take()", timeout=max(remaining, PROBE_TIMEOUT))
            except (TimeoutError, EngineError) as exc:
                self._break()
                entries = outcome.logs(mail.stream)
                raise SandboxCrashed("the result could not be fetched", logs=entries, duration=duration) from exc
        try:
            result = outcome.load(text)
        except FnboxError as exc:
            exc.logs, exc.duration = outcome.logs(mail.stream), duration
            raise
        entries = outcome.logs(mail.stream, result)
        if result.get("ok") is True:
            return RunResult(result.get("result"), entries, duration)
        raise outcome.function_error(function, result.get("error"), entries, duration)

    async def _failure(self, run: _Run, signal: Any, limits: Limits) -> FnboxError:
        if signal is _CLOSED:
            return SandboxCrashed("the JavaScript sandbox was closed during the run", logs=[], duration=run.elapsed())
        memory = signal is _MEMORY or (isinstance(signal, EngineError) and signal.kind == "oom")
        if memory or self._engine.memory_limit_reached():
            entries = self._abandoned_logs()
            self._break()  # its heap is full of the run's leftovers: start afresh
            return MemoryLimitExceeded(
                f"the function used more than its {limits.memory / 2**20:g} MB of memory",
                logs=entries,
                duration=run.elapsed(),
            )
        if signal is _TIMEOUT:
            duration = run.elapsed()
            return TimeoutExceeded(
                f"the function ran for longer than {limits.timeout:g} s",
                logs=await self._stop(run),
                duration=duration,
            )
        self._break()
        message = signal.message if isinstance(signal, EngineError) else str(signal)
        entries = self._abandoned_logs()
        return SandboxCrashed(f"the JavaScript engine failed: {message}", logs=entries, duration=run.elapsed())

    async def _stop(self, run: _Run) -> list[LogEntry]:
        """End a timed-out run and return its logs; drop the isolate if it does not answer."""
        if not run.eval_done:
            self._engine.cancel(run.task)  # TerminateExecution: stops a loop still in the eval
        for _ in range(2):  # a terminate landing just after the eval ends hits the first probe
            try:
                tail = await self._engine.eval_async(f"$fnbox.abandon({run.id})", timeout=PROBE_TIMEOUT)
            except EngineError as exc:
                if exc.kind == "terminated":
                    continue
                break
            except TimeoutError:
                break
            try:
                return outcome.logs(self._mailbox_stream(), outcome.load(tail))
            except FnboxError:
                return outcome.logs(self._mailbox_stream())
        entries = self._abandoned_logs()
        self._break()
        return entries

    def _check_idle(self) -> None:
        """Probe an isolate that should be idle; one that does not answer is stuck."""
        if self._inbox.current is not None or self._engine.closing:
            return
        answered: list[bool] = []
        try:
            self._engine.start_eval("0", lambda value: answered.append(True))
        except EngineError:
            return
        loop = asyncio.get_running_loop()
        self._idle_check = loop.call_later(IDLE_CHECK, self._settle_idle_check, answered)

    def _settle_idle_check(self, answered: list[bool]) -> None:
        if not answered and self._inbox.current is None:
            self._break()

    def _watch(self, run: _Run, timeout: float) -> None:
        """Every MEMORY_POLL s of a run: has V8 stopped it for memory, or is it late?"""
        left = timeout - (time.perf_counter() - run.started)
        if self._engine.memory_limit_reached():
            resolve(run.future, _MEMORY)
        elif left <= 0:
            resolve(run.future, _TIMEOUT)
        else:
            run.watch = run.loop.call_later(min(MEMORY_POLL, left), self._watch, run, timeout)

    def _abandoned_logs(self) -> list[LogEntry]:
        """What a run that never handed over its outcome had logged, read in place."""
        return outcome.logs(self._mailbox_stream())

    def _mailbox_stream(self) -> str:
        mailbox = self._inbox.mailbox
        return "" if mailbox is None or self._engine.closing else mailbox.stream()

    def _break(self) -> None:
        self.broken = True
        self._engine.close(wait=0.0)  # frees in the background: a wedged isolate stops now

    # ---- lifetime -----------------------------------------------------------------------

    def close(self) -> None:
        """Free the isolate; a run in flight ends with SandboxCrashed. Never hangs."""
        self._finalizer.detach()
        run = self._inbox.current
        if run is not None:
            resolve_threadsafe(run.loop, run.future, _CLOSED)
        self._engine.close(wait=CLOSE_WAIT)
