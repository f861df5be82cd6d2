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
catches that, so an idle sandbox does not burn a core for long. And if the next run comes
first, it finds the isolate still busy: a run not picked up within START_WAIT seconds (inflight.py) moves
to a fresh isolate with the same functions (the workspace's `cache` is lost with the old one).
So does a run whose eval throws before its function is called: work left behind has broken
the runtime's state (by calling `$fnbox` itself, say).

Runs that come while the isolate is busy queue and go out together, as one eval of a batch
(see batch.py): V8's thread then goes from one to the next without sleeping in between, and
the loop is woken once for several outcomes, which is most of what a warm run costs. Runs
with live logs or their own `process.env` never wait in a batch. A batch holds the sandbox's
turn as a lone run does, and watches, stops and ends its runs with the sandbox's own means.

A run whose caller follows its logs (`on_log`) has JS hand each entry over as it is made,
through a second callback (`live`, see runtime.js); other runs cross into Python only at
their end. A run whose caller is cancelled is stopped as a timed-out one is, the isolate
kept if it answers the probe.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from fnbox.sandboxes import arrivals
from fnbox.sandboxes.base import (
    FunctionSource,
    JSONValue,
    Limits,
    LiveLog,
    LogEntry,
    OnLog,
    RunResult,
)
from fnbox.sandboxes.errors import (
    CompilationError,
    FnboxError,
    InvalidParameters,
    MemoryLimitExceeded,
    NotFound,
    SandboxCrashed,
    TimeoutExceeded,
)
from fnbox.sandboxes.js import codegen, outcome
from fnbox.sandboxes.js.batch import Batches
from fnbox.sandboxes.js.context import Context
from fnbox.sandboxes.js.engine import EngineError, Handle, resolve, resolve_threadsafe
from fnbox.sandboxes.js.hostnet import JsNetwork
from fnbox.sandboxes.js.inflight import CLOSED, MEMORY, PROBE_TIMEOUT, TIMEOUT, WEDGED, Run
from fnbox.sandboxes.js.mailbox import HELD, Mail
from fnbox.sandboxes.js.names import NODE_MODULES
from fnbox.sandboxes.js.slot import RunSlot
from fnbox.sandboxes.js.ticker import Ticker
from fnbox.sandboxes.network import Egress

__all__ = ["JsSandbox", "compile_workspace"]

#: Seconds between checks of V8's memory-limit flag during a run.
MEMORY_POLL = 0.05
#: Seconds close() waits for V8 to free an isolate that is not known to be stuck.
CLOSE_WAIT = 1.0
#: Seconds after a run, if no other follows, to check the isolate is idle; and for it to answer.
IDLE_CHECK = 1.0


def compile_workspace(functions: Sequence[FunctionSource], node_modules: Sequence[str] = NODE_MODULES) -> JsSandbox:
    """Compile a workspace's JS functions into a fresh V8 context, each in its own eval.

    Sync, from any thread, inside a running event loop or not: no loop is involved.
    `node_modules` are the Node modules its functions may `require`.
    """
    try:
        context = Context(functions, node_modules)
    except (EngineError, ValueError) as exc:
        raise SandboxCrashed(f"the JavaScript engine did not start: {exc}") from exc
    return JsSandbox(context, functions)


_MAX_RUN_ID = 2**31 - 1
#: Seconds the isolate may take to take a run's new `process.env`.
ENV_TIMEOUT = 1.0


class JsSandbox:
    """One workspace version's JS functions; see the module docstring for how a run goes."""

    #: Its runs are given their outbound access (fetch, http, dns: see hostnet.py).
    reaches_network = True

    def __init__(self, context: Context, functions: Sequence[FunctionSource]) -> None:
        self.errors: dict[str, CompilationError] = context.errors
        self.broken = False
        self._context = context
        self._functions = tuple(functions)
        self._names = {function.name for function in functions}
        self._slot = RunSlot()
        self._run_ids = itertools.count(1)
        #: The idle check's timer (one at a time, moved on lazily: see _run) and its loop; the probe's.
        self._idle_check: asyncio.TimerHandle | None = None
        self._idle_loop: asyncio.AbstractEventLoop | None = None
        self._idle_settle: asyncio.TimerHandle | None = None
        self._last_run = 0.0  # when the last run ended (time.monotonic())
        #: The run in flight that the ticker watches (see _watch), and the ticker.
        self._watched: Run | None = None
        self._ticker = Ticker(self._on_tick)
        self._closed = False
        self._finalizer = self._finalize(context)
        #: The isolate whose `process.env` is set, and to what (a JSON object's text).
        self._env_of: tuple[Context, str] = (context, "{}")
        #: The outbound requests of the run in progress, if it may make any.
        self._network: JsNetwork | None = None
        #: Called (from any thread, with the run's loop) when the run starts a request or lookup.
        self.on_waiting: Callable[[asyncio.AbstractEventLoop], None] | None = None
        #: Runs that come while the isolate is busy, and the batches they go out in (see batch.py).
        self._batches = Batches(self, self._slot)

    def _finalize(self, context: Context) -> weakref.finalize:
        finalizer = weakref.finalize(self, context.engine.close, wait=0.0)
        finalizer.atexit = False
        return finalizer

    # ---- runs ---------------------------------------------------------------------------

    async def run(
        self,
        function: str,
        parameters: Mapping[str, JSONValue],
        limits: Limits,
        *,
        on_log: OnLog | None = None,
        env: Mapping[str, str] | None = None,
        outbound: Egress | None = None,
        on_start: Callable[[], None] | None = None,
        on_wait: Callable[[], None] | None = None,
        overdue: tuple[float, Callable[[], FnboxError]] | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> RunResult:
        """A run; `on_start`, `on_wait` and `overdue` (the loop's time its wait for a turn ends,
        and the error it ends with) are for a run that may have to wait its turn here. `loop` is
        the running loop, from a caller that has it at hand: on Python 3.11 each look-up of the
        running loop is a getpid system call."""
        if loop is None:
            loop = asyncio.get_running_loop()
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
        batches = self._batches
        # A batch when the isolate is busy, or when more runs for it were read and are about to start:
        # then they go in the same eval as this one (see arrivals.py).
        batched = len(batches) or self._slot.busy or arrivals.followed()
        if on_log is None and not env and batched and batches.accepts(request, loop):
            return await batches.queued(function, request, limits, outbound, on_start, on_wait, overdue, loop)
        if overdue is None:
            await self._slot.acquire()
        else:  # it came to wait for its turn here (see overlap.py), and cannot in a batch
            if on_wait is not None and self._slot.busy:
                on_wait()
            try:
                async with asyncio.timeout_at(overdue[0]):
                    await self._slot.acquire()
            except TimeoutError:
                raise overdue[1]() from None
        if on_start is not None:
            on_start()
        live = None if on_log is None else LiveLog(loop, on_log)
        if outbound is not None:
            self._network = JsNetwork(
                loop,
                outbound,
                time.perf_counter() + limits.timeout,
                self._arrived,
                on_start=self._batches.network_started,  # the runs queued behind it may go elsewhere
                memory=limits.memory,
            )
        try:
            return await self._run(function, request, limits, live, codegen.request(env) if env else "{}", loop)
        finally:
            network, self._network = self._network, None
            if network is not None:
                self._context.set_network(None)
                if not network.end_unused():
                    await network.end()
            self._slot.release()
            if live is not None:
                live.close()

    def waiting_on_network(self) -> bool:
        """Whether the run in progress waits on an outbound request or lookup (any run of the
        batch in flight: JS may be runs ahead of the one the loop follows)."""
        network = self._network
        if network is not None and network.waiting():
            return True
        return self._batches.waiting_on_network()

    def joinable(self) -> bool:
        """Whether a run may queue here while the isolate is busy (see overlap.py): not while
        the run in progress waits on the network, which would hold it up."""
        return (
            not self.broken
            and not self._closed
            and self._context.engine.native
            and self._batches.has_room()
            and not self.waiting_on_network()
        )

    def _arrived(self, call_id: int) -> None:
        """An outbound request or lookup of the run has ended: wake the promise awaiting it."""
        try:
            self._context.engine.start_eval(codegen.arrived_call(call_id), _ignore)
        except EngineError:
            pass  # the isolate is closing: the run ends anyway

    async def _run(
        self,
        function: str,
        request: str,
        limits: Limits,
        live: LiveLog | None,
        env: str = "{}",
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> RunResult:
        if self.broken or self._context.engine.closing:
            raise SandboxCrashed("the JavaScript sandbox is closed", logs=[], duration=0.0)
        if self._idle_settle is not None:
            self._idle_settle.cancel()  # this run's own timeout covers a busy isolate now
            self._idle_settle = None
        if loop is None:
            loop = asyncio.get_running_loop()
        started = time.perf_counter()
        run = self._start(function, request, limits, loop, started, live, env)
        try:
            signal = await self._wait(run)
            if signal is WEDGED or (isinstance(signal, EngineError) and signal.kind == "execute"):
                await self._reboot(run)
                run = self._start(function, request, limits, loop, started, live, env)
                run.picked_up = True  # a fresh isolate has nothing left behind: just its timeout
                signal = await self._wait(run)
            if isinstance(signal, tuple):
                mail, ended = signal
                return await self._finish(function, run, mail, (ended - run.started) * 1000, limits)
            raise await self._failure(run, signal, limits)
        finally:
            self._context.inbox.current = None
            self._ran(loop)

    def _start(
        self,
        function: str,
        request: str,
        limits: Limits,
        loop: asyncio.AbstractEventLoop,
        started: float,
        live: LiveLog | None,
        env: str = "{}",
    ) -> Run:
        """Post a run to the isolate: its request in the mailbox (or the eval's text), its watch set."""
        self._use_env(env)
        context = self._context
        run = Run(self._next_ids(1), loop, started, live)
        index = context.indexes[function]
        source: str | Handle = context.go
        if not context.mailbox.post(run.id, index, request, live is not None):  # too big: in the eval's text
            source = codegen.run_call(run.id, index, request)
            run.start_wait += len(source) / 10e6
        context.set_memory_limit(limits.memory)
        context.set_deadline(started + limits.timeout)
        context.set_network(self._network)
        context.inbox.current = run
        run.timeout = limits.timeout
        self._follow(run)
        context.engine.signal_to(loop, run.id)
        run.posted = time.perf_counter()
        try:
            run.task = context.engine.start_eval(source, run.on_eval_done, quiet=True)
        except EngineError as exc:
            self._unwatch(run)
            raise SandboxCrashed(f"the JavaScript engine failed: {exc.message}", logs=[], duration=0.0) from exc
        return run

    def _use_env(self, env: str) -> None:
        """Give the isolate the run's `process.env` (a JSON object's text), unless it has it."""
        context = self._context
        if self._env_of != (context, env):  # the secrets changed, or the isolate is a fresh one
            context.engine.eval(codegen.set_env_call(env), timeout=ENV_TIMEOUT)
            self._env_of = (context, env)

    def _next_ids(self, count: int) -> int:
        """The first of `count` consecutive run ids (a batch's are): the mailbox holds a run's id
        as an int32, so ids go round within it, never reaching 0."""
        first = (next(self._run_ids) - 1) % _MAX_RUN_ID + 1
        if first + count - 1 > _MAX_RUN_ID:  # go round first
            self._run_ids = itertools.count(1)
            first = next(self._run_ids)
        for _ in range(count - 1):
            next(self._run_ids)
        return first

    async def _wait(self, run: Run) -> Any:
        """The run's outcome (mail, end time), or a _Signal, or the EngineError its eval failed with."""
        try:
            return await run.future
        except asyncio.CancelledError:
            self._unwatch(run)
            await self._cancel(run)
            raise
        finally:
            self._unwatch(run)

    def _follow(self, run: Run) -> None:
        """Have the ticker watch `run` (see _watch), from now to its deadline."""
        self._watched = run
        self._ticker.within(run.loop, min(MEMORY_POLL, max(run.timeout - run.elapsed() / 1000, 0.0)))

    def _unwatch(self, run: Run) -> None:
        if self._watched is run:
            self._watched = None  # the ticker lapses at its next tick, unless another run comes

    async def _cancel(self, run: Run) -> None:
        """Stop the run of a caller that gave up, as a timed-out one (in at most 2 probes)."""
        try:
            await self._stop(run)
        except asyncio.CancelledError:  # cancelled again: wait no more, drop the isolate
            self._break()
            raise

    async def _reboot(self, run: Run) -> None:
        """Swap an isolate that work a previous run left behind wedged or broke for a fresh one."""
        old = self._context
        old.inbox.current = None
        old.engine.cancel(run.task)  # never started: nothing should pick it up later
        old.engine.close(wait=0.0)  # frees in the background: the work left behind stops
        self._finalizer.detach()
        loop = asyncio.get_running_loop()
        building = loop.run_in_executor(None, Context, self._functions, old.node_modules)
        try:
            context = await asyncio.shield(building)
        except asyncio.CancelledError:
            self.broken = True
            building.add_done_callback(_close_context)
            raise
        except (EngineError, ValueError) as exc:
            self.broken = True
            raise SandboxCrashed(
                f"the JavaScript engine did not restart: {exc}", logs=[], duration=run.elapsed()
            ) from exc
        if self._closed:
            context.engine.close(wait=0.0)
            raise SandboxCrashed("the JavaScript sandbox was closed during the run", logs=[], duration=run.elapsed())
        self._context = context
        self._finalizer = self._finalize(context)

    async def _finish(self, function: str, run: Run, mail: Mail, duration: float, limits: Limits) -> RunResult:
        text = mail.outcome
        if mail.state == HELD:  # too big for the mailbox
            try:
                remaining = limits.timeout - run.elapsed() / 1000
                text = await self._context.engine.eval_async("$fnbox.take()", timeout=max(remaining, PROBE_TIMEOUT))
            except (TimeoutError, EngineError) as exc:
                self._break()
                entries = outcome.logs(mail.stream, handed=run.handed)
                raise SandboxCrashed("the result could not be fetched", logs=entries, duration=duration) from exc
        try:
            result = outcome.load(text)
        except FnboxError as exc:
            exc.logs, exc.duration = outcome.logs(mail.stream, handed=run.handed), duration
            raise
        entries = outcome.logs(mail.stream, result, run.handed)
        if result.get("ok") is True:
            return RunResult(result.get("result"), entries, duration)
        raise outcome.failure(function, result, entries, duration)

    async def _failure(self, run: Run, signal: Any, limits: Limits) -> FnboxError:
        if signal is CLOSED:
            return SandboxCrashed("the JavaScript sandbox was closed during the run", logs=[], duration=run.elapsed())
        memory = signal is MEMORY or (isinstance(signal, EngineError) and signal.kind == "oom")
        if memory or self._context.engine.memory_limit_reached():
            entries = self._abandoned_logs(run)
            self._break()  # its heap is full of the run's leftovers: start afresh
            return MemoryLimitExceeded(
                f"the function used more than its {limits.memory / 2**20:g} MB of memory",
                logs=entries,
                duration=run.elapsed(),
            )
        if signal is TIMEOUT:
            duration = run.elapsed()
            entries, memory = await self._stop(run)
            if memory:  # stuck in V8's native code, its heap past the limit meanwhile
                return MemoryLimitExceeded(
                    f"the function used more than its {limits.memory / 2**20:g} MB of memory",
                    logs=entries,
                    duration=duration,
                )
            return TimeoutExceeded(
                f"the function ran for longer than {limits.timeout:g} s", logs=entries, duration=duration
            )
        entries = self._abandoned_logs(run)
        self._break()
        message = signal.message if isinstance(signal, EngineError) else str(signal)
        return SandboxCrashed(f"the JavaScript engine failed: {message}", logs=entries, duration=run.elapsed())

    async def _stop(self, run: Run) -> tuple[list[LogEntry], bool]:
        """End a timed-out run: its logs, and whether V8 found its heap over the limit
        meanwhile. An isolate that does not answer is dropped."""
        engine = self._context.engine
        if not run.eval_done:  # mini-racer ignores the cancel of an eval already completed
            engine.cancel(run.task)  # TerminateExecution: stops a loop still in the eval
        for _ in range(2):  # a terminate landing just after the eval ends hits the first probe
            try:
                tail = await engine.eval_async(f"$fnbox.abandon({run.id})", timeout=PROBE_TIMEOUT)
            except EngineError as exc:
                if exc.kind == "terminated":
                    continue
                break
            except TimeoutError:
                break
            try:
                return outcome.logs(self._mailbox_stream(), outcome.load(tail), run.handed), False
            except FnboxError:
                return self._abandoned_logs(run), False
        entries = self._abandoned_logs(run)
        memory = engine.memory_limit_reached()
        self._break()
        return entries, memory

    def _ran(self, loop: asyncio.AbstractEventLoop) -> None:
        """A run or a batch has ended: the isolate should be idle IDLE_CHECK s from now."""
        if not self.broken:
            # Not a timer per run: the pending check, if any, looks at _last_run when it fires.
            self._last_run = time.monotonic()
            if self._idle_check is None or self._idle_loop is not loop:
                self._arm_idle_check(loop, IDLE_CHECK)

    def _arm_idle_check(self, loop: asyncio.AbstractEventLoop, delay: float) -> None:
        if self._idle_check is not None:
            self._idle_check.cancel()
        self._idle_check = loop.call_later(delay, self._check_idle)
        self._idle_loop = loop

    def _check_idle(self) -> None:
        """Probe an isolate that should be idle (IDLE_CHECK s after its last run); one that does
        not answer is stuck. A run in progress arms the check again when it ends."""
        self._idle_check = None
        context = self._context
        if context.inbox.current is not None or context.inbox.batch or context.engine.closing or self.broken:
            return
        loop = asyncio.get_running_loop()
        quiet = time.monotonic() - self._last_run
        if quiet < IDLE_CHECK:  # runs came since this timer was set
            self._arm_idle_check(loop, max(IDLE_CHECK - quiet, 0.001))
            return
        answered: list[bool] = []
        try:
            context.engine.start_eval("0", lambda value: answered.append(True))
        except EngineError:
            return
        self._idle_settle = loop.call_later(IDLE_CHECK, self._settle_idle_check, context, answered)

    def _settle_idle_check(self, context: Context, answered: list[bool]) -> None:
        self._idle_settle = None
        if not answered and context is self._context and context.inbox.current is None and not context.inbox.batch:
            self._break()

    def _on_tick(self) -> None:
        run = self._watched
        if run is not None and not run.future.done():
            self._watch(run, run.timeout)

    def _watch(self, run: Run, timeout: float) -> None:
        """Every MEMORY_POLL s of a run: has V8 stopped it for memory, is it late, has it started?"""
        now = time.perf_counter()
        left = timeout - (now - run.started)
        context = self._context
        if context.engine.closing:  # its mailbox goes with it: never read it again
            resolve(run.future, CLOSED)
            return
        if context.engine.memory_limit_reached():
            resolve(run.future, MEMORY)
        elif left <= 0:
            resolve(run.future, TIMEOUT)
        elif not run.picked_up and (
            context.mailbox.taken(run.index) if run.index >= 0 else context.mailbox.started() == run.id
        ):
            run.picked_up = True
        elif not run.picked_up and now - run.posted >= run.start_wait:
            resolve(run.future, WEDGED)
            return
        if not run.future.done():
            self._ticker.within(run.loop, min(MEMORY_POLL, left))

    def _abandoned_logs(self, run: Run) -> list[LogEntry]:
        """What a run that never handed over its outcome had logged: handed over, or read in place."""
        return outcome.logs(self._mailbox_stream(), handed=run.handed)

    def _mailbox_stream(self) -> str:
        context = self._context
        return "" if context.engine.closing else context.mailbox.stream()

    def _break(self) -> None:
        self.broken = True
        self._context.engine.close(wait=0.0)  # frees in the background: a wedged isolate stops now

    # ---- lifetime -----------------------------------------------------------------------

    def close(self) -> None:
        """Free the isolate; a run in flight ends with SandboxCrashed. Never hangs for long.

        An isolate already dropped as stuck is freed in the background: waiting for it could
        block the worker's event loop for the whole CLOSE_WAIT.
        """
        self._closed = True
        self._finalizer.detach()
        self._batches.close()
        context = self._context
        run = context.inbox.current
        if run is not None:
            resolve_threadsafe(run.loop, run.future, CLOSED)
        for batched in list(context.inbox.batch.values()):
            resolve_threadsafe(batched.loop, batched.future, CLOSED)
        context.engine.close(wait=0.0 if self.broken else CLOSE_WAIT)


def _ignore(value: Any) -> None:
    pass


def _close_context(building: asyncio.Future[Context]) -> None:
    if not building.cancelled() and building.exception() is None:
        building.result().engine.close(wait=0.0)
