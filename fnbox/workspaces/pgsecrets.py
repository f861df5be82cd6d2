"""Workspace secrets in the shared database, so that a run on any instance reads the same ones.

The values stored are the Fernet tokens the file store keeps (fnbox/workspaces/secrets.py),
encrypted with this instance's key (FNBOX_SECRETS_KEY, or else its `secrets.key`). The key
never reaches the database: every instance needs the same one. An instance whose key
cannot decrypt what is stored refuses to start, and refuses to store a secret beside values
it could not read.

A set or a delete writes its row and takes a change number naming the workspace
(fnbox/workspaces/pgchanges.py); every instance's change feed then reads that workspace's
secrets again, so a run that starts after the answer, on any instance, uses them. Runs read
the values from memory, never from the database.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable
from typing import Any

from cryptography.fernet import InvalidToken

from fnbox.database import Database, DatabaseError, unavailable
from fnbox.sandboxes.errors import InternalError, NotFound
from fnbox.workspaces.document import check_workspace_name
from fnbox.workspaces.pgchanges import take_change
from fnbox.workspaces.secrets import KEY_FILENAME, MAX_PER_WORKSPACE, NAME, SecretStore, _iso, check_value, too_many

__all__ = ["SECRETS", "PgSecretStore", "SecretsKeyError", "copy_secrets"]

logger = logging.getLogger("fnbox")

#: The kind of change (fnbox_changes) that names a workspace whose secrets changed.
SECRETS = "secrets"
SAME_KEY = "every instance sharing the database needs the same FNBOX_SECRETS_KEY"

Stored = dict[str, dict[str, tuple[str, float]]]


class SecretsKeyError(DatabaseError):
    """This instance's key cannot decrypt the secrets the database holds: it must not start."""


class PgSecretStore(SecretStore):
    KEY_HINT = f"this instance's FNBOX_SECRETS_KEY is not the key they were stored with: {SAME_KEY}"

    def __init__(self, database: Database, data_dir: str | os.PathLike[str], *, keys: str | None = None) -> None:
        self.database = database
        super().__init__(data_dir, keys=keys)

    def _open(self) -> None:
        """Nothing yet: `load` reads the database once it is open and migrated."""

    def load(self) -> None:
        """Read every secret; SecretsKeyError if this instance's key cannot decrypt one of them."""
        with self.database.connection() as connection:
            stored = _grouped(connection.execute("SELECT workspace, name, value, updated FROM fnbox_secrets"))
        if stored:
            self._check_key(stored)
            if self.rotating:
                self.rotate()
                return
        with self._lock:
            self._stored = stored
            self._version += 1
            self._plain.clear()

    def reload(self, names: list[str]) -> None:
        """Read the secrets of these workspaces again (their change feed named them)."""
        with self.database.connection() as connection:
            stored = _grouped(
                connection.execute(
                    "SELECT workspace, name, value, updated FROM fnbox_secrets WHERE workspace = ANY(%s)", (names,)
                )
            )
        with self._lock:
            for workspace in names:
                self._replace(workspace, stored.get(workspace, {}))

    def set(self, workspace: str, name: str, value: Any) -> dict[str, Any]:
        check_value(workspace, name, value)
        token = self._cipher().encrypt(value.encode("utf-8", "surrogatepass")).decode()
        updated = time.time()
        with (
            unavailable(f"secret {name!r} of workspace {workspace!r} was not set"),
            self.database.connection() as connection,
            connection.transaction(),
        ):
            take_change(connection, SECRETS, workspace)  # the counter's lock: one change at a time
            stored = connection.execute("SELECT value FROM fnbox_secrets LIMIT 1").fetchone()
            if stored is not None and not self._decrypts(stored[0]):
                logger.error("a secret was not stored: %s", self.KEY_HINT)
                raise InternalError(
                    f"the secret was not stored: the database holds secrets this instance cannot decrypt; {SAME_KEY}",
                    details={"name": name},
                )
            items = _grouped(
                connection.execute(
                    "SELECT workspace, name, value, updated FROM fnbox_secrets WHERE workspace = %s", (workspace,)
                )
            ).get(workspace, {})
            if name not in items and len(items) >= MAX_PER_WORKSPACE:
                raise too_many(workspace)
            connection.execute(
                "INSERT INTO fnbox_secrets (workspace, name, value, updated) VALUES (%s, %s, %s, %s)"
                " ON CONFLICT (workspace, name) DO UPDATE SET value = excluded.value, updated = excluded.updated",
                (workspace, name, token, updated),
            )
        items[name] = (token, updated)
        with self._lock:
            self._replace(workspace, items)
        return {"name": name, "updated": _iso(updated)}

    def delete(self, workspace: str, name: str) -> None:
        check_workspace_name(workspace)
        if not NAME.fullmatch(name):  # no secret has such a name: never a query with it (NUL characters, say)
            raise NotFound(f"no secret {name!r} in workspace {workspace!r}", details={"name": name})
        with (
            unavailable(f"secret {name!r} of workspace {workspace!r} was not deleted"),
            self.database.connection() as connection,
            connection.transaction(),
        ):
            take_change(connection, SECRETS, workspace)
            gone = connection.execute(
                "DELETE FROM fnbox_secrets WHERE workspace = %s AND name = %s RETURNING name", (workspace, name)
            ).fetchone()
            if gone is None:  # the transaction rolls back: the change number is not taken
                raise NotFound(f"no secret {name!r} in workspace {workspace!r}", details={"name": name})
            connection.execute(  # remembered: copying a data directory again never brings it back
                "INSERT INTO fnbox_secrets_deleted (workspace, name) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                (workspace, name),
            )
            items = _grouped(
                connection.execute(
                    "SELECT workspace, name, value, updated FROM fnbox_secrets WHERE workspace = %s", (workspace,)
                )
            ).get(workspace, {})
        with self._lock:
            self._replace(workspace, items)

    def rotate(self) -> None:
        """Re-encrypt every stored value with the first key (instances with only the old key then stop reading them)."""
        cipher = self._cipher()
        with self.database.connection() as connection, connection.transaction():
            rows = connection.execute("SELECT workspace, name, value, updated FROM fnbox_secrets FOR UPDATE").fetchall()
            rotated = [(cipher.rotate(row[2].encode()).decode(), row[0], row[1]) for row in rows]
            with connection.cursor() as cursor:
                cursor.executemany("UPDATE fnbox_secrets SET value = %s WHERE workspace = %s AND name = %s", rotated)
        stored: Stored = {}
        for (token, workspace, name), row in zip(rotated, rows, strict=True):
            stored.setdefault(workspace, {})[name] = (token, float(row[3]))
        with self._lock:
            self._stored = stored
            self._version += 1
            self._plain.clear()

    def _check_key(self, stored: Stored) -> None:
        if not self._keys and not (self.root / KEY_FILENAME).exists():
            raise SecretsKeyError(
                f"the database holds the secrets of {len(stored)} workspaces and this instance has no key to "
                f"read them: set FNBOX_SECRETS_KEY to the key they were stored with ({SAME_KEY})"
            )
        unreadable = sorted(
            workspace for workspace, items in stored.items() if not all(self._decrypts(t) for t, _ in items.values())
        )
        if unreadable:
            shown = ", ".join(repr(name) for name in unreadable[:5]) + (", ..." if len(unreadable) > 5 else "")
            raise SecretsKeyError(
                f"FNBOX_SECRETS_KEY (or secrets.key) cannot decrypt the secrets the database holds for "
                f"{len(unreadable)} workspaces ({shown}): {SAME_KEY}, the one they were stored with"
            )

    def _decrypts(self, token: str) -> bool:
        try:
            self._cipher().decrypt(token.encode())
        except InvalidToken:
            return False
        return True


