"""The PostgreSQL store: every version of every workspace, for several instances.

A save appends an immutable row (the document's YAML text, as the file store writes it,
and its content hash) and points the workspace's head at it; a delete appends a row with
no document and removes the head. Each change takes the next number of one counter,
whose row lock serialises writers: change numbers follow commit order, which is what
lets every instance follow the changes (fnbox/workspaces/changes.py) without missing one.
Since a deletion is kept as a version, the store knows every name it ever held: a copy
(of a data directory, by fnbox migrate) is saved only under a name it never held.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import yaml

from fnbox.database import Database, unavailable
from fnbox.sandboxes.errors import InvalidRequest
from fnbox.workspaces import yaml_text
from fnbox.workspaces.document import document_version
from fnbox.workspaces.store import StoredDocumentError
from fnbox.workspaces.stores import check_expected

__all__ = ["PgStore", "decode"]

#: The channel that tells every instance a workspace changed (fnbox/workspaces/changes.py).
CHANGES_CHANNEL = "fnbox_changes"
NEXT_CHANGE = "UPDATE fnbox_counters SET value = value + 1 WHERE name = 'workspace_changes' RETURNING value"
HEAD = "SELECT v.version FROM fnbox_workspaces w JOIN fnbox_workspace_versions v ON v.seq = w.seq WHERE w.name = %s"


def decode(name: str, text: str) -> dict[str, Any]:
    """A stored document's YAML text back to the document."""
    try:
        document = yaml.load(text, Loader=yaml_text.Loader)
    except yaml.YAMLError as exc:
        raise StoredDocumentError(f"workspace {name!r} in the database: not valid YAML: {exc}") from exc
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise StoredDocumentError(f"workspace {name!r} in the database: the document is not a mapping")
    return document


class PgStore:
    def __init__(self, database: Database) -> None:
        self.database = database

    def names(self) -> list[str]:
        with unavailable("the workspaces were not listed"), self.database.connection() as connection:
            return [row[0] for row in connection.execute("SELECT name FROM fnbox_workspaces ORDER BY name")]

    def load(self, name: str) -> dict[str, Any] | None:
        with unavailable(f"workspace {name!r} was not read"), self.database.connection() as connection:
            row = connection.execute(
                "SELECT v.document FROM fnbox_workspaces w JOIN fnbox_workspace_versions v ON v.seq = w.seq"
                " WHERE w.name = %s",
                (name,),
            ).fetchone()
        return None if row is None else decode(name, row[0])

    def save(self, name: str, document: dict[str, Any], *, expected: str | None = None) -> int:
        text = _text(document)
        with unavailable(f"workspace {name!r} was not saved"), self._changing(name, expected) as (connection, seq, _):
            _write(connection, seq, name, document, text)
        return seq

    def copy(self, name: str, document: dict[str, Any]) -> bool:
        """Save a workspace under a name the database never held; False, and nothing saved, if it held it.

        A deletion is a version too, so copying a data directory again (fnbox migrate) never
        brings back a workspace deleted in the database since, nor replaces one changed there.
        """
        text = _text(document)
        with unavailable(f"workspace {name!r} was not copied"):
            if self._held(name):  # most are when copying again: they take no change number
                return False
            with self._changing(name, None) as (connection, seq, _):
                if _held(connection, name):  # saved or deleted since the look above: seen under the counter's lock
                    return False  # the change number stays unused: readers skip such gaps
                _write(connection, seq, name, document, text)
        return True

    def delete(self, name: str, *, expected: str | None = None) -> bool:
        with unavailable(f"workspace {name!r} was not deleted"), self._changing(name, expected) as changing:
            connection, seq, current = changing
            if current is None:
                return False  # the change number stays unused: readers skip such gaps
            connection.execute("INSERT INTO fnbox_workspace_versions (seq, name) VALUES (%s, %s)", (seq, name))
            connection.execute("DELETE FROM fnbox_workspaces WHERE name = %s", (name,))
            return True

    def versions(self, name: str) -> list[tuple[int, str | None]]:
        """Every change of a workspace, oldest first: (its number, the version or None for a deletion)."""
        with self.database.connection() as connection:
            return [
                (row[0], row[1])
                for row in connection.execute(
                    "SELECT seq, version FROM fnbox_workspace_versions WHERE name = %s ORDER BY seq", (name,)
                )
            ]

    def _held(self, name: str) -> bool:
        with self.database.connection() as connection:
            return _held(connection, name)

    @contextmanager
    def _changing(self, name: str, expected: str | None) -> Iterator[tuple[psycopg.Connection[Any], int, str | None]]:
        """A transaction holding the next change number, the stored version checked against `expected`."""
        with self.database.connection() as connection, connection.transaction():
            seq = _next_change(connection)  # the counter's row lock: one change at a time, in commit order
            current = _head(connection, name)
            check_expected(name, current, expected)
            yield connection, seq, current
            connection.execute(f"NOTIFY {CHANGES_CHANNEL}")  # delivered at commit; a speed-up only


def _next_change(connection: psycopg.Connection[Any]) -> int:
    row = connection.execute(NEXT_CHANGE).fetchone()
    assert row is not None
    return int(row[0])


def _head(connection: psycopg.Connection[Any], name: str) -> str | None:
    row = connection.execute(HEAD, (name,)).fetchone()
    return None if row is None else str(row[0])


def _held(connection: psycopg.Connection[Any], name: str) -> bool:
    """Whether the database ever had a version of this workspace, a deletion included."""
    return (
        connection.execute("SELECT 1 FROM fnbox_workspace_versions WHERE name = %s LIMIT 1", (name,)).fetchone()
        is not None
    )


def _text(document: dict[str, Any]) -> str:
    try:
        return yaml_text.dump(document)
    except yaml.YAMLError as exc:
        raise InvalidRequest(f"the document cannot be stored: {exc}") from exc


def _write(connection: psycopg.Connection[Any], seq: int, name: str, document: dict[str, Any], text: str) -> None:
    """The new version `seq` of a workspace, and its head."""
    connection.execute(
        "INSERT INTO fnbox_workspace_versions (seq, name, version, document) VALUES (%s, %s, %s, %s)",
        (seq, name, document_version(document), text),
    )
    connection.execute(
        "INSERT INTO fnbox_workspaces (name, seq) VALUES (%s, %s) ON CONFLICT (name) DO UPDATE SET seq = excluded.seq",
        (name, seq),
    )
