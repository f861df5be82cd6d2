"""Execution records: one row per run, kept in SQLite in the data directory.

A record follows a run through its life (accepted, running, then successful, failed
or dismissed) and survives restarts. The store is synchronous and guarded by a lock,
so the Runtime calls it through `asyncio.to_thread` (or through `recorder.Recorder`,
which batches the records of synchronous runs off the request path). WAL with
synchronous=NORMAL: a commit costs no fsync, and a power cut may lose the last
commits but never corrupts the file.

Listing is newest first with keyset pagination: the cursor is an opaque token for the
(created, id) of the last record of a page, so pages never repeat or skip a record,
whatever is written meanwhile.
"""

from __future__ import annotations

import base64
import binascii
import functools
import itertools
import json
import operator
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from fnbox.executions import rowjson
from fnbox.executions.bounds import MAX_CHAR_BYTES, RecordBounds, cap_row, prune_to_size, rows_bytes, storage_error
from fnbox.randomness import random_bytes
from fnbox.sandboxes.base import RunResult
from fnbox.sandboxes.errors import Dismissed, FnboxError, InvalidRequest, SandboxCrashed

__all__ = [
    "ENDED",
    "MAX_LIST_LIMIT",
    "MAX_PARAMETERS_SIZE",
    "Execution",
    "ExecutionStatus",
    "ExecutionStore",
    "ExecutionStoreError",
    "check_execution_id",
    "new_execution_id",
    "to_row",
]

MAX_PARAMETERS_SIZE = 64 * 1024
#: A record as the store writes it (see `to_row`).
Row = tuple[Any, ...]
MAX_LIST_LIMIT = 1000
# No id made only of dots: "/v2/executions/.." would be normalised away by clients.
_EXECUTION_ID = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}")


class ExecutionStatus(StrEnum):
    ACCEPTED = "accepted"
    RUNNING = "running"
    SUCCESSFUL = "successful"
    FAILED = "failed"
    DISMISSED = "dismissed"


ENDED = frozenset({ExecutionStatus.SUCCESSFUL, ExecutionStatus.FAILED, ExecutionStatus.DISMISSED})
_STATUSES = tuple(status.value for status in ExecutionStatus)
_ACTIVE = (ExecutionStatus.ACCEPTED.value, ExecutionStatus.RUNNING.value)
_ENDED = tuple(sorted(status.value for status in ENDED))


class ExecutionStoreError(Exception):
    """The execution database cannot be opened or set up (a startup failure, not a run's)."""


