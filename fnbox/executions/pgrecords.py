"""Execution records in PostgreSQL: the same store as records.ExecutionStore, shared by every instance.

The table has the SQLite table's columns, written from the same rows (`records.to_row`),
plus what the shared queue needs (fnbox/executions/pgqueue.py): which instance holds an
execution (`lease_owner`) until when (`lease_until`, the database's clock), a fencing
number (`fence`) raised by each claim, which every write of the holder must match, and a
cancel asked through another instance (`cancel_requested`).
"""

from __future__ import annotations

import builtins
import re
import time
from collections.abc import Iterable, Sequence
from typing import Any

import psycopg

from fnbox.database import Database, unavailable
from fnbox.executions.bounds import LOGS, RecordBounds, cap_row
from fnbox.executions.records import (
    _COLUMNS,
    _ENDED,
    _UPDATED,
    _UPDATED_AT,
    MAX_LIST_LIMIT,
    Execution,
    ExecutionStatus,
    Row,
    _decode_cursor,
    _dumps,
    _encode_cursor,
    _execution,
    to_row,
)
from fnbox.sandboxes.errors import InvalidRequest, SandboxCrashed

__all__ = ["PgExecutionStore", "glob_to_regex"]

_STATUSES = tuple(status.value for status in ExecutionStatus)
_NOT_ENDED = f"fnbox_executions.status NOT IN ({', '.join(repr(s) for s in _ENDED)})"
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM fnbox_executions"
_INSERT = f"INSERT INTO fnbox_executions ({', '.join(_COLUMNS)}) VALUES ({', '.join(['%s'] * len(_COLUMNS))})"
#: A batch of records goes through a table of the session's own, emptied at each commit.
_INCOMING = (
    "CREATE TEMP TABLE IF NOT EXISTS fnbox_incoming (LIKE fnbox_executions INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
)
_COPY = f"COPY fnbox_incoming ({', '.join(_COLUMNS)}) FROM STDIN"
_UPSERT_INCOMING = (
    f"INSERT INTO fnbox_executions ({', '.join(_COLUMNS)}) SELECT {', '.join(_COLUMNS)} FROM fnbox_incoming"
    f" ON CONFLICT (id) DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in _UPDATED)} WHERE {_NOT_ENDED}"
)
#: `fnbox migrate`'s copy of a batch: the database is the truth once instances share it. A record
#: whose id it lacks is inserted. One it holds changes only to take the end the directory recorded
#: since: an ended copy over a record neither ended nor ever claimed by an instance (fence 0), of
#: the same execution (clients may choose ids). Anything else stays as the database holds it.
#: A record running in the directory gets a lease that has run out: its instance stopped, so the
#: shared queue's sweep fails it as any stopped instance's run (with no lease it would stay
#: running, and hold one of the queue's places, for good). Counts (inserted, ended): the outer
#: query reads the table as it was before the statement, so a row written it does not find is new.
_MIGRATE_INCOMING = (
    f"WITH written AS (INSERT INTO fnbox_executions ({', '.join(_COLUMNS)}, lease_until)"
    f" SELECT {', '.join(_COLUMNS)}, CASE WHEN status = 'running' THEN 0 END FROM fnbox_incoming"
    f" ON CONFLICT (id) DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in _UPDATED)}"
    f" WHERE excluded.status IN ({', '.join(repr(s) for s in _ENDED)}) AND {_NOT_ENDED}"
    " AND fnbox_executions.fence = 0"
    " AND (fnbox_executions.workspace, fnbox_executions.function, fnbox_executions.created)"
    " = (excluded.workspace, excluded.function, excluded.created) RETURNING id)"
    " SELECT count(*) FILTER (WHERE held.id IS NULL), count(held.id)"
    " FROM written LEFT JOIN fnbox_executions AS held ON held.id = written.id"
)
_UPDATE = f"UPDATE fnbox_executions SET {', '.join(f'{c} = %s' for c in _UPDATED)} WHERE id = %s AND {_NOT_ENDED}"
#: The database's clock as epoch seconds: leases are compared on one clock, whatever the instances' clocks say.
NOW = "extract(epoch from clock_timestamp())"


