"""The shared queue of asynchronous executions: accepted by any instance, run once by the one that claims it.

The same surface as scheduler.Scheduler (submit, live, wait, follow, cancel, close), over
the PostgreSQL table of records (pgrecords.PgExecutionStore):

- `submit` stores the execution `accepted`, within `max_queue` executions waiting or
  running across all instances, and wakes this instance's claimer.
- Each instance's claimer takes accepted executions oldest first with FOR UPDATE SKIP
  LOCKED (at most `slots` running here at once), keeping `per_workspace` across instances;
  it looks again every `poll` seconds, and at once after an end here or a submit on any
  instance (LISTEN/NOTIFY: a speed-up only; a notification lost on a reconnect costs a poll).
- A claim sets a lease (the longest run timeout plus a margin) and raises the record's
  fencing number. Every `heartbeat` seconds the holder renews its leases, writes the logs
  so far (so any instance can serve them) and learns of cancels asked elsewhere; and
  every instance fails the executions whose lease ran out: their instance stopped.
  The end of a run is written only under the fencing number of its claim, so a late
  write from an instance that lost its lease changes nothing.
- `wait`, `follow` and `cancel` of an execution held elsewhere read the table again
  every `poll` seconds.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import psycopg

from fnbox.executions.pgrecords import QUEUE_CHANNEL, PgExecutionStore
from fnbox.executions.records import Execution
from fnbox.executions.scheduler import (
    CANCEL_WAIT,
    DISMISSED_AT_SHUTDOWN,
    DISMISSED_BY_CLIENT,
    EndEvent,
    LiveExecution,
    LogEvent,
    RunExecution,
)
from fnbox.sandboxes.errors import Conflict, Overloaded

__all__ = ["INSTANCE_STOPPED", "PgScheduler"]

logger = logging.getLogger("fnbox")

INSTANCE_STOPPED = "the instance running it stopped (its lease ran out)"
#: Seconds between lease renewals (and sweeps of expired leases).
HEARTBEAT = 0.5
#: Seconds between looks at the queue when nothing woke the claimer.
POLL = 0.2
#: Executions one instance runs at once.
SLOTS = 16


@dataclass(eq=False)
class _Held:
    live: LiveExecution
    fence: int
    logs_written: int = 0


class PgScheduler:
    def __init__(
        self,
        store: PgExecutionStore,
        run: RunExecution,
        *,
        max_queue: int,
        per_workspace: int,
        lease: float,
        slots: int = SLOTS,
        poll: float = POLL,
        heartbeat: float = HEARTBEAT,
    ) -> None:
        if max_queue < 1 or per_workspace < 1:
            raise ValueError("max_queue and per_workspace must be at least 1")
        self.store = store
        self.max_queue = max_queue
        self.per_workspace = per_workspace
        self.lease = lease
        self.slots = slots
        self.poll = poll
        self.heartbeat = heartbeat
        self.instance = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._run = run
        self._held: dict[str, _Held] = {}
        self._wake = asyncio.Event()
        self._claiming: asyncio.Task[None] | None = None
        self._beating: asyncio.Task[None] | None = None
        self._listening: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._claiming = asyncio.create_task(self._claim_loop(), name="fnbox-queue-claimer")
        self._beating = asyncio.create_task(self._heartbeat_loop(), name="fnbox-queue-heartbeat")
        self._listening = asyncio.create_task(self._listen_loop(), name="fnbox-queue-listener")

    def __len__(self) -> int:
        """Executions running on this instance."""
        return len(self._held)

    # ---- starting -----------------------------------------------------------------------

    async def submit(self, execution: Execution) -> Execution:
        refused = await asyncio.to_thread(self.store.accept, execution, self.max_queue)
        if refused == -1:
            raise Conflict(f"an execution {execution.id!r} already exists", details={"id": execution.id})
        if refused is not None:
            raise Overloaded(
                f"{refused} executions are already waiting or running (the most is {self.max_queue}); try again later",
                details={"max_queue": self.max_queue},
            )
        self._wake.set()
        return execution

    async def _claim_loop(self) -> None:
        while True:
            self._wake.clear()
            free = self.slots - len(self._held)
            claimed: list[tuple[Execution, int]] = []
            if free > 0:
                try:
                    claimed = await asyncio.to_thread(
                        self.store.claim, self.instance, free, self.per_workspace, self.lease
                    )
                except Exception as exc:  # the database down: look again later
                    logger.warning("the queue of executions could not be read: %s", exc)
            for execution, fence in claimed:
                live = LiveExecution(execution)
                self._held[execution.id] = _Held(live, fence)
                live.task = asyncio.create_task(self._execute(live, fence), name=f"fnbox-execution-{execution.id}")
            if claimed and len(claimed) == free:
                continue
            try:
                async with asyncio.timeout(self.poll):  # not wait_for: see scheduler.wait
                    await self._wake.wait()
            except TimeoutError:
                pass

    async def _listen_loop(self) -> None:
        """Wake the claimer when any instance accepts an execution: a speed-up only, the poll stays."""
        while True:
            try:
                connection = await psycopg.AsyncConnection.connect(self.store.database.url, autocommit=True)
                async with connection:
                    await connection.execute(f"LISTEN {QUEUE_CHANNEL}")
                    async for _ in connection.notifies():
                        self._wake.set()
            except (psycopg.Error, OSError):
                await asyncio.sleep(1.0)  # the database down: the claimer's poll goes on meanwhile

    async def _execute(self, live: LiveExecution, fence: int) -> None:
        execution = live.execution
        live.notify()
        await live.settle(self._run(execution, live.on_log))
        try:
            written = await asyncio.shield(asyncio.to_thread(self.store.finish, execution, self.instance, fence))
            if not written:
                logger.warning("execution %s ended here after its lease was lost: this end is not kept", execution.id)
        except asyncio.CancelledError:
            pass
        except Exception:
            logger.exception("execution %s: its final record could not be written", execution.id)
        finally:
            del self._held[execution.id]
            self._wake.set()

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat)
            try:
                await self._beat()
            except Exception as exc:
                logger.warning("the leases of executions could not be renewed: %s", exc)

    async def _beat(self) -> None:
        held = []
        for entry in list(self._held.values()):
            if entry.live.ended.is_set():
                continue
            execution = entry.live.execution
            held.append((execution, entry.fence, len(execution.logs) != entry.logs_written))
            entry.logs_written = len(execution.logs)
        answer = await asyncio.to_thread(self.store.renew, self.instance, held, self.lease)
        for execution, _, _ in held:
            execution_id = execution.id
            still = self._held.get(execution_id)
            if still is None or still.live.task is None or still.live.ended.is_set():
                continue
            if execution_id not in answer:
                logger.warning("execution %s: its lease was taken away; the run here is stopped", execution_id)
                still.live.dismissal = INSTANCE_STOPPED
                still.live.task.cancel()
            elif answer[execution_id]:
                still.live.dismissal = DISMISSED_BY_CLIENT
                still.live.task.cancel()
        expired = await asyncio.to_thread(self.store.expire_leases, INSTANCE_STOPPED)
        if expired:
            logger.warning("%d executions failed: %s (%s)", len(expired), INSTANCE_STOPPED, ", ".join(expired))

    # ---- reading ------------------------------------------------------------------------

    def live(self, execution_id: str) -> Execution | None:
        entry = self._held.get(execution_id)
        return entry.live.execution if entry is not None else None

    async def wait(self, execution_id: str, timeout: float) -> Execution | None:
        entry = self._held.get(execution_id)
        if entry is not None:
            try:
                async with asyncio.timeout(timeout):
                    await entry.live.ended.wait()
            except TimeoutError:
                pass
            return entry.live.execution
        deadline = time.monotonic() + timeout
        while True:
            found = await asyncio.to_thread(self.store.get, execution_id)
            if found is None or found.ended or time.monotonic() >= deadline:
                return found
            if execution_id in self._held:  # claimed here meanwhile
                return await self.wait(execution_id, max(deadline - time.monotonic(), 0))
            await asyncio.sleep(min(self.poll, max(deadline - time.monotonic(), 0)))

    async def follow(
        self, execution_id: str, *, start: int = 0, follow: bool = True, heartbeat: float | None = None
    ) -> AsyncIterator[LogEvent | EndEvent | None]:
        """As Scheduler.follow, for an execution held here or anywhere else. KeyError if there is none."""
        sent = start
        quiet_since = time.monotonic()
        while True:
            entry = self._held.get(execution_id)
            if entry is not None:
                async for event in entry.live.events(sent, follow, heartbeat):
                    if isinstance(event, LogEvent):
                        sent = event.index + 1
                    yield event
                if entry.live.ended.is_set() or not follow:
                    return
                continue
            found = await asyncio.to_thread(self.store.get, execution_id)
            if found is None:
                raise KeyError(execution_id)
            if sent < len(found.logs):
                quiet_since = time.monotonic()
            while sent < len(found.logs):
                yield LogEvent(sent, found.logs[sent])
                sent += 1
            if found.ended:
                yield EndEvent(found)
                return
            if not follow:
                return
            if heartbeat is not None and time.monotonic() - quiet_since >= heartbeat:
                quiet_since = time.monotonic()
                yield None
            await asyncio.sleep(self.poll)

    # ---- cancelling and stopping --------------------------------------------------------

    async def cancel(self, execution_id: str) -> Execution | None:
        entry = self._held.get(execution_id)
        if entry is not None:
            live = entry.live
            if live.task is None or live.ended.is_set():
                return None
            live.task.cancel()
            await asyncio.wait({live.task}, timeout=CANCEL_WAIT)
            return live.execution
        dismissed = await asyncio.to_thread(self.store.cancel_waiting, execution_id, DISMISSED_BY_CLIENT)
        if dismissed is not None:
            return dismissed
        if not await asyncio.to_thread(self.store.ask_cancel, execution_id):
            return None
        # The holder learns of it at its next heartbeat.
        found = await self.wait(execution_id, CANCEL_WAIT + 2 * self.heartbeat)
        return found

    async def close(self, grace: float) -> None:
        """Stop claiming; give the executions running here `grace` seconds to end, then cancel the rest."""
        for task in (self._claiming, self._listening):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        tasks = {entry.live.task for entry in self._held.values() if entry.live.task is not None}
        if tasks:
            logger.info("waiting up to %g s for %d executions to end", grace, len(tasks))
            _, pending = await asyncio.wait(tasks, timeout=grace)
            for entry in list(self._held.values()):
                if entry.live.task in pending:
                    entry.live.dismissal = DISMISSED_AT_SHUTDOWN
                    entry.live.task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=CANCEL_WAIT)
        if self._beating is not None:
            self._beating.cancel()
            await asyncio.gather(self._beating, return_exceptions=True)
