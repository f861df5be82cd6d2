"""Runs queued for a busy isolate, posted together as one eval: a batch.

Why: most of what a warm run costs is the trip between the event loop and V8's thread
(post an eval, wake the loop for the outcome). Runs that come while the isolate is busy
wait in a queue here; one task posts them, up to MAX_BATCH at a time, as ONE eval
(`$fnbox.goBatch()`): V8's thread then goes from one run to the next as each settles,
without sleeping in between or a round trip through the event loop, and their outcomes
come back through the mailbox one by one, as a lone run's do.

How each run keeps its guarantees: its own id, outcome, timeout (counted from the moment
the run before it handed its outcome over), memory limit (the batch's runs share one, so
only runs with the same limits go together), outbound requests, and cancel. Python follows
the runs in order; before a run is stopped or blamed (a timeout, memory, a cancel), the
runs after it are withdrawn (a compare-and-swap both sides use), so JS can never have gone
on to one of them: they go back to the queue, or to the pool if the isolate is gone. A run
is watched, stopped and ended with its sandbox's own means (see Owner), as a lone run is.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import time
from collections.abc import Callable
from typing import Any, Protocol

from fnbox.sandboxes.base import Limits, LogEntry, RunResult
from fnbox.sandboxes.errors import FnboxError, SandboxCrashed
from fnbox.sandboxes.js.context import Context
from fnbox.sandboxes.js.engine import EngineError, resolve, resolve_threadsafe
from fnbox.sandboxes.js.hostnet import JsNetwork
from fnbox.sandboxes.js.inflight import CANCELLED, CLOSED, PROBE_TIMEOUT, Run
from fnbox.sandboxes.js.mailbox import CAPACITY, HELD, MAX_BATCH, Mail
from fnbox.sandboxes.js.slot import RunSlot
from fnbox.sandboxes.js.ticker import Ticker
from fnbox.sandboxes.network import Egress
from fnbox.sandboxes.pool import Requeue

__all__ = ["BATCH_REQUEST", "Batches", "Owner"]

#: Characters of a request that may wait for its turn in a batch (see Batches.queued); the
#: requests of one batch share the mailbox, in UTF-16 units, at most two per character.
BATCH_REQUEST = 4096
_BATCH_TEXT = CAPACITY // 2


class Owner(Protocol):
    """What a batch uses of its sandbox (sandbox.py's JsSandbox): its isolate, and the
    means by which a lone run is watched, ended, stopped or moved to a fresh isolate."""

    broken: bool
    _closed: bool
    _context: Context
    on_waiting: Callable[[asyncio.AbstractEventLoop], None] | None

    def _next_ids(self, count: int) -> int: ...
    def _use_env(self, env: str) -> None: ...
    def _follow(self, run: Run) -> None: ...
    def _unwatch(self, run: Run) -> None: ...
    def _arrived(self, call_id: int) -> None: ...
    async def _finish(self, function: str, run: Run, mail: Mail, duration: float, limits: Limits) -> RunResult: ...
    async def _failure(self, run: Run, signal: Any, limits: Limits) -> FnboxError: ...
    async def _stop(self, run: Run) -> tuple[list[LogEntry], bool]: ...
    async def _cancel(self, run: Run) -> None: ...
    async def _reboot(self, run: Run) -> None: ...
    def _break(self) -> None: ...
    def _ran(self, loop: asyncio.AbstractEventLoop) -> None: ...


class _Queued:
    """A caller's run waiting for its turn in a batch (see Batches.queued)."""

    __slots__ = ("due", "function", "limits", "on_start", "outbound", "overdue", "request", "result", "run")

    def __init__(
        self, function: str, request: str, limits: Limits, outbound: Egress | None, loop: asyncio.AbstractEventLoop
    ) -> None:
        self.function = function
        self.request = request
        self.limits = limits
        self.outbound = outbound
        self.result: asyncio.Future[RunResult] = loop.create_future()
        self.run: Run | None = None  # once posted
        self.on_start: Callable[[], None] | None = None  # told when its turn comes
        #: The loop's time its wait for its turn ends (None: no bound, or its turn came), and the error it ends with.
        self.due: float | None = None
        self.overdue: Callable[[], FnboxError] | None = None

    def started(self) -> None:
        self.due = None
        on_start, self.on_start = self.on_start, None
        if on_start is not None:
            on_start()


class _Requeued:
    """A batched run JS never took, stopped for `why` (wedged isolate, failed eval): it goes back."""

    __slots__ = ("why",)

    def __init__(self, why: Any) -> None:
        self.why = why


class Batches:
    """A sandbox's runs waiting for a batch, and the task that posts them; one run at a time
    of the sandbox (its `slot`) is either a lone run or a whole batch."""

    def __init__(self, owner: Owner, slot: RunSlot) -> None:
        self._owner = owner
        self._slot = slot
        self._queue: collections.deque[_Queued] = collections.deque()
        self._driver: asyncio.Task[None] | None = None
        self._driver_loop: asyncio.AbstractEventLoop | None = None
        self._posted: list[_Queued] = []  # the batch in flight
        self._withdrawn: set[int] = set()  # the places in it of the runs taken back before JS took them
        #: One timer for the bounds of the waits (see _sweep_overdue), not one per run, and its loop.
        self._dues = Ticker(self._sweep_overdue)
        self._dues_loop: asyncio.AbstractEventLoop | None = None

    def __len__(self) -> int:
        """How many runs wait for a batch."""
        return len(self._queue)

    def accepts(self, request: str, loop: asyncio.AbstractEventLoop | None = None) -> bool:
        """Whether a run with this request (a JSON text) may wait for a batch (`loop`: the running one)."""
        owner = self._owner
        context = owner._context
        return (
            len(request) <= BATCH_REQUEST
            and context.engine.native
            and context.mailbox.batches
            and not owner.broken
            and not owner._closed
            and (self._driver_loop is None or self._driver_loop is (loop or asyncio.get_running_loop()))
        )

    def has_room(self) -> bool:
        """Whether another run may queue (see JsSandbox.joinable)."""
        return len(self._queue) < 4 * MAX_BATCH

    def waiting_on_network(self) -> bool:
        """Whether a run of the batch in flight waits on an outbound request or lookup (any:
        JS may be runs ahead of the one the loop follows)."""
        for item in self._posted:
            run = item.run
            if run is not None and run.network is not None and run.network.waiting():
                return True
        return False

    async def queued(
        self,
        function: str,
        request: str,
        limits: Limits,
        outbound: Egress | None,
        on_start: Callable[[], None] | None,
        on_wait: Callable[[], None] | None,
        overdue: tuple[float, Callable[[], FnboxError]] | None,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> RunResult:
        """A run, once its turn in a batch comes (see JsSandbox.run for the arguments)."""
        if loop is None:
            loop = asyncio.get_running_loop()
        item = _Queued(function, request, limits, outbound, loop)
        item.on_start = on_start
        if on_wait is not None:
            on_wait()
        if overdue is not None:
            item.due, item.overdue = overdue
            self._dues_loop = loop
            self._dues.within(loop, max(item.due - loop.time(), 0.0))
        self._queue.append(item)
        if self._driver is None:
            self._driver_loop = loop
            self._driver = loop.create_task(self._drive())
        try:
            return await item.result
        except asyncio.CancelledError:
            run = item.run
            if run is not None:
                resolve(run.future, CANCELLED)  # the driver withdraws it, or stops it
            raise
        finally:
            item.due = None

    def _sweep_overdue(self) -> None:
        """The waits' timer fired: the runs that waited as long as they may for their turn leave
        (see _overdue), and the timer is set for the next bound. Runs join a queue in the order
        of their bounds, mostly: the timer seldom moves, and never per run."""
        loop = self._dues_loop
        if loop is None:
            return
        now = loop.time()
        nearest: float | None = None
        for item in [*self._queue, *self._posted]:
            due, error = item.due, item.overdue
            if due is None or error is None or item.result.done():
                continue
            if due <= now:
                item.due = None
                self._overdue(item, error)
            elif nearest is None or due < nearest:
                nearest = due
        if nearest is not None:
            self._dues.within(loop, nearest - now)

    def _overdue(self, item: _Queued, error: Callable[[], FnboxError]) -> None:
        """A queued run waited as long as it may for its turn: it leaves, unless JS took it."""
        if item.result.done():
            return
        run = item.run
        if run is not None:  # posted: only if still in the batch in flight, and JS has not taken it
            in_flight = self._owner._context.inbox.batch.get(run.id) is run
            if not in_flight or not self._take_back(run):
                return
        _hand(item, error())

    async def _drive(self) -> None:
        try:
            while self._queue:
                await self._slot.acquire()
                try:
                    items = self._take()
                    if items:
                        await self._run_batch(items)
                finally:
                    self._slot.release()
        finally:
            self._driver = None
            self._driver_loop = None
            while self._queue:  # only if this task was cancelled: no caller waits for good
                _hand(self._queue.popleft(), SandboxCrashed("the JavaScript sandbox was closed", logs=[], duration=0.0))

    def _take(self) -> list[_Queued]:
        """The next batch: queued runs, oldest first, with the same limits, while they fit."""
        items: list[_Queued] = []
        size = 0
        queue = self._queue
        while queue and len(items) < MAX_BATCH:
            item = queue[0]
            if item.result.done():  # its caller went before it was posted
                queue.popleft()
                continue
            if items and (item.limits != items[0].limits or size + len(item.request) > _BATCH_TEXT):
                break
            queue.popleft()
            items.append(item)
            size += len(item.request)
        return items

    async def _run_batch(self, items: list[_Queued]) -> None:
        owner = self._owner
        context = owner._context
        engine = context.engine
        if owner.broken or owner._closed or engine.closing:
            self._give_back(items)
            return
        loop = asyncio.get_running_loop()
        try:
            owner._use_env("{}")
        except EngineError:
            owner._break()
            self._give_back(items)
            return
        first = owner._next_ids(len(items))
        now = time.perf_counter()
        runs = []
        for k, item in enumerate(items):
            run = item.run = Run(first + k, loop, now, None)
            run.index, run.timeout, run.posted = k, item.limits.timeout, now
            if item.outbound is not None:
                run.network = JsNetwork(
                    loop,
                    item.outbound,
                    now + item.limits.timeout,
                    owner._arrived,
                    on_start=self.network_started,
                    memory=item.limits.memory,
                )
            runs.append(run)
        if not context.mailbox.post_batch(
            [(run.id, context.indexes[item.function], item.request) for item, run in zip(items, runs, strict=True)]
        ):
            self._queue.extendleft(reversed(items[1:]))  # cannot happen (see _take): one at a time then
            items, runs = items[:1], runs[:1]
            if not context.mailbox.post_batch([(runs[0].id, context.indexes[items[0].function], items[0].request)]):
                _hand(items[0], SandboxCrashed("the run's request does not fit the mailbox", logs=[], duration=0.0))
                return
        context.set_memory_limit(items[0].limits.memory)
        context.set_network(None)
        inbox = context.inbox
        inbox.batch = {run.id: run for run in runs}
        self._posted = items
        self._withdrawn = set()
        engine.signal_to(loop, runs[0].id, runs[-1].id)
        try:
            try:
                task = engine.start_eval(
                    context.go_batch, functools.partial(_on_batch_error, context, runs), quiet=True
                )
            except EngineError as exc:
                raise SandboxCrashed(f"the JavaScript engine failed: {exc.message}", logs=[], duration=0.0) from exc
            for run in runs:
                run.task = task
            previous = now
            for k, item in enumerate(items):
                run = runs[k]
                run.started = run.posted = previous  # its clock runs from the end of the one before
                if not item.result.done():
                    item.started()
                outcome_or_signal = await self._next_of_batch(item, run)
                if isinstance(outcome_or_signal, tuple):
                    mail, ended = outcome_or_signal
                    previous = ended
                    if mail.state == HELD:  # JS stopped the batch there, for take(): the rest go again
                        self._withdraw_after(k)
                    await self._deliver(item, run, mail, ended)
                    if mail.state == HELD or owner.broken:
                        break
                    continue
                if outcome_or_signal is None:  # withdrawn before JS took it: its caller went
                    continue
                await self._end_batched(item, run, outcome_or_signal)
                break
        finally:
            inbox.batch = {}
            inbox.hosting = None
            self._posted = []
            for run in runs:
                owner._unwatch(run)
            context.set_network(None)
            # No run of a batch that ended is left for JS to take: JS may yet come to the
            # batch's entries (a late eval or step), when the table holds the next batch's.
            rest = []
            for item in items:
                posted = item.run  # (one whose outcome came was taken: no need to ask)
                began = posted is not None and (posted.mail is not None or not self._withdraw(posted.index))
                if item.result.done():
                    continue
                if began:
                    _hand(item, SandboxCrashed("the JavaScript sandbox failed during the run", logs=[], duration=0.0))
                else:
                    rest.append(item)
            self._withdrawn = set()
            if rest:
                self._give_back(rest)
            owner._ran(loop)

    async def _next_of_batch(self, item: _Queued, run: Run) -> Any:
        """The batch's run `run`'s outcome (mail, end), the signal that stops it (JS then being
        on it, no later run able to start), or None if it was withdrawn before it started."""
        if item.result.done() and self._withdraw(run.index):
            return None
        loop = run.loop
        while True:
            if run.mail is not None:
                return run.mail
            self._owner._follow(run)
            try:
                signal = await run.future
            except asyncio.CancelledError:  # the driver itself: stop this run as a caller's cancel would
                self._withdraw_after(run.index)
                if self._withdraw(run.index):
                    raise
                await self._owner._cancel(run)
                raise
            finally:
                self._owner._unwatch(run)
            if isinstance(signal, tuple) or signal is CLOSED or self._owner._context.engine.closing:
                return signal
            if run.index in self._withdrawn:  # taken back meanwhile (see _take_back): JS passes it by
                return None
            past = not self._withdraw_after(run.index)
            if self._withdraw(run.index):  # JS never took it: wedged, or its caller went
                return None if signal is CANCELLED else _Requeued(signal)
            if run.mail is not None:
                return run.mail
            if not past:
                return signal  # JS is on it, and can go no further
            # JS took a later run: this one's outcome should be on its way (a memory limit
            # reached by the next, say). Not for long: then this run is stopped all the same.
            grace = loop.create_future()
            run.future = grace
            timer = loop.call_later(PROBE_TIMEOUT, resolve, grace, signal)
            try:
                late = await grace
            finally:
                timer.cancel()
            return late

    def _withdraw(self, index: int) -> bool:
        """Take back the batch's run `index` before JS takes it: True if it never starts.
        Never once the isolate is being freed (its mailbox goes with it): JS may have taken it."""
        context = self._owner._context
        if index in self._withdrawn:
            return True
        if context.engine.closing or not context.mailbox.withdraw(index, context.engine.swap):
            return False
        self._withdrawn.add(index)
        return True

    def _take_back(self, run: Run) -> bool:
        """Withdraw a posted run for a reason of its own (its wait ran out, the runs went
        elsewhere): True if it never starts. JS passes it by and goes on to the next; the
        driver, if it waits on this run, is woken to do the same. Were it left waiting, the
        next signal (a later run's start, say) would look like a wedged isolate, and the
        isolate be rebooted under the later runs JS had begun."""
        if not self._withdraw(run.index):
            return False
        resolve(run.future, CANCELLED)
        return True

    def _withdraw_after(self, index: int) -> bool:
        """Withdraw the runs after `index`: False if JS had taken one of them."""
        withdrawn = True
        for later in range(index + 1, MAX_BATCH):
            withdrawn = self._withdraw(later) and withdrawn
        return withdrawn

    async def _deliver(self, item: _Queued, run: Run, mail: Mail, ended: float) -> None:
        try:
            result: RunResult | FnboxError = await self._owner._finish(
                item.function, run, mail, (ended - run.started) * 1000, item.limits
            )
        except FnboxError as exc:
            result = exc
        await _end_network(run)
        _hand(item, result)

    async def _end_batched(self, item: _Queued, run: Run, signal: Any) -> None:
        """A batched run that did not hand its outcome over: as JsSandbox._run ends a lone one."""
        if isinstance(signal, _Requeued):  # JS never took it (nor any run after it): the isolate is stuck
            item.run = None  # (so that the batch's end does not take it for one that ran)
            try:
                await self._owner._reboot(run)
            except SandboxCrashed:
                pass
            self._give_back([item])
            return
        if signal is CANCELLED:
            await self._owner._stop(run)
            await _end_network(run)
            return
        failure = await self._owner._failure(run, signal, item.limits)
        await _end_network(run)
        _hand(item, failure)

    def _give_back(self, items: list[_Queued]) -> None:
        """Runs of a batch that never started: to the front of the queue, to the pool if the
        isolate broke (a fresh sandbox takes them), or failed if the sandbox is closed."""
        items = [item for item in items if not item.result.done()]
        for item in items:
            item.run = None
        if self._owner._closed:
            for item in items:
                _hand(item, SandboxCrashed("the JavaScript sandbox was closed", logs=[], duration=0.0))
        elif self._owner.broken:
            for item in items:
                _hand(item, Requeue())
        else:
            self._queue.extendleft(reversed(items))

    def close(self) -> None:
        """The sandbox is closed: no timer of its waits holds it any more."""
        self._dues.cancel()

    def network_started(self, loop: asyncio.AbstractEventLoop) -> None:
        """A run of the isolate (batched or lone) began to wait on the network: the runs queued
        behind it go back to the pool, which may give them isolates of their own (see overlap.py)."""
        try:
            loop.call_soon_threadsafe(self._shed)
        except RuntimeError:
            pass
        if self._owner.on_waiting is not None:
            self._owner.on_waiting(loop)

    def _shed(self) -> None:
        queue, self._queue = self._queue, collections.deque()
        for item in queue:
            _hand(item, Requeue())
        for item in self._posted:  # posted, not begun: withdrawn, unless JS took one meanwhile
            run = item.run
            if run is not None and not item.result.done() and self._take_back(run):
                _hand(item, Requeue())


def _hand(item: _Queued, value: RunResult | BaseException) -> None:
    """Answer a batched run's caller, unless it went."""
    if item.result.done():
        return
    if isinstance(value, BaseException):
        item.result.set_exception(value)
    else:
        item.result.set_result(value)


async def _end_network(run: Run) -> None:
    """A batched run is over: so are its outbound requests. (The host channel's network is the
    run JS is on, which may be a later one by now: see Inbox.on_host.)"""
    network, run.network = run.network, None
    if network is not None and not network.end_unused():
        try:
            await network.end()
        except Exception:  # its own clean-up: the runs after it in the batch go on all the same
            pass


def _on_batch_error(context: Context, runs: list[Run], value: Any) -> None:
    """A batch's eval failed (on the isolate's thread): the run JS was on gets the error."""
    if not isinstance(value, EngineError):
        return
    started = context.mailbox.started()
    run = next((run for run in runs if run.id == started), runs[0])
    run.eval_done = True
    resolve_threadsafe(run.loop, run.future, value)