def copy_secrets(database: Database, stored: Stored) -> int:
    """Copy encrypted secrets (of a data directory) whose name the database never held; how many were copied.

    So copying the same directory again changes nothing the database did since: a secret
    deleted there stays deleted (a leaked key is not brought back, even if the directory's
    value changed since), and one changed there keeps its value. A secret new in the
    directory since, under a name its workspace never had in the database, is copied.
    """
    copied = 0
    for workspace, items in sorted(stored.items()):
        with database.connection() as connection, connection.transaction():
            known = {
                row[0]
                for row in connection.execute(
                    "SELECT name FROM fnbox_secrets WHERE workspace = %(w)s"
                    " UNION SELECT name FROM fnbox_secrets_deleted WHERE workspace = %(w)s",
                    {"w": workspace},
                )
            }
            missing = [(name, item) for name, item in sorted(items.items()) if name not in known]
            if not missing:
                continue
            take_change(connection, SECRETS, workspace)  # the counter's lock: a delete since is seen below
            for name, (token, updated) in missing:
                inserted = connection.execute(
                    "INSERT INTO fnbox_secrets (workspace, name, value, updated)"
                    " SELECT %(w)s, %(n)s, %(v)s, %(u)s WHERE NOT EXISTS"
                    " (SELECT 1 FROM fnbox_secrets_deleted WHERE workspace = %(w)s AND name = %(n)s)"
                    " ON CONFLICT (workspace, name) DO NOTHING RETURNING name",
                    {"w": workspace, "n": name, "v": token, "u": updated},
                ).fetchone()
                copied += inserted is not None
    return copied


def _grouped(rows: Iterable[tuple[Any, ...]]) -> Stored:
    stored: Stored = {}
    for workspace, name, token, updated in rows:
        stored.setdefault(workspace, {})[name] = (token, float(updated))
    return stored
