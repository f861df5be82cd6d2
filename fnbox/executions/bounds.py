"""Byte bounds on execution records: one record, and the whole database.

A tenant controls how big a run's result and logs are; without a bound in bytes, a few
runs returning megabytes fill the disk that every tenant's workspaces live on. So a
record's stored result and logs are cut to `max_record_bytes` together (the caller of a
synchronous run still gets the whole result; only the record is cut), and ended records
go, oldest first, once the database holds more than `max_bytes`.

A cut result is stored as `{"truncated": true, "size": N}` (as oversized parameters
are); cut logs keep their first entries and end with a `warn` entry saying how many
entries and bytes there were.
"""

from __future__ import annotations

import itertools
import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fnbox.sandboxes.errors import InsufficientStorage

__all__ = [
    "MAX_CHAR_BYTES",
    "RecordBounds",
    "cap_row",
    "prune_to_size",
    "row_bytes",
    "rows_bytes",
    "storage_error",
    "used_bytes",
]

#: Where the result and the logs sit in a row (see records.to_row).
RESULT, LOGS = 11, 12
#: Bytes kept for the marker entry that ends cut logs.
_MARKER_ROOM = 256
#: A UTF-8 character takes at most this many bytes: a text this short needs no encoding to measure.
MAX_CHAR_BYTES = 4
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


@dataclass(frozen=True)
class RecordBounds:
    """The two caps, in bytes; None leaves one off."""

    max_record_bytes: int | None = None
    max_bytes: int | None = None

    @property
    def prune_after(self) -> int | None:
        """Bytes written between two checks of the total: a small share of it, so it overshoots little."""
        return None if self.max_bytes is None else max(64 * 1024, self.max_bytes // 32)


def _size(text: str | None) -> int:
    if text is None:
        return 0
    return len(text) if text.isascii() else len(text.encode())


def row_bytes(row: tuple[Any, ...]) -> int:
    """About how many bytes a row takes (its texts counted in characters)."""
    return sum(len(value) for value in row if isinstance(value, str)) + 8 * len(row)


def rows_bytes(rows: Sequence[tuple[Any, ...]]) -> int:
    """The sum of `row_bytes` over `rows`, counted in C rather than row by row in Python."""
    return sum(map(len, filter(_is_text, itertools.chain.from_iterable(rows)))) + 8 * sum(map(len, rows))


_is_text = str.__instancecheck__


#: SQLite's primary result codes for a file system that refuses writes.
_SQLITE_READONLY, _SQLITE_FULL = 8, 13


def storage_error(exc: sqlite3.Error) -> Exception:
    """InsufficientStorage for a full or read-only database; any other error as it is."""
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
    if code == _SQLITE_FULL:
        return InsufficientStorage(
            "the execution could not be recorded: the data directory's file system is full",
            details={"reason": "full"},
        )
    if code == _SQLITE_READONLY:
        return InsufficientStorage(
            "the execution could not be recorded: the data directory is read-only", details={"reason": "read-only"}
        )
    return exc


def cap_row(row: tuple[Any, ...], max_record_bytes: int | None) -> tuple[Any, ...]:
    """The row with its result and logs cut to `max_record_bytes` together, if they pass it."""
    if max_record_bytes is None:
        return row
    result, logs = row[RESULT], row[LOGS]
    if (len(result) + len(logs)) * MAX_CHAR_BYTES <= max_record_bytes:
        return row
    result_size, logs_size = _size(result), _size(logs)
    if result_size + logs_size <= max_record_bytes:
        return row
    # The result gets what the logs leave, and at least half the record.
    if result_size > max_record_bytes - min(logs_size, max_record_bytes // 2):
        result = _dumps({"truncated": True, "size": result_size})
    room = max_record_bytes - _size(result)
    if logs_size > room:
        logs = _cut_logs(logs, logs_size, room)
    return (*row[:RESULT], result, logs, *row[LOGS + 1 :])


def _cut_logs(text: str, size: int, room: int) -> str:
    entries = json.loads(text)
    kept: list[Any] = []
    used = 2 + _MARKER_ROOM
    for entry in entries:
        entry_size = _size(_dumps(entry)) + 1
        if used + entry_size > room:
            break
        kept.append(entry)
        used += entry_size
    last_time = kept[-1].get("time", 0) if kept and isinstance(kept[-1], dict) else 0
    kept.append(
        {
            "level": "warn",
            "message": f"logs cut to fit the record: {len(kept)} of {len(entries)} entries kept ({size} bytes in all)",
            "time": last_time,
        }
    )
    return _dumps(kept)


def used_bytes(db: sqlite3.Connection) -> int:
    """Bytes of the database's pages that hold data (free pages are reused, not counted)."""
    (pages,) = db.execute("PRAGMA page_count").fetchone()
    (free,) = db.execute("PRAGMA freelist_count").fetchone()
    (page_size,) = db.execute("PRAGMA page_size").fetchone()
    return int((pages - free) * page_size)


def prune_to_size(db: sqlite3.Connection, max_bytes: int, ended: tuple[str, ...]) -> int:
    """Delete ended records, oldest first, until the data fits in `max_bytes`; return how many.

    Runs inside the caller's transaction. Each round deletes about as many records as the
    excess holds at the average record size, so a few rounds suffice.
    """
    deleted = 0
    marks = ", ".join("?" * len(ended))
    for _ in range(64):
        used = used_bytes(db)
        if used <= max_bytes:
            break
        (count,) = db.execute("SELECT count(*) FROM executions").fetchone()
        if not count:
            break
        average = max(1, used // count)
        batch = max(1, min(count, (used - max_bytes) // average + 1))
        cursor = db.execute(
            f"DELETE FROM executions WHERE id IN (SELECT id FROM executions WHERE status IN ({marks})"
            " ORDER BY created, id LIMIT ?)",
            (*ended, batch),
        )
        if cursor.rowcount <= 0:
            break
        deleted += cursor.rowcount
    return deleted
