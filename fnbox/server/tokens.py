"""API tokens: who a bearer token is, stored only as a hash in the data directory.

A token reads `fnbox_<id>_<secret>`. The id finds its record; the secret is never kept,
only the SHA-256 of the whole token, compared in constant time. The admin token of
FNBOX_ADMIN_TOKEN is compared the same way and is never stored. Records live in one
JSON file (mode 0600) written atomically, and in memory: a revocation takes effect on
the very next request.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from fnbox.sandboxes.errors import InvalidRequest, NotFound
from fnbox.workspaces.files import write_atomically

__all__ = [
    "ADMIN_ID",
    "SCOPES",
    "TOKENS_FILENAME",
    "Principal",
    "TokenRecord",
    "TokenStore",
    "is_token_id",
    "iso_time",
    "new_token",
    "no_token",
    "stored_tokens",
]

TOKENS_FILENAME = "tokens.json"
SCOPES = ("admin", "deploy", "run", "read")
#: The principal of FNBOX_ADMIN_TOKEN, as executions it starts name their owner.
ADMIN_ID = "admin"
#: Longest `expires_in`: ten years.
MAX_EXPIRES_IN = 10 * 365 * 86400
#: Workspace patterns: a workspace name's characters plus fnmatch's `*` and `?` (no brackets,
#: so the same pattern means the same in SQLite's GLOB).
_PATTERN = re.compile(r"[A-Za-z0-9_*?-]{1,64}")
_TOKEN = re.compile(r"fnbox_([0-9a-f]{16})_([A-Za-z0-9_-]{20,100})")
_ID = re.compile(r"[0-9a-f]{16}")
#: Compared against when a token's id is unknown, so that a miss costs what a hit costs.
_DUMMY_HASH = hashlib.sha256(b"fnbox-no-such-token").hexdigest()


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def iso_time(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Principal:
    """Who a request comes from: a token's id, its scopes and the workspaces it may touch."""

    id: str | None
    scopes: frozenset[str]
    #: fnmatch patterns of workspace names; empty: every workspace.
    workspaces: tuple[str, ...] = ()

    @property
    def admin(self) -> bool:
        return "admin" in self.scopes

    def covers(self, workspace: str) -> bool:
        return self.admin or not self.workspaces or any(fnmatchcase(workspace, p) for p in self.workspaces)

    def may(self, scopes: Sequence[str], workspace: str | None = None) -> bool:
        """Holds one of `scopes` (admin holds them all), on `workspace` if given."""
        if self.admin:
            return True
        if not self.scopes.intersection(scopes):
            return False
        return workspace is None or self.covers(workspace)


#: Everyone, when access control is off: what fnbox allowed before it had any.
OPEN = Principal(None, frozenset({"admin"}))


@dataclass(frozen=True)
class TokenRecord:
    id: str
    hash: str
    scopes: tuple[str, ...]
    workspaces: tuple[str, ...]
    created: float
    expires: float | None

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "scopes": list(self.scopes),
            "workspaces": list(self.workspaces),
            "created": iso_time(self.created),
            "expires": iso_time(self.expires),
        }


