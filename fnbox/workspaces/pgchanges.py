"""Changes besides a workspace's own (its secrets, the access tokens), numbered with the workspaces' changes.

A writer takes the next number of the one counter inside its transaction (the counter's
row lock orders writers, so numbers follow commit order, as for saves) and names what
changed in `fnbox_changes`. Every instance's ChangeFeed reads those rows together with the
workspace versions and hands the names to the follower of their kind, which reads them
again: a run that waits for the feed sees a secret set, and a request a token revoked,
through any instance before it.
"""

from __future__ import annotations

from typing import Any, Protocol

import psycopg

from fnbox.workspaces.pgstore import CHANGES_CHANNEL, NEXT_CHANGE

__all__ = ["Follower", "take_change"]


class Follower(Protocol):
    """What an instance holds in memory and keeps current from the shared database (blocking calls)."""

    def load(self) -> None:
        """Read all of it: at start, once the feed has taken its starting number."""

    def reload(self, names: list[str]) -> None:
        """Read again what changes named (workspaces for secrets, ids for tokens)."""


def take_change(connection: psycopg.Connection[Any], kind: str, name: str) -> int:
    """Number a change of `kind` to `name` in the caller's transaction; other instances apply it from then on."""
    row = connection.execute(NEXT_CHANGE).fetchone()
    assert row is not None  # the counter's row is made by the first migration
    seq = int(row[0])
    connection.execute("INSERT INTO fnbox_changes (seq, kind, name) VALUES (%s, %s, %s)", (seq, kind, name))
    connection.execute(f"NOTIFY {CHANGES_CHANNEL}")  # delivered at commit; a speed-up only
    return seq
