"""Workspace secrets: values a function reads at run time and nobody reads back.

Each value is encrypted with Fernet (AES-128-CBC with HMAC-SHA256, from `cryptography`)
and kept in `secrets.json` in the data directory, written atomically with mode 0600.
The key comes from FNBOX_SECRETS_KEY (several, comma-separated: the first encrypts,
all decrypt, and at start every value is re-encrypted with the first: that is how a key
is rotated), or else from `secrets.key`, generated on first use with mode 0600.

Only names and update times ever leave this module through the API; the values go to
the run (`values`) and to `redact`, which blanks them out of what a run gives back.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from fnbox.sandboxes.errors import FnboxError, InvalidRequest, NotFound
from fnbox.workspaces.document import check_workspace_name
from fnbox.workspaces.files import write_atomically

__all__ = [
    "KEY_FILENAME",
    "REDACTED",
    "SECRETS_FILENAME",
    "SecretStore",
    "check_value",
    "redact",
    "redact_error",
    "stored_secrets",
]

SECRETS_FILENAME = "secrets.json"
KEY_FILENAME = "secrets.key"
REDACTED = "***"
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
MAX_VALUE = 64 * 1024
MAX_PER_WORKSPACE = 100


class SecretStore:
    """The secrets of every workspace; blocking but cheap (one small file), thread-safe."""

    #: What a value that does not decrypt means, for the error a run answers.
    KEY_HINT = "FNBOX_SECRETS_KEY (or secrets.key) is not the key they were stored with"

    def __init__(self, data_dir: str | os.PathLike[str], *, keys: str | None = None) -> None:
        self.root = Path(data_dir)
        self.path = self.root / SECRETS_FILENAME
        self._keys = keys
        self._fernet: MultiFernet | None = None
        self._lock = threading.Lock()
        #: workspace -> name -> (token, updated); decrypted values are cached per workspace.
        self._stored: dict[str, dict[str, tuple[str, float]]] = {}
        self._plain: dict[str, dict[str, str]] = {}
        #: Bumped by every change: a decryption that raced one is not cached.
        self._version = 0
        self._open()

    def _open(self) -> None:
        """Read what is stored; with several keys, re-encrypt it with the first."""
        self._stored = stored_secrets(self.root)
        if self._stored and self.rotating:
            self.rotate()

    @property
    def rotating(self) -> bool:
        """Several keys are given: the first encrypts, and what the others encrypted is re-encrypted."""
        return bool(self._keys) and len(str(self._keys).split(",")) > 1

    def list(self, workspace: str) -> list[dict[str, Any]]:
        check_workspace_name(workspace)
        items = self._stored.get(workspace, {})
        return [{"name": name, "updated": _iso(items[name][1])} for name in sorted(items)]

    def set(self, workspace: str, name: str, value: Any) -> dict[str, Any]:
        check_value(workspace, name, value)
        with self._lock:
            items = self._stored.setdefault(workspace, {})
            if name not in items and len(items) >= MAX_PER_WORKSPACE:
                raise too_many(workspace)
            token = self._cipher().encrypt(value.encode("utf-8", "surrogatepass")).decode()
            updated = time.time()
            items[name] = (token, updated)
            self._version += 1
            self._plain.pop(workspace, None)
            self._save()
        return {"name": name, "updated": _iso(updated)}

    def delete(self, workspace: str, name: str) -> None:
        check_workspace_name(workspace)
        with self._lock:
            items = self._stored.get(workspace, {})
            if items.pop(name, None) is None:
                raise NotFound(f"no secret {name!r} in workspace {workspace!r}", details={"name": name})
            if not items:
                self._stored.pop(workspace, None)
            self._version += 1
            self._plain.pop(workspace, None)
            self._save()

    def values(self, workspace: str) -> Mapping[str, str]:
        """The workspace's secrets in clear, for a run (and for redacting its outcome)."""
        plain = self._plain.get(workspace)
        if plain is not None:
            return plain
        version = self._version
        items = dict(self._stored.get(workspace) or {})
        if not items:
            return {}
        cipher = self._cipher()
        try:
            plain = {
                name: cipher.decrypt(token.encode()).decode("utf-8", "surrogatepass")
                for name, (token, _) in items.items()
            }
        except InvalidToken:
            raise FnboxError(f"the workspace's secrets cannot be decrypted: {self.KEY_HINT}") from None
        if version == self._version:
            self._plain[workspace] = plain
        return plain

    def _replace(self, workspace: str, items: dict[str, tuple[str, float]]) -> None:
        """Hold `items` (encrypted) as the workspace's secrets; call with the lock held."""
        if items:
            self._stored[workspace] = items
        else:
            self._stored.pop(workspace, None)
        self._version += 1
        self._plain.pop(workspace, None)

    def rotate(self) -> None:
        """Re-encrypt every value with the first key."""
        with self._lock:
            cipher = self._cipher()
            for items in self._stored.values():
                for name, (token, updated) in list(items.items()):
                    items[name] = (cipher.rotate(token.encode()).decode(), updated)
            self._save()

    def _cipher(self) -> MultiFernet:
        if self._fernet is None:
            keys = self._keys.split(",") if self._keys else [self._key_file()]
            self._fernet = MultiFernet([Fernet(key.strip()) for key in keys])
        return self._fernet

    def _key_file(self) -> str:
        path = self.root / KEY_FILENAME
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path.read_text().strip()
        with os.fdopen(descriptor, "w") as file:
            file.write(Fernet.generate_key().decode())
            file.flush()
            os.fsync(file.fileno())
        return path.read_text().strip()

    def _save(self) -> None:
        data = json.dumps(
            {
                workspace: {name: {"value": token, "updated": updated} for name, (token, updated) in items.items()}
                for workspace, items in self._stored.items()
            },
            indent=1,
        )
        self.root.mkdir(parents=True, exist_ok=True)
        write_atomically(self.path, data)  # mode 0600


