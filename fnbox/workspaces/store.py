"""The filesystem store: one YAML file per workspace, written atomically.

`<root>/<workspace>/workspace.yaml`. A write goes to a temporary file in the same
folder, is fsynced, then renamed over the old file (and the folder fsynced), so a
crash mid-write leaves either the old document or the new one, never a torn file. A new
workspace's folder is fsynced into its parent before the save is acknowledged, and a save
that cannot be written (a full disk, a read-only data directory) leaves nothing behind and
raises InsufficientStorage.
"""

from __future__ import annotations

import errno
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import yaml

from fnbox.sandboxes.errors import InsufficientStorage, InvalidRequest
from fnbox.workspaces import yaml_text
from fnbox.workspaces.document import document_version
from fnbox.workspaces.files import fsync_folder, write_atomically
from fnbox.workspaces.stores import check_expected

__all__ = ["FileStore", "StoredDocumentError"]

FILENAME = "workspace.yaml"


class StoredDocumentError(Exception):
    """A stored file that cannot be read back (hand-edited, say)."""


class FileStore:
    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(
            entry.name
            for entry in self.root.iterdir()
            if not entry.name.startswith(".") and (entry / FILENAME).is_file()
        )

    def load(self, name: str) -> dict[str, Any] | None:
        path = self.root / name / FILENAME
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        try:
            document = yaml.load(text, Loader=yaml_text.Loader)
        except yaml.YAMLError as exc:
            raise StoredDocumentError(f"{path}: not valid YAML: {exc}") from exc
        if document is None:
            document = {}
        if not isinstance(document, dict):
            raise StoredDocumentError(f"{path}: the document is not a mapping")
        return document

    def save(self, name: str, document: dict[str, Any], *, expected: str | None = None) -> None:
        if expected is not None:  # one process writes here, and the Runtime holds the workspace's lock
            check_expected(name, self._version(name), expected)
        try:
            text = yaml_text.dump(document)
        except yaml.YAMLError as exc:
            raise InvalidRequest(f"the document cannot be stored: {exc}") from exc
        folder = self.root / name
        created = not folder.is_dir()
        try:
            if created:
                self.root.mkdir(parents=True, exist_ok=True)
                folder.mkdir(exist_ok=True)
            self._write(folder, text)
            if created:
                fsync_folder(self.root)  # the new folder's entry must outlive a power loss too
        except OSError as exc:
            if created:
                shutil.rmtree(folder, ignore_errors=True)
            raise storage_error(exc, f"workspace {name!r}") from exc

    @staticmethod
    def _write(folder: Path, text: str) -> None:
        write_atomically(folder / FILENAME, text)

    def delete(self, name: str, *, expected: str | None = None) -> bool:
        if expected is not None:
            check_expected(name, self._version(name), expected)
        folder = self.root / name
        if not (folder / FILENAME).is_file():
            return False
        # Rename first so a crash mid-delete never leaves a half-removed workspace visible.
        trash = self.root / f".deleted-{name}-{uuid.uuid4().hex}"
        try:
            os.replace(folder, trash)
            fsync_folder(self.root)
        except OSError as exc:
            raise storage_error(exc, f"workspace {name!r}") from exc
        shutil.rmtree(trash, ignore_errors=True)
        return True

    def _version(self, name: str) -> str | None:
        document = self.load(name)
        return None if document is None else document_version(document)


#: Errors of the file system rather than of fnbox: the service goes on, the write is refused.
_FULL = {errno.ENOSPC, errno.EDQUOT}
_READ_ONLY = {errno.EROFS, errno.EACCES, errno.EPERM}


def storage_error(exc: OSError, what: str) -> Exception:
    """InsufficientStorage for a full or read-only file system; other OS errors as they are (bugs)."""
    if exc.errno in _FULL:
        return InsufficientStorage(
            f"{what} was not saved: the data directory's file system is full; nothing was changed",
            details={"reason": "full"},
        )
    if exc.errno in _READ_ONLY:
        return InsufficientStorage(
            f"{what} was not saved: the data directory is read-only, so fnbox serves its workspaces read-only",
            details={"reason": "read-only"},
        )
    return exc
