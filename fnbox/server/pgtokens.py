"""Access tokens in the shared database: made, listed and revoked through any instance.

The database keeps what `tokens.json` keeps on a single machine: each token's id, scopes,
workspaces, times and the SHA-256 of the token, never the token. Each instance holds the
table in memory and judges requests from it, with no query per request: a creation or a
revocation takes a change number naming the token's id (fnbox/workspaces/pgchanges.py),
and before a request is judged its instance catches up with the change feed, as before a
run. So a token made through one instance works on every other at once, and one revoked
is refused everywhere from the next request after the revocation was answered.

The admin token (FNBOX_ADMIN_TOKEN) stays a setting of each instance and is never stored;
failed attempts are counted per instance.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from fnbox.database import Database, unavailable
from fnbox.server.tokens import TokenRecord, TokenStore, is_token_id, new_token, no_token
from fnbox.workspaces.pgchanges import take_change
from fnbox.workspaces.runtime import Runtime

__all__ = ["KIND", "PgTokenStore", "copy_tokens", "open_tokens"]

#: The kind of change (fnbox_changes) that names a token made or revoked.
KIND = "tokens"
COLUMNS = "id, hash, scopes, workspaces, created, expires"


class PgTokenStore(TokenStore):
    shared = True

    def __init__(
        self,
        database: Database,
        data_dir: str | os.PathLike[str],
        *,
        admin_token: str | None = None,
        refresh: Callable[[], Awaitable[None]],
        publish: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.database = database
        self._catch_up = refresh
        self._publish = publish or refresh
        super().__init__(data_dir, admin_token=admin_token)

    def _open(self) -> None:
        """Nothing yet: `load` reads the database once it is open and migrated."""

    async def refresh(self) -> None:
        await self._catch_up()

    async def publish(self) -> None:
        await self._publish()

    def load(self) -> None:
        with self.database.connection() as connection:
            records = _records(connection.execute(f"SELECT {COLUMNS} FROM fnbox_tokens"))
        with self._lock:
            self._records = {record.id: record for record in records}

    def reload(self, names: list[str]) -> None:
        """Read these tokens again (made, or revoked: then gone) as the change feed named them."""
        with self.database.connection() as connection:
            found = {
                record.id: record
                for record in _records(
                    connection.execute(f"SELECT {COLUMNS} FROM fnbox_tokens WHERE id = ANY(%s)", (names,))
                )
            }
        with self._lock:
            for token_id in names:
                record = found.get(token_id)
                if record is None:
                    self._records.pop(token_id, None)
                else:
                    self._records[token_id] = record

    def create(self, body: Any) -> dict[str, Any]:
        token, record = new_token(body)
        with unavailable("the token was not made"), self.database.connection() as connection, connection.transaction():
            _insert(connection, record)
        with self._lock:
            self._records[record.id] = record
        return {"token": token, **record.public()}

    def revoke(self, token_id: str) -> None:
        if not is_token_id(token_id):
            raise no_token(token_id)  # never a query with what an id cannot hold (NUL characters, say)
        with (
            unavailable(f"token {token_id!r} was not revoked"),
            self.database.connection() as connection,
            connection.transaction(),
        ):
            take_change(connection, KIND, token_id)
            gone = connection.execute("DELETE FROM fnbox_tokens WHERE id = %s RETURNING id", (token_id,)).fetchone()
            if gone is None:  # the transaction rolls back: the change number is not taken
                raise no_token(token_id)
        with self._lock:
            self._records.pop(token_id, None)


def open_tokens(runtime: Runtime, data_dir: str | os.PathLike[str], *, admin_token: str | None) -> TokenStore:
    """The token store: in the Runtime's shared database if it has one, else in the data directory."""
    if runtime.database is None:
        return TokenStore(data_dir, admin_token=admin_token)
    tokens = PgTokenStore(
        runtime.database, data_dir, admin_token=admin_token, refresh=runtime.refresh, publish=runtime.publish
    )
    runtime.share(KIND, tokens)
    return tokens


def copy_tokens(database: Database, records: Iterable[TokenRecord]) -> int:
    """Copy token records (of a data directory) whose id the database never knew; how many were copied.

    A token revoked in the database is never brought back by copying the same directory again.
    """
    copied = 0
    for record in records:
        with database.connection() as connection, connection.transaction():
            known = connection.execute(
                "SELECT 1 FROM fnbox_tokens WHERE id = %(id)s"
                " UNION ALL SELECT 1 FROM fnbox_changes WHERE kind = %(kind)s AND name = %(id)s LIMIT 1",
                {"id": record.id, "kind": KIND},
            ).fetchone()
            if known is None:
                _insert(connection, record)
                copied += 1
    return copied


def _insert(connection: Any, record: TokenRecord) -> None:
    take_change(connection, KIND, record.id)  # the counter's lock first, as every change
    connection.execute(
        f"INSERT INTO fnbox_tokens ({COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s)",
        (record.id, record.hash, list(record.scopes), list(record.workspaces), record.created, record.expires),
    )


def _records(rows: Iterable[tuple[Any, ...]]) -> list[TokenRecord]:
    return [
        TokenRecord(
            token_id,
            token_hash,
            tuple(scopes),
            tuple(workspaces),
            float(created),
            None if expires is None else float(expires),
        )
        for token_id, token_hash, scopes, workspaces, created, expires in rows
    ]
