"""`fnbox migrate --from-dir DIR`: copy a single machine's data directory into the shared database.

The command can run again. A workspace is copied only under a name the database never held
(fnbox/workspaces/pgstore.py keeps deletions as versions). An execution record of
`executions.sqlite3` is copied under an id the database does not hold; one it holds changes
only to take the end the directory recorded since (an ended copy over a record neither ended
nor ever claimed by an instance there), so an execution claimed there, or ended there, stays
as the database holds it (a stale `accepted` copy would have it run again). A record copied
while running (its instance stopped) gets a lease that has run out, which the instances' sweep
fails as any stopped instance's run. Secrets are copied as they are stored, still encrypted
(the key is never read here: every instance needs it), and access tokens as their hashes;
either is copied only when the database never held it (by name in its workspace, by id). So a
workspace or a secret deleted, or a token revoked, in the database is never brought back, a
workspace or a secret changed there keeps its version or value (the directory's changes since
are not copied either: the summary names such workspaces), and one new in the directory since
is copied.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from fnbox.database import Database
from fnbox.executions.pgrecords import PgExecutionStore
from fnbox.executions.records import ExecutionStore, to_row
from fnbox.sandboxes.errors import FnboxError
from fnbox.server.pgtokens import copy_tokens
from fnbox.server.tokens import stored_tokens
from fnbox.workspaces.document import document_version, parse_workspace
from fnbox.workspaces.pgsecrets import copy_secrets
from fnbox.workspaces.pgstore import PgStore
from fnbox.workspaces.runtime import EXECUTIONS_FILENAME
from fnbox.workspaces.secrets import KEY_FILENAME, stored_secrets
from fnbox.workspaces.store import FileStore, StoredDocumentError

__all__ = ["Migration", "migrate_directory"]

logger = logging.getLogger("fnbox")

#: Records read from SQLite and written to PostgreSQL at a time.
BATCH = 500


@dataclass
class Migration:
    copied: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    #: Workspaces the database holds in another version, or deleted: the database's state stands.
    kept: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # each with why
    #: Execution records under an id the database did not hold.
    records: int = 0
    #: Execution records the database held, not ended, given the end the directory recorded since.
    records_ended: int = 0
    #: Execution records the database holds as they stand there (ended, claimed, or as the directory's copy).
    records_kept: int = 0
    secrets: int = 0
    tokens: int = 0
    #: The data directory's own key file, when it encrypted the secrets copied.
    key_file: Path | None = None

    def summary(self) -> str:
        lines = [
            f"{len(self.copied)} workspaces copied, {len(self.unchanged)} already there unchanged, "
            f"{self.records} execution records copied, {self.secrets} secrets copied, {self.tokens} tokens copied"
        ]
        if self.kept:
            names = ", ".join(repr(name) for name in self.kept)
            lines.append(f"not copied (the database holds another version, or deleted them): workspaces {names}")
        if self.records_ended or self.records_kept:
            lines.append(
                f"execution records already in the database: {self.records_ended} given the end the directory "
                f"recorded since, {self.records_kept} kept as the database holds them"
            )
        lines += [f"skipped: {reason}" for reason in self.skipped]
        if self.secrets:
            key = f"the key in {self.key_file}" if self.key_file else "the FNBOX_SECRETS_KEY this directory used"
            lines.append(f"the secrets stay encrypted with {key}: give every instance FNBOX_SECRETS_KEY set to it")
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
            _copy_records(ExecutionStore(records), PgExecutionStore(database), migration)
        migration.secrets = copy_secrets(database, stored_secrets(folder))
        migration.tokens = copy_tokens(database, stored_tokens(folder))
        if (folder / KEY_FILENAME).is_file():
            migration.key_file = folder / KEY_FILENAME
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
        if target.copy(name, document):
            migration.copied.append(name)
        elif target.versions(name)[-1][1] == document_version(document):
            migration.unchanged.append(name)
        else:
            migration.kept.append(name)


def _copy_records(source: ExecutionStore, target: PgExecutionStore, migration: Migration) -> None:
    after = None
    try:
        while True:
            items, after = source.list(limit=BATCH, after=after)
            inserted, ended = target.migrate_rows([to_row(item) for item in items])
            migration.records += inserted
            migration.records_ended += ended
            migration.records_kept += len(items) - inserted - ended
            if after is None:
                return
    finally:
        source.close()
