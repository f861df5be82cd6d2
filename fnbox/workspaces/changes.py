"""Read-your-writes across instances: every instance follows the numbered changes of workspaces.

A run asks `catch_up()` before it starts. That waits for one pass that *started after the
call*: a query for the changes numbered after the last one this instance applied, then
the heads of the workspaces they name. A save answered by any instance committed before
such a pass began, so the run sees it. Calls that arrive while a pass is in flight share
the next one: under load a pass serves every run that arrived during the previous one,
so the database sees about one small indexed query per round trip, not one per run.

With `max_staleness` (seconds, 0 by default), an operator trades that guarantee for
throughput: a run starts at once on what this instance holds if a pass that began at
most that long ago succeeded, so there is about one pass per `max_staleness` however many
runs come, and a save reaches the other instances' runs within that bound. A notification
(LISTEN/NOTIFY) of each change makes the next run ask at once, so most saves arrive much
sooner; a notification lost on a reconnect costs nothing but that.

Secrets and access tokens change through the same numbers (fnbox/workspaces/pgchanges.py):
a pass hands the names their changes give to the follower of that kind (`others`), after
the workspaces, so one catch-up brings every kind of change up to date.

The persisted numbers are the source of truth: nothing is lost when a connection drops,
the next pass reads from where the last one ended. While the database cannot be reached
runs go on with the versions this instance holds (a save cannot be answered meanwhile
either), and it is asked again at most every `retry_after` seconds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import psycopg

from fnbox.workspaces.pgstore import CHANGES_CHANNEL, decode
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
        self._connection: psycopg.AsyncConnection[Any] | None = None
        #: The passes, one after the other, while runs wait for one.
        self._driver: asyncio.Task[None] | None = None
        #: What the runs arrived since the last pass began wait for: the next pass's outcome.
        self._next: asyncio.Future[bool] | None = None
        self._down_until = 0.0
        self._down = False
        #: When the last pass that succeeded began (monotonic seconds).
        self._fresh_at = float("-inf")
        self._listener: asyncio.Task[None] | None = None

    async def start(self) -> int:
        """Take the current change number as the starting point (call before loading every workspace)."""
        if self.max_staleness:
            self._listener = asyncio.create_task(self._listen(), name="fnbox-change-listener")
        connection = await self._connect()
        row = await (await connection.execute(LAST)).fetchone()
        self.seq = int(row[0]) if row else 0
        return self.seq

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.gather(self._listener, return_exceptions=True)
        if self._driver is not None and not self._driver.done():
            self._driver.cancel()
            await asyncio.gather(self._driver, return_exceptions=True)
        if self._next is not None and not self._next.done():
            self._next.set_result(False)
        if self._connection is not None:
            await self._connection.close()
            self._connection = None

    async def catch_up(self) -> bool:
        """Apply every change committed before this call; False if the database could not be asked."""
        now = time.monotonic()
        if self._down and now < self._down_until:
            return False
        if self.max_staleness and now - self._fresh_at <= self.max_staleness:
            return True
        # A pass in flight began before this call and may have missed what was just committed:
        # wait for the next one, shared by every run that arrives until it begins.
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
        waiting = self._next
        if self._driver is None or self._driver.done():
            self._driver = asyncio.create_task(self._drive(), name="fnbox-change-feed")
        return await asyncio.shield(waiting)

    async def _drive(self) -> None:
        while self._next is not None:
            waiting, self._next = self._next, None
            applied = False
            try:
                await self._one_pass()
                applied = True
            except (psycopg.Error, OSError, TimeoutError):
                pass  # logged once by _lost; the runs go on with what this instance holds
            except Exception:
                logger.exception("changes of workspaces could not be applied")
            finally:
                waiting.set_result(applied)  # also when cancelled: nobody waits forever

    async def _listen(self) -> None:
        """With a staleness bound: a change anywhere makes the next run here ask the database."""
        while True:
            try:
                connection = await psycopg.AsyncConnection.connect(self.url, autocommit=True)
                async with connection:
                    await connection.execute(f"LISTEN {CHANGES_CHANNEL}")
                    self._fresh_at = float("-inf")  # what changed while not listening
                    async for _ in connection.notifies():
                        self._fresh_at = float("-inf")
            except (psycopg.Error, OSError):
                await asyncio.sleep(self.retry_after)

    async def _one_pass(self) -> None:
        began = time.monotonic()
        try:
            async with asyncio.timeout(self.timeout):
                try:
                    rows, heads = await self._read()
                except psycopg.OperationalError:
                    # A connection that was idle may have been cut (a restart, a proxy): one new try.
                    await self._drop_connection()
                    rows, heads = await self._read()
        except (psycopg.Error, OSError, TimeoutError) as exc:
            await self._lost(exc)
            raise
        self._up()
        if not rows:
            self._fresh_at = began
            return
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
        self._fresh_at = began

    async def _apply_others(self, rows: list[tuple[Any, ...]]) -> None:
        for kind, apply in self.others.items():
            names = sorted({row[1] for row in rows if row[2] == kind})
            if names:
                await apply(names)

    async def _read(self) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        connection = await self._connect()
        rows = await (await connection.execute(CHANGES, {"seq": self.seq})).fetchall()
        names = sorted({row[1] for row in rows if row[2] is None})
        if not names:
            return rows, []
        return rows, await (await connection.execute(HEADS, (names,))).fetchall()

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        if self._connection is None or self._connection.closed:
            self._connection = await psycopg.AsyncConnection.connect(
                self.url, autocommit=True, connect_timeout=max(int(self.timeout), 1)
            )
        return self._connection

    async def _lost(self, exc: BaseException) -> None:
        if not self._down:
            logger.warning("the database cannot be reached (%s): runs go on with the versions this instance holds", exc)
        self._down = True
        self._down_until = time.monotonic() + self.retry_after
        await self._drop_connection()

    async def _drop_connection(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                await connection.close()
            except (psycopg.Error, OSError):
                pass

    def _up(self) -> None:
        if self._down:
            logger.warning("the database is back: catching up with the changes of workspaces")
        self._down = False
