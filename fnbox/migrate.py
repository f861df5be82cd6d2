"""`fnbox migrate --from-dir DIR`: copy a single machine's data directory into the shared database.

Workspaces are copied as new versions (one unchanged since an earlier copy is left as it
is, so the command can run again), and the execution records of `executions.sqlite3` are
upserted (an ended record in the database stays as it is). Secrets and access tokens
stay in the data directory: instances read them from there.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from fnbox.database import Database
from fnbox.executions.pgrecords import PgExecutionStore
from fnbox.executions.records import ExecutionStore, to_row
from fnbox.sandboxes.errors import FnboxError
from fnbox.workspaces.document import document_version, parse_workspace
from fnbox.workspaces.pgstore import PgStore
from fnbox.workspaces.runtime import EXECUTIONS_FILENAME
from fnbox.workspaces.store import FileStore, StoredDocumentError

__all__ = ["Migration", "migrate_directory"]

logger = logging.getLogger("fnbox")

#: Records read from SQLite and written to PostgreSQL at a time.
BATCH = 500


@dataclass
class Migration:
    copied: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # each with why
    records: int = 0

    def summary(self) -> str:
        lines = [
            f"{len(self.copied)} workspaces copied, {len(self.unchanged)} already there unchanged, "
            f"{self.records} execution records copied"
        ]
        lines += [f"skipped: {reason}" for reason in self.skipped]
        return "\n".join(lines)


def migrate_directory(directory: str | Path, database_url: str) -> Migration:
    folder = Path(directory)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such directory")
    database = Database(database_url, max_size=2)
    database.open()
    try:
        migration = Migration()
        _copy_workspaces(FileStore(folder), PgStore(database), migration)
        records = folder / EXECUTIONS_FILENAME
        if records.is_file():
            migration.records = _copy_records(ExecutionStore(records), PgExecutionStore(database))
        return migration
    finally:
        database.close()


def _copy_workspaces(source: FileStore, target: PgStore, migration: Migration) -> None:
    for name in source.names():
        try:
            document = source.load(name)
            if document is None:
                continue
            parse_workspace(name, document)
        except (StoredDocumentError, FnboxError) as exc:
            migration.skipped.append(f"workspace {name!r}: {getattr(exc, 'message', exc)}")
            continue
        current = target.load(name)
        if current is not None and document_version(current) == document_version(document):
            migration.unchanged.append(name)
            continue
        target.save(name, document)
        migration.copied.append(name)


def _copy_records(source: ExecutionStore, target: PgExecutionStore) -> int:
    copied, after = 0, None
    try:
        while True:
            items, after = source.list(limit=BATCH, after=after)
            target.write_rows([to_row(item) for item in items])
            copied += len(items)
            if after is None:
                return copied
    finally:
        source.close()
