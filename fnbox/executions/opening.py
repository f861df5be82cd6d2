"""Opening the execution records at start, whatever state the data directory is in.

The records are a convenience beside the workspaces; they must never keep fnbox from
serving them. A damaged database (`database disk image is malformed`, a file that is not
a database) is moved aside under a name with the time, and a new one is started; a data
directory fnbox cannot write to (read-only, full) gets records in a temporary folder for
this run only. Each case is logged as an error, naming the file.
"""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path

from fnbox.executions.bounds import RecordBounds
from fnbox.executions.records import ExecutionStore, ExecutionStoreError

__all__ = ["open_records"]

logger = logging.getLogger("fnbox")

#: SQLite's result codes for a file that is damaged or not a database at all.
_DAMAGED = {11, 26}
_COMPANIONS = ("", "-wal", "-shm", "-journal")


def open_records(path: Path, bounds: RecordBounds, interrupted: str) -> tuple[ExecutionStore, int]:
    """The store, and how many executions the last stop cut short (now marked failed with `interrupted`)."""
    try:
        return _open(path, bounds, interrupted)
    except (ExecutionStoreError, sqlite3.Error, OSError) as exc:
        failure: BaseException = exc
    if _damaged(failure) and path.exists():
        try:
            aside = _move_aside(path)
            logger.error(
                "the execution records %s are damaged (%s); moved aside to %s, and new ones started",
                path,
                _cause(failure),
                aside,
            )
            return _open(path, bounds, interrupted)
        except (ExecutionStoreError, sqlite3.Error, OSError) as exc:
            failure = exc
    folder = Path(tempfile.mkdtemp(prefix="fnbox-executions-"))
    logger.error(
        "cannot write the execution records %s (%s); fnbox serves on, with records kept in %s for this run only",
        path,
        _cause(failure),
        folder,
    )
    return _TemporaryStore(folder / path.name, bounds=bounds), 0


class _TemporaryStore(ExecutionStore):
    """Records in a folder of their own, removed when the store closes."""

    def close(self) -> None:
        super().close()
        shutil.rmtree(self.path.parent, ignore_errors=True)


def _open(path: Path, bounds: RecordBounds, interrupted: str) -> tuple[ExecutionStore, int]:
    store = ExecutionStore(path, bounds=bounds)
    try:
        return store, store.mark_interrupted(interrupted)
    except BaseException:
        store.close()
        raise


def _cause(exc: BaseException) -> BaseException:
    return exc.__cause__ if isinstance(exc, ExecutionStoreError) and exc.__cause__ is not None else exc


def _damaged(exc: BaseException) -> bool:
    cause = _cause(exc)
    return isinstance(cause, sqlite3.DatabaseError) and (getattr(cause, "sqlite_errorcode", 0) & 0xFF) in _DAMAGED


def _move_aside(path: Path) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    aside = path.with_name(f"{path.name}.damaged-{stamp}")
    for suffix in _COMPANIONS:
        source = Path(f"{path}{suffix}")
        if source.exists():
            os.replace(source, Path(f"{aside}{suffix}"))
    return aside
