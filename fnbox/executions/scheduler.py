"""Asynchronous executions: accepted at once, run in the background within bounds.

The Scheduler keeps the executions that have not ended in memory, each with its task,
so that callers can read their latest state, wait for their end, cancel them and follow
their logs while they run; every change of state is written to the ExecutionStore.

Bounds, so that one tenant cannot starve the rest:
- `max_queue` executions at most accepted and not yet ended, all workspaces together
  (past it, Overloaded);
- `per_workspace` executions of one workspace running at once; the others wait for
  their turn, in order, and a cancelled one that never got its turn never starts.

    scheduler = Scheduler(store, run, max_queue=1000, per_workspace=4)
    execution = await scheduler.submit(Execution(...))      # 202
    execution = await scheduler.wait(execution.id, timeout=10)
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from fnbox.executions.records import Execution, ExecutionStatus, ExecutionStore
from fnbox.sandboxes.base import LogEntry, RunResult
from fnbox.sandboxes.errors import Conflict, FnboxError, Overloaded, SandboxCrashed

__all__ = ["DISMISSED_AT_SHUTDOWN", "DISMISSED_BY_CLIENT", "EndEvent", "LogEvent", "RunExecution", "Scheduler"]

logger = logging.getLogger("fnbox")

#: Runs an execution's function, streaming each log entry to the callback as it comes.
RunExecution = Callable[[Execution, Callable[[LogEntry], None]], Awaitable[RunResult]]

DISMISSED_BY_CLIENT = "the execution was cancelled by a client"
DISMISSED_AT_SHUTDOWN = "the service stopped before the execution ended"
#: Seconds a cancel waits for the run to stop before it answers anyway.
CANCEL_WAIT = 2.0


@dataclass(frozen=True)
class LogEvent:
    index: int
    entry: LogEntry


@dataclass(frozen=True)
class EndEvent:
    execution: Execution


@dataclass(eq=False)
class LiveExecution:
    execution: Execution
    task: asyncio.Task[None] | None = None
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    dismissal: str = DISMISSED_BY_CLIENT

    def notify(self) -> None:
        """Wake whoever follows this execution; they read its state again."""
        self.changed.set()
        self.changed = asyncio.Event()

    def on_log(self, entry: LogEntry) -> None:
        self.execution.logs.append(entry)
        self.notify()

    async def settle(self, running: Awaitable[RunResult]) -> None:
        """Await the run and make its outcome the execution's end (dismissed if cancelled), then
        wake whoever follows it."""
        try:
            self.execution.succeed(await running)
        except asyncio.CancelledError:
            self.execution.dismiss(self.dismissal)
        except FnboxError as exc:
            self.execution.fail(exc)
        except Exception as exc:
            logger.exception("execution %s failed unexpectedly", self.execution.id)
            self.execution.fail(SandboxCrashed(f"the execution failed: {type(exc).__name__}: {exc}"))
        self.ended.set()
        self.notify()

    async def events(
        self, sent: int, follow: bool, heartbeat: float | None
    ) -> AsyncIterator[LogEvent | EndEvent | None]:
        """Its log entries from index `sent` on, then its end; with `follow`, waiting for them
        (None every `heartbeat` seconds of quiet)."""
        while True:
            changed = self.changed
            logs = self.execution.logs
            while sent < len(logs):
                yield LogEvent(sent, logs[sent])
                sent += 1
            if self.ended.is_set():
                yield EndEvent(self.execution)
                return
            if not follow:
                return
            try:
                async with asyncio.timeout(heartbeat):
                    await changed.wait()
            except TimeoutError:
                yield None


class Scheduler:
    def __init__(self, store: ExecutionStore, run: RunExecution, *, max_queue: int, per_workspace: int) -> None:
        if max_queue < 1 or per_workspace < 1:
            raise ValueError("max_queue and per_workspace must be at least 1")
        self.store = store
        self.max_queue = max_queue
        self.per_workspace = per_workspace
        self._run = run
        self._live: dict[str, LiveExecution] = {}
        self._turns: dict[str, asyncio.Semaphore] = {}

    # ---- starting -----------------------------------------------------------------------

    def __len__(self) -> int:
        """Executions waiting or running."""
        return len(self._live)

    async def submit(self, execution: Execution) -> Execution:
        """Claim the execution's id, store it as accepted and start it in the background.

        Raises Conflict if the id is taken, Overloaded past `max_queue`.
        """
        if len(self._live) >= self.max_queue:
            raise Overloaded(
                f"{len(self._live)} executions are already waiting or running (the most is {self.max_queue}); "
                "try again later",
                details={"max_queue": self.max_queue},
            )
        if execution.id in self._live or not await asyncio.to_thread(self.store.insert, execution):
            raise Conflict(f"an execution {execution.id!r} already exists", details={"id": execution.id})
        live = LiveExecution(execution)
        self._live[execution.id] = live
        live.task = asyncio.create_task(self._execute(live), name=f"fnbox-execution-{execution.id}")
        return execution

    async def _execute(self, live: LiveExecution) -> None:
        execution = live.execution
        turn = self._turns.setdefault(execution.workspace, asyncio.Semaphore(self.per_workspace))

        async def running() -> RunResult:
            async with turn:
                execution.status, execution.started = ExecutionStatus.RUNNING, time.time()
                live.notify()
                await asyncio.to_thread(self.store.update, execution)
                return await self._run(execution, live.on_log)

        await live.settle(running())  # the state in memory is final from here on
        try:
            await asyncio.shield(asyncio.to_thread(self.store.update, execution))
        except asyncio.CancelledError:
            pass  # a late cancel: the write goes on regardless
        except Exception:
            logger.exception("execution %s: its final record could not be written", execution.id)
        finally:
            del self._live[execution.id]
            if not any(other.execution.workspace == execution.workspace for other in self._live.values()):
                self._turns.pop(execution.workspace, None)

    # ---- reading ------------------------------------------------------------------------

    def live(self, execution_id: str) -> Execution | None:
        """The in-memory state of an execution that has not ended (its logs so far included)."""
        live = self._live.get(execution_id)
        return live.execution if live is not None else None

    async def wait(self, execution_id: str, timeout: float) -> Execution | None:
        """The execution once it ends, or its state when `timeout` passes; None if not live."""
        live = self._live.get(execution_id)
        if live is None:
            return None
        # Not wait_for: on Python 3.11 a cancel that comes as its timeout fires is lost (it
        # answers TimeoutError), and a loop around it, such as the claimer's, never ends.
        try:
            async with asyncio.timeout(timeout):
                await live.ended.wait()
        except TimeoutError:
            pass
        return live.execution

    async def follow(
        self, execution_id: str, *, start: int = 0, follow: bool = True, heartbeat: float | None = None
    ) -> AsyncIterator[LogEvent | EndEvent | None]:
        """Log entries from index `start`, as they come, then the end (when `follow`).

        Without `follow`, only the entries there are now, and the end if it came. With a
        `heartbeat`, None comes after that many seconds without news (to keep a stream open).
        Raises KeyError if the execution is not live.
        """
        async for event in self._live[execution_id].events(start, follow, heartbeat):
            yield event

    # ---- cancelling and stopping --------------------------------------------------------

    async def cancel(self, execution_id: str) -> Execution | None:
        """Stop an execution that has not ended; it ends `dismissed`. None if it is not live."""
        live = self._live.get(execution_id)
        if live is None or live.task is None or live.ended.is_set():
            return None
        live.task.cancel()
        await asyncio.wait({live.task}, timeout=CANCEL_WAIT)
        return live.execution

    async def close(self, grace: float) -> None:
        """Give the executions in flight `grace` seconds to end, then cancel the rest."""
        tasks = {live.task for live in self._live.values() if live.task is not None}
        if tasks:
            logger.info("waiting up to %g s for %d executions to end", grace, len(tasks))
            _, pending = await asyncio.wait(tasks, timeout=grace)
            for live in list(self._live.values()):
                if live.task in pending:
                    live.dismissal = DISMISSED_AT_SHUTDOWN
                    live.task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=CANCEL_WAIT)
