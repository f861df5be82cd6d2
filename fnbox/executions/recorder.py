"""The Recorder: writes the records of synchronous runs in batches, off the request path.

`record()` only puts the record in a bounded in-memory queue; a background task writes
the queue in one transaction every `interval` seconds (sooner once `batch_size` records
wait) and applies retention now and then. A record's row (its JSON texts) is made when
its batch is written, on the writer's thread, a statement's worth at a time: nothing of
it on the request's path, and the event loop never waits long for the GIL. So a record
must not change once recorded (a later state is recorded as a new `Execution`), and the
parameters and result it holds are written as they are then. A failing database is logged and survived:
recording is best effort, a run's answer never waits for it or fails because of it.
Asynchronous executions, whose id must be claimed before they start, go to
`ExecutionStore.insert` directly.

    recorder = Recorder(ExecutionStore(data_dir / "executions.sqlite3"))
    recorder.start()
    recorder.record(execution)          # from the event loop, non-blocking
    await recorder.get(execution.id)    # sees it at once, written or not
    await recorder.close()              # writes what is pending
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from typing import Any

from fnbox import metrics
from fnbox.executions.bounds import cap_row
from fnbox.executions.records import Execution, ExecutionStore, to_row

__all__ = ["INTERVAL", "SHARED_INTERVAL", "Recorder"]

logger = logging.getLogger("fnbox")

WARNING_INTERVAL = 10.0
#: Seconds between writes to a store that only this instance reads: what a crash (not a stop)
#: may lose of its records. One transaction of thousands of records costs the service less
#: per record than ten of a tenth as many (`bench/warm_cpu.py`: a warm hello answered 2-13%
#: faster than with 0.2 s and at most 500 records a batch).
INTERVAL = 1.0
#: Seconds between writes to a store that other instances read: they list a synchronous run
#: this much later at most.
SHARED_INTERVAL = 0.2
#: Records waiting that are written without waiting for the interval.
BATCH_SIZE = 5000


class Recorder:
    def __init__(
        self,
        store: ExecutionStore,
        *,
        interval: float = INTERVAL,
        batch_size: int = BATCH_SIZE,
        max_pending: int = 10_000,
        max_count: int | None = None,
        max_age: float | None = None,
        prune_every: int = 10_000,
        prune_interval: float = 60.0,
    ) -> None:
        if batch_size < 1 or max_pending < 1:
            raise ValueError("batch_size and max_pending must be at least 1")
        self.store = store
        self.interval = interval
        self.batch_size = batch_size
        self.max_pending = max_pending
        self.max_count = max_count
        self.max_age = max_age
        self.prune_every = prune_every
        self.prune_interval = prune_interval
        #: Records never written: pushed out of a full queue, or in a batch the database refused.
        self.dropped = 0
        # A dict keeps its keys in insertion order at half an OrderedDict's cost per record.
        self._pending: dict[str, Execution] = {}
        self._writing: dict[str, Execution] = {}
        self._flushing = asyncio.Lock()
        self._wake = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._written_since_prune = 0
        self._last_prune = -math.inf
        self._last_warning = -math.inf

    def start(self) -> None:
        """Start the background writer on the running event loop."""
        self._task = asyncio.get_running_loop().create_task(self._run(), name="fnbox-recorder")

    async def close(self) -> None:
        """Stop the background writer and write what is still pending."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
        await self.flush()

    def record(self, execution: Execution) -> None:
        """Queue a record (a later state of the same id replaces an earlier one)."""
        pending = self._pending
        pending[execution.id] = execution
        if len(pending) > self.max_pending:
            del pending[next(iter(pending))]  # the oldest
            self._drop(1, "the queue of records to write is full")
        if len(pending) >= self.batch_size:
            self._wake.set()

    async def flush(self) -> None:
        """Write every pending record now (one transaction); errors are logged, not raised."""
        async with self._flushing:
            if not self._pending:
                return
            self._writing, self._pending = self._pending, {}
            count = len(self._writing)
            try:
                await asyncio.to_thread(self._write, self._writing)
                self._written_since_prune += count
                metrics.RECORDS_WRITTEN.inc(count)
            except Exception as exc:
                self._drop(count, f"the execution store refused a batch: {exc!r}")
            finally:
                self._writing = {}

    def _write(self, batch: dict[str, Execution]) -> None:
        """On the writer's thread: write a batch, then let go of its records there.

        Freeing a batch's records takes about a microsecond each, which the event loop would
        otherwise pay when it drops the batch. Written (or refused), they are no longer needed:
        `get` finds a written one in the store.
        """
        try:
            self.store.write_many(batch.values())
        finally:
            batch.clear()

    async def get(self, execution_id: str) -> Execution | None:
        """A record, read-after-write: a queued one is answered from memory."""
        execution = self._pending.get(execution_id) or self._writing.get(execution_id)
        if execution is not None:
            row = to_row(execution)
            if cap_row(row, self.store.bounds.max_record_bytes) is row:
                return execution
            await self.flush()  # a record the store cuts: answer it as stored, never bigger
        return await asyncio.to_thread(self.store.get, execution_id)

    async def list(self, **filters: Any) -> tuple[list[Execution], str | None]:
        """`ExecutionStore.list`, after writing what is pending so that the page includes it."""
        await self.flush()
        return await asyncio.to_thread(self.store.list, **filters)

    async def _run(self) -> None:
        while not self._closing:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.interval):
                    await self._wake.wait()
            self._wake.clear()
            try:
                await self.flush()
                await self._prune_if_due()
            except Exception:  # a bug here must not stop recording for good
                logger.exception("execution recorder")

    async def _prune_if_due(self) -> None:
        if self.max_count is None and self.max_age is None:
            return
        due = time.monotonic() - self._last_prune >= self.prune_interval
        if not due and self._written_since_prune < self.prune_every:
            return
        self._last_prune, self._written_since_prune = time.monotonic(), 0
        async with self._flushing:  # one writer at a time
            try:
                await asyncio.to_thread(self.store.prune, self.max_count, self.max_age)
            except Exception as exc:
                logger.warning("execution records not pruned: %r", exc)

    def _drop(self, count: int, reason: str) -> None:
        self.dropped += count
        metrics.RECORDS_DROPPED.inc(count)
        now = time.monotonic()
        if now - self._last_warning >= WARNING_INTERVAL:
            self._last_warning = now
            logger.warning("execution records dropped (%d so far): %s", self.dropped, reason)
