"""Who must have seen a change before its save is answered: each instance's lease, and the wait for them.

Every instance on a database holds a row of `fnbox_instances`: the number of the last
change it applied (`seen`) and a lease that ends at `lease_until`, in the database's
clock. Each pass of the change feed (fnbox/workspaces/changes.py), made every third of a
lease and at once when a change is notified, renews it in one transaction:

1. lock its own row (`FOR UPDATE`),
2. read the change counter and the changes after the last one applied (snapshots taken
   after the lock), and apply them here,
3. set `seen` to that counter and `lease_until` to the transaction's start plus a lease.

While `clock()` is before the moment that transaction was begun plus a lease, less a
margin for clocks that run at slightly different rates, the instance serves runs from
what it holds, with no query. Once that passes without a renewal (the database is slow or
gone, the process was paused) runs go back to asking the database each time.

A save (or anything that takes a change number), once committed, waits until every other
instance whose lease is live has `seen` its number, reading the rows `FOR SHARE`. Why that
is enough: a renewal that locked its row before the read is waited for and read as it
ends; one that locks it after the read takes its snapshots after the commit, so it applies
the change before it holds a lease again. A lease granted on an older snapshot was begun
before the commit and so has ended, in its holder's own clock, one lease after the commit
at the latest: a save never waits longer than that (`bound`), whatever the database or the
other instances do. A row that did not exist when a save read the table must not let its
instance serve from what it holds: the pass that inserts it grants no lease, the next one does.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import psycopg

from fnbox import metrics

__all__ = ["ACKS_CHANNEL", "Acks", "Lease", "clock", "close_quietly", "connect", "instance_id"]

logger = logging.getLogger("fnbox")

#: The channel a pass notifies when this instance has seen newer changes: the saves waiting for it look again.
ACKS_CHANNEL = "fnbox_acks"
LOCK = "SELECT 1 FROM fnbox_instances WHERE id = %s FOR UPDATE"
REGISTER = (
    "INSERT INTO fnbox_instances (id, seen, lease_until) VALUES (%s, %s, now() + make_interval(secs => %s))"
    " ON CONFLICT (id) DO NOTHING"
)
RENEW = (
    "UPDATE fnbox_instances SET seen = GREATEST(seen, %s), lease_until = now() + make_interval(secs => %s)"
    " WHERE id = %s"
)
#: Rows of instances that stopped without a word (kill -9) a long time ago.
FORGET = (
    "DELETE FROM fnbox_instances WHERE id IN (SELECT id FROM fnbox_instances"
    " WHERE lease_until < now() - interval '10 minutes' FOR UPDATE SKIP LOCKED)"
)
LEAVE = "DELETE FROM fnbox_instances WHERE id = %s"
#: The others' rows, locked for share: a renewal in flight is waited for and read as it ends.
OTHERS = "SELECT seen, lease_until > now() FROM fnbox_instances WHERE id <> %s FOR SHARE"
#: Milliseconds a save's read of the others' rows waits for a renewal's lock before it reads again.
LOCK_TIMEOUT_MS = 200
#: Seconds between a waiting save's reads of the others' rows when no acknowledgement is notified.
POLL = 0.05
#: Passes between two clean-ups of long-dead instances' rows.
FORGET_EVERY = 64


def clock() -> float:
    """Seconds that keep counting while the machine sleeps, so that a lease never outlives a suspend."""
    return time.clock_gettime(getattr(time, "CLOCK_BOOTTIME", time.CLOCK_MONOTONIC))


def instance_id() -> str:
    """This process's name in `fnbox_instances`: the host and pid an operator recognises, and a random part."""
    return f"{socket.gethostname()[:40]}/{os.getpid()}/{uuid.uuid4().hex[:8]}"


async def connect(url: str, role: str, **options: Any) -> psycopg.AsyncConnection[Any]:
    """An autocommit connection named `fnbox-<role>-<pid>` in pg_stat_activity.

    One whose opening is cancelled (the service stops) is closed when it opens, never left
    to the garbage collector.
    """
    opening = asyncio.ensure_future(
        psycopg.AsyncConnection.connect(url, autocommit=True, application_name=f"fnbox-{role}-{os.getpid()}", **options)
    )
    try:
        return await asyncio.shield(opening)
    except asyncio.CancelledError:
        try:
            await (await opening).close()
        except (psycopg.Error, OSError):
            pass
        raise


async def close_quietly(connection: psycopg.AsyncConnection[Any] | None) -> None:
    """Close a connection that may be broken already: nothing is left to tell its server."""
    if connection is not None:
        try:
            await connection.close()
        except (psycopg.Error, OSError):
            pass


@dataclass
class Renewal:
    """One pass's renewal: the pass sets `seen`, the number of the last change it applied."""

    seen: int = 0