def glob_to_regex(pattern: str) -> str:
    """A GLOB pattern (`*`, `?`, `[...]`) as an anchored POSIX regular expression."""
    parts, index = ["^"], 0
    while index < len(pattern):
        char = pattern[index]
        if char == "*":
            parts.append(".*")
        elif char == "?":
            parts.append(".")
        elif char == "[" and "]" in pattern[index + 2 :]:
            end = pattern.index("]", index + 2)
            body = pattern[index + 1 : end]
            body = "^" + body[1:] if body.startswith("^") else body
            parts.append("[" + body.replace("\\", "\\\\") + "]")
            index = end
        else:
            parts.append(re.escape(char))
        index += 1
    return "".join(parts) + "$"


class PgExecutionStore:
    """Blocking and thread-safe (a connection per call, from the pool), like ExecutionStore."""

    def __init__(self, database: Database, *, bounds: RecordBounds | None = None) -> None:
        self.database = database
        #: Bytes of result and logs one record keeps; the total is bounded by count and age, not bytes.
        self.bounds = RecordBounds(bounds.max_record_bytes if bounds else None)

    def _row(self, execution: Execution) -> Row:
        return cap_row(to_row(execution), self.bounds.max_record_bytes)

    def close(self) -> None:
        """The database is the Runtime's: it closes it."""

    def insert(self, execution: Execution) -> bool:
        with unavailable("the execution was not accepted"), self.database.connection() as connection:
            cursor = connection.execute(_INSERT + " ON CONFLICT (id) DO NOTHING", self._row(execution))
            return cursor.rowcount == 1

    def update(self, execution: Execution) -> bool:
        row = self._row(execution)
        with self.database.connection() as connection:
            cursor = connection.execute(_UPDATE, (*(row[i] for i in _UPDATED_AT), execution.id))
            return cursor.rowcount == 1

    def write_many(self, executions: Iterable[Execution]) -> None:
        self.write_rows([self._row(execution) for execution in executions])

    def write_rows(self, rows: Sequence[Row]) -> None:
        if rows:
            self._through_incoming(rows, _UPSERT_INCOMING)

    def migrate_rows(self, rows: Sequence[Row]) -> tuple[int, int]:
        """Copy another store's records (`fnbox migrate`), never undoing what changed in the database.

        Unlike `write_rows`, a record the database holds is changed only to give it the end
        its copy shows (see `_MIGRATE_INCOMING`). Returns how many were inserted and how many ended.
        """
        counts = self._through_incoming(rows, _MIGRATE_INCOMING) if rows else None
        return (int(counts[0]), int(counts[1])) if counts else (0, 0)

    def _through_incoming(self, rows: Sequence[Row], statement: str) -> tuple[Any, ...] | None:
        """Load `rows` into the session's incoming table, then run `statement` over it; its first row, if any."""
        # One id once (the last wins, as the recorder's queue does): one statement writes them all.
        rows = list({row[0]: cap_row(row, self.bounds.max_record_bytes) for row in rows}.values())
        with self.database.connection() as connection, connection.transaction(), connection.cursor() as cursor:
            # COPY then one INSERT: a third of the client's CPU and two thirds of the server's of a statement per row.
            cursor.execute(_INCOMING)
            with cursor.copy(_COPY) as copy:
                for row in rows:
                    copy.write_row(row)
            cursor.execute(statement)
            return cursor.fetchone() if cursor.description is not None else None

    def get(self, execution_id: str) -> Execution | None:
        if "\x00" in execution_id:
            return None  # no id holds one (check_execution_id), and PostgreSQL text cannot
        with unavailable("the execution was not read"), self.database.connection() as connection:
            row = connection.execute(f"{_SELECT} WHERE id = %s", (execution_id,)).fetchone()
        return None if row is None else _execution(row)

    def list(
        self,
        *,
        workspace: str | None = None,
        function: str | None = None,
        status: str | None = None,
        limit: int = 50,
        after: str | None = None,
        workspaces: Sequence[str] | None = None,
        owner: str | None = None,
    ) -> tuple[list[Execution], str | None]:
        if limit < 1:
            raise InvalidRequest(f"limit must be at least 1, not {limit}", details={"limit": limit})
        limit = min(limit, MAX_LIST_LIMIT)
        if status is not None and status not in _STATUSES:
            raise InvalidRequest(
                f"unknown status {status!r}: one of {', '.join(_STATUSES)}", details={"status": status}
            )
        if any("\x00" in value for value in (workspace, function, owner, *(workspaces or ())) if value):
            return [], None  # no stored name holds a NUL character, and PostgreSQL text cannot either
        clauses: list[str] = []
        values: list[Any] = []
        if workspaces:
            clauses.append(f"({' OR '.join(['workspace ~ %s'] * len(workspaces))})")
            values.extend(glob_to_regex(pattern) for pattern in workspaces)
        for column, value in (("workspace", workspace), ("function", function), ("status", status), ("owner", owner)):
            if value is not None:
                clauses.append(f"{column} = %s")
                values.append(value)
        if after is not None:
            clauses.append("(created, id) < (%s, %s)")
            values += list(_decode_cursor(after))
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        query = f"{_SELECT}{where} ORDER BY created DESC, id DESC LIMIT %s"
        with unavailable("the executions were not listed"), self.database.connection() as connection:
            rows = connection.execute(query, (*values, limit + 1)).fetchall()
        items = [_execution(row) for row in rows[:limit]]
        return items, (_encode_cursor(items[-1]) if len(rows) > limit else None)

    def mark_interrupted(self, message: str) -> int:
        """Fail the executions whose instance stopped: their lease ran out (other instances' go on)."""
        return len(self.expire_leases(message))

    def expire_leases(self, message: str) -> builtins.list[str]:
        error = _dumps(SandboxCrashed(message).to_json())
        with self.database.connection() as connection:
            rows = connection.execute(
                f"UPDATE fnbox_executions SET status = 'failed', error = %s, finished = {NOW}, lease_owner = NULL"
                f" WHERE status = 'running' AND lease_until < {NOW} RETURNING id",
                (error,),
            ).fetchall()
        return [row[0] for row in rows]

    def prune(self, max_count: int | None = None, max_age: float | None = None) -> int:
        ended = f"status IN ({', '.join(['%s'] * len(_ENDED))})"
        deleted = 0
        with self.database.connection() as connection, connection.transaction():
            if max_age is not None:
                cursor = connection.execute(
                    f"DELETE FROM fnbox_executions WHERE {ended} AND created < %s",
                    (*_ENDED, time.time() - max_age),
                )
                deleted += cursor.rowcount
            if max_count is not None:
                cursor = connection.execute(
                    f"DELETE FROM fnbox_executions WHERE id IN (SELECT id FROM fnbox_executions WHERE {ended}"
                    " ORDER BY created DESC, id DESC OFFSET %s)",
                    (*_ENDED, max_count),
                )
                deleted += cursor.rowcount
        return deleted

    # ---- the shared queue (fnbox/executions/pgqueue.py) ------------------------------------

    def accept(self, execution: Execution, max_queue: int) -> int | None:
        """Insert an accepted execution unless `max_queue` wait or run already, all instances together.

        None if it was inserted; else how many wait or run (max_queue or more), or -1 if its id is
        taken. Submits take turns on an advisory lock, so two instances never both take the last place.
        """
        accepting = unavailable("the execution was not accepted")
        with accepting, self.database.connection() as connection, connection.transaction():
            connection.execute("SELECT pg_advisory_xact_lock(%s, 0)", (QUEUE_LOCK,))
            row = connection.execute(
                "SELECT count(*) FROM fnbox_executions WHERE status IN ('accepted', 'running')"
            ).fetchone()
            active = int(row[0]) if row else 0
            if active >= max_queue:
                return active
            cursor = connection.execute(_INSERT + " ON CONFLICT (id) DO NOTHING", self._row(execution))
            if cursor.rowcount != 1:
                return -1
            connection.execute(f"NOTIFY {QUEUE_CHANNEL}")  # delivered at commit: other instances claim at once
            return None

    def claim(self, owner: str, limit: int, per_workspace: int, lease: float) -> builtins.list[tuple[Execution, int]]:
        """Take up to `limit` accepted executions, oldest first, keeping `per_workspace` across instances.

        The rows are locked with SKIP LOCKED, so instances claiming at once take different
        ones; a workspace's count of running executions is read under a transaction-level
        advisory lock on its name, so two instances never both take its last free turn.
        """
        claimed: builtins.list[tuple[Execution, int]] = []
        with self.database.connection() as connection, connection.transaction():
            candidates = connection.execute(
                "SELECT id, workspace FROM fnbox_executions WHERE status = 'accepted'"
                " AND workspace NOT IN (SELECT workspace FROM fnbox_executions WHERE status = 'running'"
                " GROUP BY workspace HAVING count(*) >= %s)"
                " ORDER BY created, id LIMIT %s FOR UPDATE SKIP LOCKED",
                (per_workspace, limit * 4),
            ).fetchall()
            turns: dict[str, int] = {}
            for execution_id, workspace in candidates:
                if len(claimed) >= limit:
                    break
                if workspace not in turns:
                    locked = connection.execute(
                        "SELECT pg_try_advisory_xact_lock(%s, hashtext(%s))", (QUEUE_LOCK, workspace)
                    ).fetchone()
                    if not (locked and locked[0]):
                        turns[workspace] = 0  # another instance is claiming for it now: next round
                        continue
                    running = connection.execute(
                        "SELECT count(*) FROM fnbox_executions WHERE workspace = %s AND status = 'running'",
                        (workspace,),
                    ).fetchone()
                    turns[workspace] = per_workspace - (int(running[0]) if running else 0)
                if turns[workspace] <= 0:
                    continue
                row = connection.execute(
                    f"UPDATE fnbox_executions SET status = 'running', started = {NOW}, lease_owner = %s,"
                    f" lease_until = {NOW} + %s, fence = fence + 1 WHERE id = %s"
                    f" RETURNING {', '.join(_COLUMNS)}, fence",
                    (owner, lease, execution_id),
                ).fetchone()
                if row is not None:
                    turns[workspace] -= 1
                    claimed.append((_execution(row[:-1]), int(row[-1])))
        return claimed

    def renew(self, owner: str, held: Sequence[tuple[Execution, int, bool]], lease: float) -> dict[str, bool]:
        """Extend the leases this instance holds, writing the logs so far where asked.

        `held`: (execution, its fence, whether to write its logs). Returns, for each execution still held, whether
        a cancel was asked for it; one missing from the answer was taken away (its lease ran out).
        """
        answer: dict[str, bool] = {}
        if not held:
            return answer
        with self.database.connection() as connection, connection.transaction():
            for execution, fence, write_logs in held:
                execution_id = execution.id
                logs = self._row(execution)[LOGS] if write_logs else None
                row = connection.execute(
                    f"UPDATE fnbox_executions SET lease_until = {NOW} + %s, logs = coalesce(%s, logs)"
                    " WHERE id = %s AND fence = %s AND lease_owner = %s AND status = 'running'"
                    " RETURNING cancel_requested",
                    (lease, logs, execution_id, fence, owner),
                ).fetchone()
                if row is not None:
                    answer[execution_id] = bool(row[0])
        return answer

    def finish(self, execution: Execution, owner: str, fence: int) -> bool:
        """Write an execution's end, only if this instance still holds it (a late write is fenced off)."""
        row = self._row(execution)
        with self.database.connection() as connection:
            cursor = connection.execute(
                f"UPDATE fnbox_executions SET {', '.join(f'{c} = %s' for c in _UPDATED)}, version = %s,"
                " lease_owner = NULL WHERE id = %s AND fence = %s AND lease_owner = %s AND status = 'running'",
                (*(row[i] for i in _UPDATED_AT), execution.version, execution.id, fence, owner),
            )
            return cursor.rowcount == 1

    def cancel_waiting(self, execution_id: str, message: str) -> Execution | None:
        """Dismiss an execution no instance has claimed yet; None if it is not waiting."""
        error = _dumps({"error": "Dismissed", "message": message, "details": {}})
        with unavailable("the execution was not cancelled"), self.database.connection() as connection:
            row = connection.execute(
                f"UPDATE fnbox_executions SET status = 'dismissed', error = %s, finished = {NOW}"
                f" WHERE id = %s AND status = 'accepted' RETURNING {', '.join(_COLUMNS)}",
                (error, execution_id),
            ).fetchone()
        return None if row is None else _execution(row)

    def ask_cancel(self, execution_id: str) -> bool:
        """Ask the instance running an execution to cancel it; False if it is not running."""
        with unavailable("the execution was not cancelled"), self.database.connection() as connection:
            cursor = connection.execute(
                "UPDATE fnbox_executions SET cancel_requested = true WHERE id = %s AND status = 'running'",
                (execution_id,),
            )
            return cursor.rowcount == 1


#: The channel on which an accepted execution wakes every instance's claimer (polling remains the truth).
QUEUE_CHANNEL = "fnbox_queue"
#: pg_try_advisory_xact_lock's first key while claiming for a workspace (its name's hash is the second).
QUEUE_LOCK = 0x666E62


def is_unavailable(exc: BaseException) -> bool:
    return isinstance(exc, psycopg.OperationalError)