def new_execution_id() -> str:
    """32 hex digits: the time in ms, then 80 random bits (the layout of a UUIDv7).

    Ids that grow with time land at the end of the primary-key index: with random ids,
    each insert into a table of 100,000 records costs about four times as much.
    """
    # One hex() of the 16 bytes: formatting the time with "012x" costs more than the rest of the id.
    return ((time.time_ns() // 1_000_000).to_bytes(6, "big") + random_bytes(10)).hex()


def check_execution_id(value: Any) -> str:
    """Return a client-given id if it is safe in a URL path; raise InvalidRequest otherwise."""
    if not isinstance(value, str) or not _EXECUTION_ID.fullmatch(value):
        raise InvalidRequest(
            f"invalid execution id {value!r}: 1 to 64 letters, digits, '_', '-' or '.', not starting with '.'",
            details={"id": value if isinstance(value, str) else repr(value)},
        )
    return value


@dataclass(slots=True)
class Execution:
    """One run. Times are epoch seconds; `duration` is the run's own time in ms.

    Slots: a recorded run makes, holds until its batch is written, and frees one of these per call.

    `parameters` are kept as given in memory and capped (MAX_PARAMETERS_SIZE) when the
    record is stored or serialised, so a synchronous run pays nothing for the cap.
    """

    id: str
    workspace: str
    function: str
    version: str
    language: str
    parameters: Any = None
    status: ExecutionStatus = ExecutionStatus.ACCEPTED
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    result: Any = None
    logs: list[dict[str, Any]] = field(default_factory=list)
    duration: float | None = None
    error: dict[str, Any] | None = None
    #: The token that started it (access control lets a `run` token read only its own).
    owner: str | None = None

    @property
    def ended(self) -> bool:
        return self.status in ENDED

    def succeed(self, outcome: RunResult) -> None:
        self.status = ExecutionStatus.SUCCESSFUL
        self.result, self.logs, self.duration = outcome.result, outcome.logs, outcome.duration
        self.finished = time.time()

    def fail(self, error: FnboxError) -> None:
        """Keep the error as the run route answers it; its logs and duration go beside it."""
        self.status = ExecutionStatus.FAILED
        self.error = {"error": error.code, "message": error.message, "details": error.details}
        self.logs, self.duration = error.logs or self.logs, error.duration
        self.finished = time.time()

    def dismiss(self, reason: str) -> None:
        self.status = ExecutionStatus.DISMISSED
        self.error = Dismissed(reason).to_json()
        self.finished = time.time()

    @property
    def updated(self) -> float:
        return max(t for t in (self.created, self.started, self.finished) if t is not None)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "workspace": self.workspace,
            "function": self.function,
            "version": self.version,
            "language": self.language,
            "status": str(self.status),
            "parameters": json.loads(_parameters_text(self.parameters)),
            "result": self.result,
            "logs": self.logs,
            "duration": self.duration,
            "error": self.error,
            "created": _iso(self.created),
            "started": _iso(self.started),
            "finished": _iso(self.finished),
            "updated": _iso(self.updated),
        }


_COLUMNS = (
    "id", "workspace", "function", "version", "language", "status", "created", "started",
    "finished", "duration", "parameters", "result", "logs", "error", "owner",
)  # fmt: skip
_UPDATED = ("status", "started", "finished", "duration", "result", "logs", "error")
# Positional placeholders: binding named ones costs a third of a row's write.
_INSERT = f"INSERT INTO executions ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"
# An ended record is final: neither a late update nor an upsert changes it.
_NOT_ENDED = f"executions.status NOT IN {_ENDED!r}"
#: Bytes the write-ahead log is truncated to after a checkpoint.
WAL_SIZE_LIMIT = 16 * 1024 * 1024
#: Bytes per page of a new store.
PAGE_SIZE = 16 * 1024
#: Records per INSERT in `write_rows` (15 values each, far below SQLite's cap on values).
ROWS_PER_STATEMENT = 50


#: The columns last in a row that a run that succeeds leaves None (its error and its owner, with no access control).
_TAIL = 2
_tail = operator.itemgetter(*range(len(_COLUMNS) - _TAIL, len(_COLUMNS)))
_head = operator.itemgetter(*range(len(_COLUMNS) - _TAIL))
_NO_TAIL = (None,) * _TAIL


@functools.cache
def _upsert(rows: int, bare: bool = False) -> str:
    """The statement for `rows` rows; `bare` for rows given without their tail, which is all NULL."""
    marks = [*("?" * (len(_COLUMNS) - _TAIL)), *(["NULL"] * _TAIL if bare else "?" * _TAIL)]
    values = ", ".join([f"({', '.join(marks)})"] * rows)
    return (
        f"INSERT INTO executions ({', '.join(_COLUMNS)}) VALUES {values}"
        f" ON CONFLICT(id) DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in _UPDATED)} WHERE {_NOT_ENDED}"
    )


_UPDATE = f"UPDATE executions SET {', '.join(f'{c} = ?' for c in _UPDATED)} WHERE id = ? AND {_NOT_ENDED}"
_UPDATED_AT = tuple(_COLUMNS.index(c) for c in _UPDATED)
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM executions"


def _null(value: None) -> None:
    return None


# The sqlite3 module binds None through its adapter protocol: with no adapter registered for it,
# each None costs an AttributeError made and dropped inside the module, about a quarter of the
# binding of a record's row (whose error and owner are mostly None). This one changes nothing else.
sqlite3.register_adapter(type(None), _null)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS executions (
    id TEXT PRIMARY KEY,
    workspace TEXT NOT NULL,
    function TEXT NOT NULL,
    version TEXT NOT NULL,
    language TEXT NOT NULL,
    status TEXT NOT NULL,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    duration REAL,
    parameters TEXT NOT NULL,
    result TEXT,
    logs TEXT NOT NULL,
    error TEXT,
    owner TEXT
);
CREATE INDEX IF NOT EXISTS executions_by_created ON executions (created, id);
CREATE INDEX IF NOT EXISTS executions_by_workspace ON executions (workspace, created, id);
CREATE INDEX IF NOT EXISTS executions_by_function ON executions (function, created, id);
CREATE INDEX IF NOT EXISTS executions_by_status ON executions (status, created, id);
"""


class ExecutionStore:
    """The SQLite table of execution records; every method is blocking and thread-safe."""

    def __init__(self, path: str | os.PathLike[str], *, bounds: RecordBounds | None = None) -> None:
        self.path = Path(path)
        self.bounds = bounds or RecordBounds()
        self._written = 0  # bytes since the total was last checked against bounds.max_bytes
        self._lock = threading.Lock()
        try:
            self._db = _connect(self.path)
        except (OSError, sqlite3.Error) as exc:
            raise ExecutionStoreError(f"cannot open the execution store {self.path}: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def insert(self, execution: Execution) -> bool:
        """Add a new record; False if its id is taken (atomically: the id is the primary key)."""
        row = cap_row(to_row(execution), self.bounds.max_record_bytes)
        try:
            with self._lock:
                self._db.execute(_INSERT, row)
                self._wrote([row])
        except sqlite3.IntegrityError:
            return False
        except sqlite3.OperationalError as exc:
            raise storage_error(exc) from exc
        return True

    def update(self, execution: Execution) -> bool:
        """Write the fields a run changes; False if there is no such record or it has ended.

        An ended record is final, atomically: a run finishing after its cancel (or after
        `mark_interrupted`) cannot overwrite the `dismissed` (or `failed`) already stored.
        """
        row = cap_row(to_row(execution), self.bounds.max_record_bytes)
        with self._lock:
            cursor = self._db.execute(_UPDATE, (*(row[i] for i in _UPDATED_AT), execution.id))
            self._wrote([row])
        return cursor.rowcount == 1

    def write_many(self, executions: Iterable[Execution]) -> None:
        """Insert or update (unless ended) many records in one transaction.

        Their rows are made as they are written, a statement's worth at a time: a writer
        thread holds the GIL for one chunk of Python work, then lets go of it for the statement.
        """
        self.write_rows(map(to_row, executions))

    def write_rows(self, rows: Iterable[Row]) -> None:
        """`write_many` for rows made by `to_row` (beforehand, or as they are taken).

        Many rows per statement: SQLite lets go of the GIL once per statement, and a
        writer thread that takes it back once per row slows the event loop down.
        """
        rows = iter(rows)
        chunk, size = self._chunk(rows)
        if not chunk:
            return
        written = 0
        with self._lock:
            with _transaction(self._db):
                while chunk:
                    self._db.execute(*_statement(chunk))
                    written += size
                    chunk, size = self._chunk(rows)
            self._wrote_bytes(written)

    def _chunk(self, rows: Iterator[Row]) -> tuple[list[Row], int]:
        """The next statement's worth of rows, each cut to the record bound, and about how many bytes they take.

        Rows whose texts together are too short to pass the bound, however many bytes their
        characters take, are not looked at one by one.
        """
        chunk = list(itertools.islice(rows, ROWS_PER_STATEMENT))
        size = rows_bytes(chunk)
        limit = self.bounds.max_record_bytes
        if limit is not None and size * MAX_CHAR_BYTES > limit:
            chunk = [cap_row(row, limit) for row in chunk]
            size = rows_bytes(chunk)
        return chunk, size

    def _wrote(self, rows: Sequence[Row]) -> None:
        """Count what was written; past a share of `bounds.max_bytes`, delete the oldest ended records."""
        if self.bounds.prune_after is not None:
            self._wrote_bytes(rows_bytes(rows))

    def _wrote_bytes(self, size: int) -> None:
        """`_wrote` for rows of `size` bytes (see `bounds.rows_bytes`)."""
        limit = self.bounds.prune_after
        if limit is None or self.bounds.max_bytes is None:
            return
        self._written += size
        if self._written < limit:
            return
        try:
            with _transaction(self._db):
                prune_to_size(self._db, self.bounds.max_bytes, _ENDED)
        except sqlite3.Error:
            return  # a full disk, say: the next write tries again
        self._written = 0

    def get(self, execution_id: str) -> Execution | None:
        with self._lock:
            row = self._db.execute(f"{_SELECT} WHERE id = ?", (execution_id,)).fetchone()
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
        """One page, newest first, and the cursor of the next page (None on the last one).

        `workspaces` are GLOB patterns of which the workspace matches one; `owner` the token that started it.
        """
        if limit < 1:
            raise InvalidRequest(f"limit must be at least 1, not {limit}", details={"limit": limit})
        limit = min(limit, MAX_LIST_LIMIT)
        if status is not None and status not in _STATUSES:
            raise InvalidRequest(
                f"unknown status {status!r}: one of {', '.join(_STATUSES)}", details={"status": status}
            )
        clauses: list[str] = []
        values: list[Any] = []
        if workspaces:
            clauses.append(f"({' OR '.join(['workspace GLOB ?'] * len(workspaces))})")
            values.extend(workspaces)
        for column, value in (("workspace", workspace), ("function", function), ("status", status), ("owner", owner)):
            if value is not None:
                clauses.append(f"{column} = ?")
                values.append(value)
        if after is not None:
            clauses.append("(created, id) < (?, ?)")
            created, last_id = _decode_cursor(after)
            values += [created, last_id]
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        query = f"{_SELECT}{where} ORDER BY created DESC, id DESC LIMIT ?"
        with self._lock:
            rows = self._db.execute(query, (*values, limit + 1)).fetchall()
        items = [_execution(row) for row in rows[:limit]]
        return items, (_encode_cursor(items[-1]) if len(rows) > limit else None)

    def mark_interrupted(self, message: str) -> int:
        """At start: fail every record a previous process left accepted or running."""
        error = _dumps(SandboxCrashed(message).to_json())
        with self._lock:
            cursor = self._db.execute(
                "UPDATE executions SET status = ?, error = ?, finished = ? WHERE status IN (?, ?)",
                (ExecutionStatus.FAILED.value, error, time.time(), *_ACTIVE),
            )
        return cursor.rowcount

    def prune(self, max_count: int | None = None, max_age: float | None = None) -> int:
        """Delete ended records older than `max_age` seconds or past the newest `max_count`.

        Accepted and running records are never deleted; None disables a limit.
        """
        ended = f"status IN ({', '.join('?' * len(_ENDED))})"
        deleted = 0
        with self._lock, _transaction(self._db):
            if max_age is not None:
                cursor = self._db.execute(
                    f"DELETE FROM executions WHERE {ended} AND created < ?", (*_ENDED, time.time() - max_age)
                )
                deleted += cursor.rowcount
            if max_count is not None:
                deleted += self._prune_count(max(0, max_count))
        return deleted

    def _prune_count(self, keep: int) -> int:
        """Delete the ended records past the newest `keep` of them (inside the caller's transaction).

        Ranking the ended records alone costs a lookup of each one's status and a sort: about
        a tenth of a second at 100,000 records, on every prune. The index by time ranks all
        records without touching the table; the few active ones in the way are counted back.
        """
        ended = f"status IN ({', '.join('?' * len(_ENDED))})"
        if keep == 0:
            return self._db.execute(f"DELETE FROM executions WHERE {ended}", _ENDED).rowcount
        active = self._db.execute("SELECT created, id FROM executions WHERE status IN (?, ?)", _ACTIVE).fetchall()
        skipped = 0
        while True:
            # The record at rank `keep + skipped` of all: if exactly `skipped` active ones rank at or
            # above it, exactly `keep` ended ones do, and every ended record below it goes.
            cutoff = self._db.execute(
                "SELECT created, id FROM executions ORDER BY created DESC, id DESC LIMIT 1 OFFSET ?",
                (keep - 1 + skipped,),
            ).fetchone()
            if cutoff is None:
                return 0  # no more than `keep` ended records
            above = sum(1 for record in active if tuple(record) >= tuple(cutoff))
            if above == skipped:
                break
            skipped = above
        return self._db.execute(
            f"DELETE FROM executions WHERE (created, id) < (?, ?) AND {ended}", (*cutoff, *_ENDED)
        ).rowcount


def _connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Autocommit (isolation_level=None): transactions are explicit, see `_transaction`.
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    try:
        # Pages of 16 KB for a new store (an existing one keeps its own): a record's insert into the
        # table's five B-trees, and its deletion, cost about a tenth less than with 4 KB pages.
        db.execute(f"PRAGMA page_size = {PAGE_SIZE}")
        (mode,) = db.execute("PRAGMA journal_mode = WAL").fetchone()
        if mode != "wal":
            raise sqlite3.OperationalError(f"SQLite refused WAL mode (journal mode {mode!r})")
        db.execute("PRAGMA synchronous = NORMAL")
        db.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT}")  # the WAL shrinks back after a big batch
        db.execute("PRAGMA busy_timeout = 5000")
        # SQLite journals again the pages that each statement of a batch after its first changes (so that
        # one statement can be undone alone): in a temporary file, several times the records' own bytes
        # in writes; in memory, a copy. A query's temporary tables (the ids retention deletes) go there too.
        db.execute("PRAGMA temp_store = MEMORY")
        db.executescript(_SCHEMA)
        if "owner" not in {row[1] for row in db.execute("PRAGMA table_info(executions)")}:
            db.execute("ALTER TABLE executions ADD COLUMN owner TEXT")  # a store made before owners
    except BaseException:
        db.close()
        raise
    return db


def _statement(chunk: list[Row]) -> tuple[str, list[Any]]:
    """The upsert of `chunk` and its values; NULLs written in the statement where every row has them.

    The sqlite3 module binds a None through an adapter call, a few times the cost of binding
    a text: most rows end with two of them.
    """
    if all(map(_NO_TAIL.__eq__, map(_tail, chunk))):
        return _upsert(len(chunk), True), list(itertools.chain.from_iterable(map(_head, chunk)))
    return _upsert(len(chunk)), list(itertools.chain.from_iterable(chunk))


@contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:  # a failed COMMIT (disk full, say) leaves it open
            db.execute("ROLLBACK")
        raise


# json.dumps with options builds an encoder per call, half the cost of a row; rowjson skips that.
_dumps = rowjson.dumps


def _parameters_text(parameters: Any) -> str:
    """The parameters' JSON, or a small marker in place of anything over MAX_PARAMETERS_SIZE."""
    text = _dumps(parameters)
    if len(text) * MAX_CHAR_BYTES <= MAX_PARAMETERS_SIZE:  # short enough whatever its characters
        return text
    size = len(text.encode())
    return text if size <= MAX_PARAMETERS_SIZE else _dumps({"truncated": True, "size": size})


def to_row(e: Execution) -> Row:
    """The values of the table's columns, in order: what the store writes of a record."""
    logs, error = e.logs, e.error
    return (
        e.id, e.workspace, e.function, e.version, e.language, str(e.status), e.created, e.started,
        e.finished, e.duration, _parameters_text(e.parameters), _dumps(e.result),
        "[]" if logs == [] else _dumps(logs), None if error is None else _dumps(error), e.owner,
    )  # fmt: skip


def _execution(row: tuple[Any, ...]) -> Execution:
    values = dict(zip(_COLUMNS, row))
    for column in ("parameters", "result", "logs", "error"):
        if values[column] is not None:
            values[column] = json.loads(values[column])
    values["status"] = ExecutionStatus(values["status"])
    return Execution(**values)


def _iso(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    moment = datetime.fromtimestamp(seconds, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _encode_cursor(last: Execution) -> str:
    # json keeps a float's shortest exact repr, so the (created, id) key round-trips exactly.
    return base64.urlsafe_b64encode(json.dumps([last.created, last.id]).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[float, str]:
    try:
        created, execution_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if isinstance(created, (int, float)) and isinstance(execution_id, str):
            return float(created), execution_id
    except (ValueError, TypeError, binascii.Error):
        pass
    raise InvalidRequest(f"invalid cursor {cursor!r}: pass back one a listing gave", details={"after": cursor})
