"""Files that survive a crash: written whole or not at all, and durable once written.

A write goes to a temporary file beside its target (mode 0600, as `mkstemp` makes it), is
fsynced, renamed over the target, and the folder is fsynced so the rename outlives a power
loss too. A crash mid-write leaves the old file or the new one, never a torn one.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["fsync_folder", "write_atomically"]


def write_atomically(path: Path, text: str) -> None:
    """Replace `path` with `text` (UTF-8) atomically and durably."""
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    fsync_folder(path.parent)


def fsync_folder(folder: Path) -> None:
    """Make the entries of `folder` (a file renamed or made in it) durable."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
