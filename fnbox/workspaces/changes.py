"""Read-your-writes across instances: every instance follows the numbered changes of workspaces.

A pass applies the changes numbered after the last one this instance applied: a query
for them, then the heads of the workspaces they name. By default (strict) a run needs no
pass of its own while this instance holds its lease (fnbox/workspaces/presence.py): each
pass renews the lease and acknowledges the changes it applied, one is made every third of
a lease and at once when a change is notified, and a save is answered only once every
instance holding a lease has acknowledged it. Without a lease (the database was slow or
out of reach, the process was paused) a run asks `catch_up()` before it starts, which
waits for one pass that *started after the call*: a save answered by any instance
committed before such a pass began, so the run sees it. Calls that arrive while a pass is
in flight share the next one.

With `max_staleness` (seconds, 0 by default), an operator trades that guarantee for
fewer queries: this instance holds no lease and saves do not wait for it; a run starts at
once on what it holds if a pass that began at most that long ago succeeded, and a save
reaches its runs within that bound, usually far sooner: a notification (LISTEN/NOTIFY) of
each change makes the next run ask at once.

Secrets and access tokens change through the same numbers (fnbox/workspaces/pgchanges.py):
a pass hands the names their changes give to the follower of that kind (`others`), after
the workspaces, so one catch-up brings every kind of change up to date.

The persisted numbers are the source of truth: nothing is lost when a connection drops or
a notification is missed, the next pass reads from where the last one ended. While the
database cannot be reached runs go on with the versions this instance holds (a save cannot
be answered meanwhile either), and it is asked again at most every `retry_after` seconds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import psycopg

from fnbox import metrics
from fnbox.workspaces.pgstore import CHANGES_CHANNEL, decode
from fnbox.workspaces.presence import ACKS_CHANNEL, Acks, Lease, clock, close_quietly, connect, instance_id
from fnbox.workspaces.store import StoredDocumentError

__all__ = ["ApplyOther", "ChangeFeed"]

logger = logging.getLogger("fnbox")

#: Apply the changes of one pass: the workspaces changed, and the documents of those that exist now.
Apply = Callable[[list[str], dict[str, dict[str, Any]]], Awaitable[None]]
#: Apply the changes of another kind (a kind of fnbox_changes): the names they give.
ApplyOther = Callable[[list[str]], Awaitable[None]]

#: Every change after a number: a workspace's (kind NULL) or another kind's, in order.
CHANGES = (
    "SELECT seq, name, NULL AS kind FROM fnbox_workspace_versions WHERE seq > %(seq)s"
    " UNION ALL SELECT seq, name, kind FROM fnbox_changes WHERE seq > %(seq)s ORDER BY seq"
)
HEADS = (
    "SELECT w.name, v.document FROM fnbox_workspaces w JOIN fnbox_workspace_versions v ON v.seq = w.seq"
    " WHERE w.name = ANY(%s)"
)
LAST = "SELECT value FROM fnbox_counters WHERE name = 'workspace_changes'"


class ChangeFeed:
    def __init__(
        self,
        url: str,
        apply: Apply,
        *,
        max_staleness: float = 0.0,
        lease: float = 2.0,
        timeout: float = 2.0,
        retry_after: float = 1.0,
        others: Mapping[str, ApplyOther] | None = None,
    ) -> None:
        self.url = url
        self.max_staleness = max_staleness
        self.apply = apply
        #: The appliers of the other kinds of change, by kind.
        self.others = others or {}
        self.timeout = timeout
        self.retry_after = retry_after
        #: The number of the last change applied here.
        self.seq = 0
        #: Every change numbered up to this one is applied here (a change that added no row counts too).
        self.seen = 0
        instance = instance_id()
        self._lease_seconds = lease
        #: Strict: this instance's lease, without which runs ask the database; none with a staleness bound.
        self.lease = None if max_staleness else Lease(instance, lease)
        #: This instance's saves waiting for the other instances (every mode: the others may be strict).
        self.acks = Acks(url, instance, bound=lease * 1.25)
        self._connection: psycopg.AsyncConnection[Any] | None = None
        #: The passes, one after the other, while runs wait for one.
        self._driver: asyncio.Task[None] | None = None
        #: What the calls arrived since the last pass began wait for: the next pass's outcome.
        self._next: asyncio.Future[int | None] | None = None
        #: The outcome of the pass in flight.
        self._passing: asyncio.Future[int | None] | None = None
        self._down_until = 0.0
        self._down = False
        #: When the last pass that succeeded began (monotonic seconds).
        self._fresh_at = float("-inf")
        self._listener: asyncio.Task[None] | None = None
        self._beat: asyncio.Task[None] | None = None

    async def start(self) -> int:
        """Take the current change number as the starting point (call before loading every workspace)."""
        connection = await self._connect()
        row = await (await connection.execute(LAST)).fetchone()
        self.seq = self.seen = int(row[0]) if row else 0
        return self.seq

    def follow(self) -> None:
        """Listen, and hold a lease (strict): call once everything is loaded, so that what a pass acknowledges is.

        The first pass puts this instance's row in and the next grants the lease; until
        then each run asks the database, and saves through the others do not wait for it.
        """
        self._listener = asyncio.create_task(self._listen(), name="fnbox-change-listener")
        if self.lease is not None:
            self._beat = asyncio.create_task(self._heartbeat(self.lease), name="fnbox-lease")
            metrics.LEASE_HELD.set_function(self.lease.holds)

    async def close(self) -> None:
        for task in (self._listener, self._beat):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        if self._driver is not None and not self._driver.done():
            self._driver.cancel()
            await asyncio.gather(self._driver, return_exceptions=True)
        if self._next is not None and not self._next.done():
            self._next.set_result(None)
        await self.acks.close()
        if self.lease is not None:
            self.lease.drop()
            try:
                async with asyncio.timeout(self.timeout):
                    await self.lease.leave(await self._connect())  # saves stop waiting for this instance
            except (psycopg.Error, OSError, TimeoutError):
                pass  # its lease ends by itself
        await self._drop_connection()

    async def catch_up(self) -> bool:
        """Apply every change committed before this call; False if the database could not be asked."""
        if self.lease is not None and self.lease.holds():
            return True  # every save answered meanwhile was acknowledged here first
        now = time.monotonic()
        if self._down and now < self._down_until:
            return False
        if self.max_staleness and now - self._fresh_at <= self.max_staleness:
            return True
        return await self.next_pass() is not None

    async def publish(self, change: int | None = None) -> bool:
        """After a change committed through this instance: apply it here, and wait for the other instances.

        Returns once every other instance holding a lease has acknowledged change number
        `change` (None: any committed before this call), or after `acks.bound` seconds;
        False if it could not be applied here (the database is out of reach).
        """
        if change is None:
            seen = await self.next_pass()
            await self.acks.wait(float("inf") if seen is None else seen)
            return seen is not None
        applied, _ = await asyncio.gather(self._applied(change), self.acks.wait(change))
        return applied

    async def _applied(self, change: int) -> bool:
        """Until change number `change` is applied here (a pass in flight may do); False if a pass failed."""
        while self.seen < change:
            if await asyncio.shield(self._passing or self._request()) is None:
                return False
        return True

    async def next_pass(self) -> int | None:
        """Wait for a pass that starts after this call: the number of the last change applied, None if it failed."""
        # A pass in flight began before this call and may have missed what was just committed:
        # wait for the next one, shared by every call that arrives until it begins.
        return await asyncio.shield(self._request())

    def _request(self) -> asyncio.Future[int | None]:
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
        waiting = self._next
        if self._driver is None or self._driver.done():
            self._driver = asyncio.create_task(self._drive(), name="fnbox-change-feed")
        return waiting

    async def _drive(self) -> None:
        while self._next is not None:
            waiting, self._next = self._next, None
            self._passing = waiting
            seen = None
            try:
                seen = await self._one_pass()
                self.seen = max(self.seen, seen)
            except (psycopg.Error, OSError, TimeoutError):
                pass  # logged once by _lost; the runs go on with what this instance holds
            except Exception:
                logger.exception("changes of workspaces could not be applied")
            finally:
                self._passing = None
                waiting.set_result(seen)  # also when cancelled: nobody waits forever

    async def _heartbeat(self, lease: Lease) -> None:
        """Renew the lease every third of it, with a pass (the first at once)."""
        while True:
            if await self.next_pass() is not None and not lease.holds():
                await self.next_pass()  # that pass put the row in (new, or forgotten): the lease comes now
            await asyncio.sleep(lease.seconds / 3)

    async def _listen(self) -> None:
        """A change anywhere: a pass at once (strict), or the next run asks (staleness bound)."""
        while True:
            try:
                connection = await connect(self.url, "listener")
                async with connection:
                    await connection.execute(f"LISTEN {CHANGES_CHANNEL}")
                    await connection.execute(f"LISTEN {ACKS_CHANNEL}")
                    self._changed()  # what changed while not listening
                    self.acks.wake()
                    async for notify in connection.notifies():
                        if notify.channel == ACKS_CHANNEL:
                            self.acks.wake()
                        else:
                            self._changed()
            except (psycopg.Error, OSError):
                await asyncio.sleep(self.retry_after)

    def _changed(self) -> None:
        self._fresh_at = float("-inf")
        if self.lease is not None:
            self._request()

    async def _one_pass(self) -> int:
        began, since = time.monotonic(), clock()
        try:
            async with asyncio.timeout(self.timeout):
                try:
                    seen = await self._pass_on(await self._connect(), since)
                except psycopg.OperationalError:
                    # A connection that was idle may have been cut (a restart, a proxy): one new try.
                    await self._drop_connection()
                    seen = await self._pass_on(await self._connect(), since)
        except (psycopg.Error, OSError, TimeoutError) as exc:
            await self._lost(exc)
            raise
        self._up()
        self._fresh_at = began
        return seen

    async def _pass_on(self, connection: psycopg.AsyncConnection[Any], since: float) -> int:
        if self.lease is None:
            return await self._read_and_apply(connection)
        async with self.lease.renewing(connection, since) as renewal:
            renewal.seen = await self._read_and_apply(connection)
        return renewal.seen

    async def _read_and_apply(self, connection: psycopg.AsyncConnection[Any]) -> int:
        """Apply the changes after the last one applied here; every change up to the number returned is applied."""
        # The counter first: every change it counts has committed, so the next read sees it.
        counting = await connection.execute(LAST)
        rows, heads = await self._read(connection)
        counted = await counting.fetchone()
        if rows:
            names = sorted({row[1] for row in rows if row[2] is None})
            documents = {}
            for name, text in heads:
                try:
                    documents[name] = decode(name, text)
                except StoredDocumentError as exc:
                    logger.error("%s", exc)  # left out: reading it answers why
            if names:
                await self.apply(names, documents)
            await self._apply_others(rows)
            self.seq = max(self.seq, int(rows[-1][0]))
        return max(self.seq, int(counted[0]) if counted else 0)

    async def _apply_others(self, rows: list[tuple[Any, ...]]) -> None:
        for kind, apply in self.others.items():
            names = sorted({row[1] for row in rows if row[2] == kind})
            if names:
                await apply(names)

    async def _read(
        self, connection: psycopg.AsyncConnection[Any]
    ) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        rows = await (await connection.execute(CHANGES, {"seq": self.seq})).fetchall()
        names = sorted({row[1] for row in rows if row[2] is None})
        if not names:
            return rows, []
        return rows, await (await connection.execute(HEADS, (names,))).fetchall()

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        if self._connection is None or self._connection.closed:
            # A renewal left open (this process paused mid-way) holds its row's lock one lease at most.
            idle = f"-c idle_in_transaction_session_timeout={max(int(self._lease_seconds * 1000), 1)}"
            self._connection = await connect(
                self.url, "changes", connect_timeout=max(int(self.timeout), 1), options=idle
            )
            # Each statement of a lease's renewal takes its own snapshot, after the row's lock.
            await self._connection.set_isolation_level(psycopg.IsolationLevel.READ_COMMITTED)
        return self._connection

    async def _lost(self, exc: BaseException) -> None:
        if not self._down:
            logger.warning("the database cannot be reached (%s): runs go on with the versions this instance holds", exc)
        self._down = True
        self._down_until = time.monotonic() + self.retry_after
        await self._drop_connection()

    async def _drop_connection(self) -> None:
        connection, self._connection = self._connection, None
        await close_quietly(connection)

    def _up(self) -> None:
        if self._down:
            logger.warning("the database is back: catching up with the changes of workspaces")
        self._down = False