class Lease:
    """This instance's row, its renewals, and whether it may serve from what it holds now."""

    def __init__(self, instance: str, seconds: float) -> None:
        self.id = instance
        self.seconds = seconds
        #: What is taken off a lease for clocks that do not run at quite the same rate.
        self.margin = seconds / 4
        self._until = -math.inf
        self._passes = 0
        #: The last `seen` this instance acknowledged.
        self.seen = 0

    def holds(self) -> bool:
        """True while the last renewal's lease is certainly live: runs need not ask the database."""
        return clock() < self._until

    def drop(self) -> None:
        self._until = -math.inf

    async def register(self, connection: psycopg.AsyncConnection[Any], seen: int) -> None:
        """Put this instance's row in, with no lease held yet (the next renewal grants one)."""
        await connection.execute(REGISTER, (self.id, seen, self.seconds))

    @asynccontextmanager
    async def renewing(self, connection: psycopg.AsyncConnection[Any], began: float) -> AsyncIterator[Renewal]:
        """A transaction holding this instance's row: the body reads and applies, then the lease is renewed.

        `began` is `clock()` before the transaction was begun: the lease counts from then.
        """
        renewal = Renewal()
        # Pipelined: the statements before each result needed go in one round trip, run in turn.
        async with connection.pipeline() as pipeline:
            async with connection.transaction():
                locking = await connection.execute(LOCK, (self.id,))
                yield renewal
                known = await locking.fetchone() is not None
                if not known:  # new, or forgotten after its lease ended long ago: in again, with no lease this time
                    await self.register(connection, 0)
                await connection.execute(RENEW, (renewal.seen, self.seconds, self.id))
                if renewal.seen > self.seen:  # saves may be waiting for it
                    await connection.execute(f"NOTIFY {ACKS_CHANNEL}")
                self._passes += 1
                if self._passes % FORGET_EVERY == 1:
                    await connection.execute(FORGET)
            await pipeline.sync()  # the commit's answer: no lease is held before it came
        self.seen = max(self.seen, renewal.seen)
        if known:
            self._until = began + self.seconds - self.margin

    async def leave(self, connection: psycopg.AsyncConnection[Any]) -> None:
        """Remove this instance's row: saves stop waiting for it."""
        self.drop()
        await connection.execute(LEAVE, (self.id,))


class Acks:
    """The saves of this instance waiting for every other live instance to have seen their change.

    One task reads the others' rows for all of them, again on each acknowledgement notified
    (`wake`) and every `POLL` seconds, on a connection of its own.
    """

    def __init__(self, url: str, instance: str, bound: float) -> None:
        self.url = url
        self.id = instance
        #: Seconds after which a save is answered whatever the others did (see the module's docstring).
        self.bound = bound
        self._waiting: list[tuple[float, asyncio.Future[bool]]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._connection: psycopg.AsyncConnection[Any] | None = None

    def wake(self) -> None:
        self._wake.set()

    async def wait(self, seen: float) -> bool:
        """Until every other instance whose lease is live has seen change `seen`; False if `bound` passed first."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        entry = (seen, future)
        self._waiting.append(entry)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._look(), name="fnbox-acks")
        self.wake()
        try:
            async with asyncio.timeout(self.bound):
                await asyncio.shield(future)
        except TimeoutError:
            logger.warning(
                "a change was not acknowledged by every instance within %g s: answered all the same", self.bound
            )
            metrics.CHANGE_WAITS.labels("bound").inc()
            return False
        finally:
            if entry in self._waiting:
                self._waiting.remove(entry)
        metrics.CHANGE_WAITS.labels("acknowledged").inc()
        return True

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._drop_connection()

    async def _look(self) -> None:
        while self._waiting:
            self._wake.clear()
            try:
                lagging = await self._lagging()
            except (psycopg.Error, OSError):
                await self._drop_connection()  # asked again at the next look; the bound still holds
            else:
                for seen, future in list(self._waiting):
                    if (lagging is None or lagging >= seen) and not future.done():
                        future.set_result(True)
            try:
                async with asyncio.timeout(POLL):
                    await self._wake.wait()
            except TimeoutError:
                pass

    async def _lagging(self) -> int | None:
        """The lowest `seen` of the other instances whose lease is live; None when there are none."""
        if self._connection is None or self._connection.closed:
            self._connection = await connect(
                self.url, "acks", connect_timeout=max(int(self.bound), 1), options=f"-c lock_timeout={LOCK_TIMEOUT_MS}"
            )
        try:
            rows = await (await self._connection.execute(OTHERS, (self.id,))).fetchall()
        except psycopg.errors.LockNotAvailable:
            return -1  # a renewal holds a row: read again shortly
        live = [int(seen) for seen, live in rows if live]
        return min(live) if live else None

    async def _drop_connection(self) -> None:
        connection, self._connection = self._connection, None
        await close_quietly(connection)
