"""PostgreSQL, shared by every instance: the connection pool and the schema's versioned migrations.

Each instance migrates at start inside one transaction holding an advisory lock, so
instances started together take turns: the first applies what is missing, the others
find it applied. A migration is never edited once released; a change is a new entry.
An unreachable database is `Overloaded` (503) to callers: the service goes on with
what it holds, and writes wait for the database to be back.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import psycopg
import psycopg_pool

from fnbox.sandboxes.errors import Overloaded

__all__ = ["MIGRATIONS", "Database", "DatabaseError", "redacted", "unavailable"]

logger = logging.getLogger("fnbox")

#: pg_advisory_xact_lock's key for migrations: any constant no other program on the database uses.
MIGRATION_LOCK = 0x666E626F78  # "fnbox"
#: Seconds a caller waits for a connection (or a new one to open) before it is told the database is down.
CONNECT_TIMEOUT = 3.0
#: Seconds an instance waits for the database at start before it gives up.
START_TIMEOUT = 30.0

#: The schema, one entry per version (the first is version 1).
MIGRATIONS: tuple[str, ...] = (
    # 1: workspaces. Every saved version is a row that never changes (a deletion is a row
    # with no document); `seq` orders all of them, and a reader that remembers the last
    # `seq` it saw finds every change since with one indexed query. Writers take the
    # counter's row lock first, so `seq` order is commit order and no change is skipped.
    """
    CREATE TABLE fnbox_counters (name text PRIMARY KEY, value bigint NOT NULL);
    INSERT INTO fnbox_counters VALUES ('workspace_changes', 0);
    CREATE TABLE fnbox_workspace_versions (
        seq bigint PRIMARY KEY,
        name text NOT NULL,
        version text,
        document text,
        created_at timestamptz NOT NULL DEFAULT now(),
        CHECK ((version IS NULL) = (document IS NULL))
    );
    CREATE INDEX fnbox_workspace_versions_name ON fnbox_workspace_versions (name, seq);
    CREATE TABLE fnbox_workspaces (
        name text PRIMARY KEY,
        seq bigint NOT NULL REFERENCES fnbox_workspace_versions (seq)
    );
    CREATE FUNCTION fnbox_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'fnbox: % rows are never changed or removed', TG_TABLE_NAME;
    END $$;
    CREATE TRIGGER fnbox_workspace_versions_immutable BEFORE UPDATE OR DELETE ON fnbox_workspace_versions
        FOR EACH ROW EXECUTE FUNCTION fnbox_immutable();
    """,
    # 2: execution records and the shared queue of asynchronous executions. The columns of
    # the embedded SQLite table, plus the holder's lease and its fencing number.
    """
    CREATE TABLE fnbox_executions (
        id text PRIMARY KEY,
        workspace text NOT NULL,
        function text NOT NULL,
        version text NOT NULL,
        language text NOT NULL,
        status text NOT NULL,
        created double precision NOT NULL,
        started double precision,
        finished double precision,
        duration double precision,
        parameters text NOT NULL,
        result text,
        logs text NOT NULL,
        error text,
        owner text,
        lease_owner text,
        lease_until double precision,
        fence integer NOT NULL DEFAULT 0,
        cancel_requested boolean NOT NULL DEFAULT false
    );
    CREATE INDEX fnbox_executions_by_created ON fnbox_executions (created, id);
    CREATE INDEX fnbox_executions_by_workspace ON fnbox_executions (workspace, created, id);
    CREATE INDEX fnbox_executions_by_function ON fnbox_executions (function, created, id);
    CREATE INDEX fnbox_executions_by_status ON fnbox_executions (status, created, id);
    CREATE INDEX fnbox_executions_waiting ON fnbox_executions (created, id) WHERE status = 'accepted';
    CREATE INDEX fnbox_executions_running ON fnbox_executions (workspace) WHERE status = 'running';
    """,
    # 3: workspace secrets (Fernet tokens: the key is never stored here) and access tokens
    # (SHA-256 hashes of them, never the tokens). A change of either takes the next number
    # of the workspaces' counter and names what changed in fnbox_changes, so that the
    # instances following the workspace changes reload these in the same pass, in order.
    """
    CREATE TABLE fnbox_changes (
        seq bigint PRIMARY KEY,
        kind text NOT NULL CHECK (kind IN ('secrets', 'tokens')),
        name text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX fnbox_changes_by_name ON fnbox_changes (kind, name);
    CREATE TABLE fnbox_secrets (
        workspace text NOT NULL,
        name text NOT NULL,
        value text NOT NULL,
        updated double precision NOT NULL,
        PRIMARY KEY (workspace, name)
    );
    CREATE TABLE fnbox_tokens (
        id text PRIMARY KEY,
        hash text NOT NULL,
        scopes text[] NOT NULL,
        workspaces text[] NOT NULL,
        created double precision NOT NULL,
        expires double precision
    );
    """,
    # 4: the instances serving, each with the number of the last change it applied and a
    # lease in the database's clock (see fnbox/workspaces/presence.py): a save is answered
    # once every instance whose lease is live has seen it.
    """
    CREATE TABLE fnbox_instances (
        id text PRIMARY KEY,
        seen bigint NOT NULL,
        lease_until timestamptz NOT NULL,
        started timestamptz NOT NULL DEFAULT now()
    );
    """,
    # 5: the names of the secrets ever deleted from the database, so that copying a data
    # directory again (fnbox migrate) never brings one back.
    """
    CREATE TABLE fnbox_secrets_deleted (
        workspace text NOT NULL,
        name text NOT NULL,
        PRIMARY KEY (workspace, name)
    );
    """,
)


class DatabaseError(Exception):
    """The database cannot be used at start (a startup failure, not a request's)."""


def redacted(url: str) -> str:
    """The URL without its password, for messages."""
    return re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", url)


@contextmanager
def unavailable(what: str) -> Iterator[None]:
    """Turn a lost or refused database connection into Overloaded, saying what was not done."""
    try:
        yield
    except (psycopg.OperationalError, psycopg_pool.PoolTimeout) as exc:
        raise Overloaded(
            f"{what}: the database cannot be reached; runs of saved functions go on, try again shortly",
            details={"reason": "database unavailable"},
        ) from exc


class Database:
    """A pool of connections to one PostgreSQL database, for the blocking stores."""

    def __init__(self, url: str, *, max_size: int = 8) -> None:
        self.url = url
        self.pool = psycopg_pool.ConnectionPool(
            url,
            min_size=1,
            max_size=max_size,
            timeout=CONNECT_TIMEOUT,
            open=False,
            check=psycopg_pool.ConnectionPool.check_connection,
            kwargs={"connect_timeout": int(CONNECT_TIMEOUT)},
        )

    def open(self) -> int:
        """Connect and migrate; the schema version now in force. DatabaseError if it cannot be reached."""
        try:
            self.pool.open(wait=True, timeout=START_TIMEOUT)
        except psycopg_pool.PoolTimeout as exc:
            self.pool.close()
            raise DatabaseError(
                f"cannot connect to the database {redacted(self.url)} within {START_TIMEOUT:g} s: "
                "check FNBOX_DATABASE_URL and that PostgreSQL answers"
            ) from exc
        return self.migrate()

    def close(self) -> None:
        self.pool.close()

    def connection(self) -> AbstractContextManager[psycopg.Connection[Any]]:
        return self.pool.connection()

    def migrate(self) -> int:
        with self.pool.connection() as connection, connection.transaction():
            connection.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            connection.execute(
                "CREATE TABLE IF NOT EXISTS fnbox_migrations"
                " (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            applied = {row[0] for row in connection.execute("SELECT version FROM fnbox_migrations")}
            for version, script in enumerate(MIGRATIONS, start=1):
                if version in applied:
                    continue
                connection.execute(script)
                connection.execute("INSERT INTO fnbox_migrations (version) VALUES (%s)", (version,))
                logger.info("database schema migrated to version %d", version)
            newest = max(applied | {len(MIGRATIONS)})
        if newest > len(MIGRATIONS):
            logger.warning(
                "the database schema is at version %d, newer than this fnbox knows (%d): upgrade this instance",
                newest,
                len(MIGRATIONS),
            )
        return newest