class TokenStore:
    """The tokens made through the API, and the admin token of the settings."""

    #: Whether other instances change these tokens too (then `refresh` catches up with them).
    shared = False

    def __init__(self, data_dir: str | os.PathLike[str], *, admin_token: str | None = None) -> None:
        self.path = Path(data_dir) / TOKENS_FILENAME
        self._admin_hash = None if admin_token is None else _hash(admin_token)
        self._lock = threading.Lock()
        self._records: dict[str, TokenRecord] = {}
        self._open()

    def _open(self) -> None:
        self._records = {record.id: record for record in stored_tokens(self.path.parent)}

    async def refresh(self) -> None:
        """Apply what other instances changed, before a request is judged (nothing to do for one instance)."""

    async def publish(self) -> None:
        """After a token was made or revoked here: other instances have it (nothing to do for one instance)."""

    def records(self) -> list[TokenRecord]:
        return sorted(self._records.values(), key=lambda r: r.created)

    @property
    def enabled(self) -> bool:
        """Access control is on once an admin token is set or any token exists."""
        return self._admin_hash is not None or bool(self._records)

    def authenticate(self, token: str) -> Principal | None:
        """The principal of a bearer token, or None for a wrong, revoked or expired one."""
        given = _hash(token)
        admin = self._admin_hash or _DUMMY_HASH
        if hmac.compare_digest(given, admin) and self._admin_hash is not None:
            return Principal(ADMIN_ID, frozenset({"admin"}))
        match = _TOKEN.fullmatch(token)
        record = self._records.get(match.group(1)) if match else None
        if not hmac.compare_digest(given, record.hash if record else _DUMMY_HASH) or record is None:
            return None
        if record.expires is not None and record.expires <= time.time():
            return None
        return Principal(record.id, frozenset(record.scopes), record.workspaces)

    def active(self, principal: Principal) -> bool:
        """Whether `principal`'s token still holds (not revoked or expired since it was checked)."""
        if principal.id is None or principal.id == ADMIN_ID:
            return True
        record = self._records.get(principal.id)
        return record is not None and (record.expires is None or record.expires > time.time())

    def create(self, body: Any) -> dict[str, Any]:
        """Make a token from `{"scopes", "workspaces", "expires_in"}`; the answer is the only copy of it."""
        token, record = new_token(body)
        with self._lock:
            self._records[record.id] = record
            self._save()
        return {"token": token, **record.public()}

    def list(self) -> list[dict[str, Any]]:
        return [record.public() for record in self.records()]

    def revoke(self, token_id: str) -> None:
        with self._lock:
            if self._records.pop(token_id, None) is None:
                raise no_token(token_id)
            self._save()

    def _save(self) -> None:
        """Write every record to a new file and rename it over the old one: never half a file."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = json.dumps(
            [
                {
                    "id": r.id,
                    "hash": r.hash,
                    "scopes": r.scopes,
                    "workspaces": r.workspaces,
                    "created": r.created,
                    "expires": r.expires,
                }
                for r in self._records.values()
            ],
            indent=1,
        )
        write_atomically(self.path, data)  # mode 0600


def stored_tokens(data_dir: str | os.PathLike[str]) -> list[TokenRecord]:
    """The token records of a data directory's `tokens.json`."""
    path = Path(data_dir) / TOKENS_FILENAME
    if not path.exists():
        return []
    return [
        TokenRecord(
            item["id"],
            item["hash"],
            tuple(item["scopes"]),
            tuple(item["workspaces"]),
            float(item["created"]),
            None if item.get("expires") is None else float(item["expires"]),
        )
        for item in json.loads(path.read_text())
    ]


def is_token_id(text: str) -> bool:
    """Whether `text` has the form of a token's id (anything else names no token)."""
    return _ID.fullmatch(text) is not None


def no_token(token_id: str) -> NotFound:
    return NotFound(f"no token {token_id!r}", details={"id": token_id})


def new_token(body: Any) -> tuple[str, TokenRecord]:
    """A new token from `{"scopes", "workspaces", "expires_in"}`, and its record (which keeps only its hash)."""
    if not isinstance(body, dict):
        raise InvalidRequest('the body must be an object such as {"scopes": ["run"], "workspaces": ["billing"]}')
    unknown = sorted(set(body) - {"scopes", "workspaces", "expires_in"})
    if unknown:
        raise InvalidRequest(f"unknown fields {', '.join(unknown)}", details={"fields": unknown})
    scopes = body.get("scopes")
    if not isinstance(scopes, list) or not scopes or not all(s in SCOPES for s in scopes):
        raise InvalidRequest(f"scopes must be a non-empty list of {', '.join(SCOPES)}", details={"scopes": scopes})
    workspaces = body.get("workspaces") or []
    if not isinstance(workspaces, list) or not all(isinstance(p, str) and _PATTERN.fullmatch(p) for p in workspaces):
        raise InvalidRequest(
            "workspaces must be a list of names or patterns (letters, digits, '_', '-', '*' and '?')",
            details={"workspaces": workspaces},
        )
    expires_in = body.get("expires_in")
    if expires_in is not None and (
        isinstance(expires_in, bool) or not isinstance(expires_in, (int, float)) or not 0 < expires_in <= MAX_EXPIRES_IN
    ):
        raise InvalidRequest(
            f"expires_in must be a number of seconds between 1 and {MAX_EXPIRES_IN}",
            details={"expires_in": expires_in},
        )
    token_id = secrets.token_hex(8)
    token = f"fnbox_{token_id}_{secrets.token_urlsafe(32)}"
    now = time.time()
    record = TokenRecord(
        token_id,
        _hash(token),
        tuple(dict.fromkeys(scopes)),
        tuple(dict.fromkeys(workspaces)),
        now,
        None if expires_in is None else now + float(expires_in),
    )
    return token, record