def stored_secrets(data_dir: str | os.PathLike[str]) -> dict[str, dict[str, tuple[str, float]]]:
    """The encrypted secrets of a data directory's `secrets.json`: workspace -> name -> (token, updated)."""
    path = Path(data_dir) / SECRETS_FILENAME
    if not path.exists():
        return {}
    return {
        workspace: {name: (item["value"], float(item["updated"])) for name, item in items.items()}
        for workspace, items in json.loads(path.read_text()).items()
    }


def check_value(workspace: str, name: str, value: Any) -> None:
    """Refuse a bad workspace or secret name, and a value that is not a non-empty string of at most MAX_VALUE bytes."""
    check_workspace_name(workspace)
    _check_name(name)
    if not isinstance(value, str):
        raise InvalidRequest('the body must be the value as a JSON string, such as "sk-..."')
    if len(value.encode("utf-8", "surrogatepass")) > MAX_VALUE:
        raise InvalidRequest(f"a secret's value is at most {MAX_VALUE} bytes", details={"name": name})
    if not value:
        raise InvalidRequest("a secret's value must not be empty", details={"name": name})


def too_many(workspace: str) -> InvalidRequest:
    return InvalidRequest(f"a workspace has at most {MAX_PER_WORKSPACE} secrets", details={"workspace": workspace})


def check_key(text: str) -> str:
    """FNBOX_SECRETS_KEY: Fernet keys, comma-separated (the first encrypts)."""
    for key in text.split(","):
        try:
            Fernet(key.strip())
        except (ValueError, TypeError):
            raise ValueError(
                "expected Fernet keys (32 url-safe base64-encoded bytes each, comma-separated): make one with "
                "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
            ) from None
    return text.strip()


def _check_name(name: str) -> None:
    if not NAME.fullmatch(name):
        raise InvalidRequest(
            f"invalid secret name {name!r}: 1 to 64 letters, digits or '_', not starting with a digit",
            details={"name": name},
        )


def _iso(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def redact(value: Any, secrets: Mapping[str, str]) -> Any:
    """`value` with every secret value in its strings (keys too) replaced by REDACTED."""
    if not secrets:
        return value
    needles = sorted({s for s in secrets.values() if s}, key=len, reverse=True)
    return _redact(value, needles)


def _redact(value: Any, needles: list[str]) -> Any:
    if isinstance(value, str):
        for needle in needles:
            if needle in value:
                value = value.replace(needle, REDACTED)
        return value
    if isinstance(value, list):
        return [_redact(item, needles) for item in value]
    if isinstance(value, dict):
        return {_redact(key, needles): _redact(item, needles) for key, item in value.items()}
    return value


def redact_error(error: FnboxError, secrets: Mapping[str, str]) -> None:
    """Blank the secrets out of a failed run's error, in place."""
    if not secrets:
        return
    error.message = redact(error.message, secrets)
    error.args = (error.message,)
    error.details = redact(error.details, secrets)
    if error.logs is not None:
        error.logs = redact(error.logs, secrets)
