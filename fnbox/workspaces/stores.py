"""The workspace store's interface, shared by its two backends.

FileStore (fnbox/workspaces/store.py) keeps one YAML file per workspace for a single
machine; PgStore (fnbox/workspaces/pgstore.py) keeps every version in PostgreSQL for
several instances. The Runtime sees only this interface.
"""

from __future__ import annotations

from typing import Any, Protocol

from fnbox.sandboxes.errors import PreconditionFailed

__all__ = ["ABSENT", "ANY", "WorkspaceStore", "check_expected"]

#: `expected` values besides a version: the workspace must not exist, or must exist in any version.
ABSENT = ""
ANY = "*"


class WorkspaceStore(Protocol):
    def names(self) -> list[str]: ...

    def load(self, name: str) -> dict[str, Any] | None: ...

    def save(self, name: str, document: dict[str, Any], *, expected: str | None = None) -> int | None:
        """Store a new version; with `expected`, only if the stored version is that one (else PreconditionFailed).

        Returns the change's number when the store numbers its changes (a shared database).
        """

    def delete(self, name: str, *, expected: str | None = None) -> bool:
        """Remove a workspace; False if there was none."""


def check_expected(name: str, current: str | None, expected: str | None) -> None:
    """Raise PreconditionFailed unless the stored version `current` (None: absent) is the one `expected`."""
    if expected is None or (expected == ANY and current is not None) or expected == (current or ABSENT):
        return
    stored = "no such workspace" if current is None else f"the stored version is {current}"
    wanted = "no workspace" if expected == ABSENT else "any version" if expected == ANY else f"version {expected}"
    raise PreconditionFailed(
        f"workspace {name!r} changed: {stored}, the request expected {wanted}; read it again and retry",
        details={"workspace": name, "version": current, "expected": expected},
    )
