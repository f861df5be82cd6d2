"""Real small file systems for the tests of a full disk and of a read-only data directory.

A tmpfs of a few MB fills for real (ENOSPC) and remounts read-only for real (EROFS), where
permissions would not stop root. Mounting needs root, as the tests and CI run here; it goes
through mount(2) directly, so no subprocess is started.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
from collections.abc import Iterator
from pathlib import Path

__all__ = ["fill", "read_only", "small_filesystem"]

_LIBC = ctypes.CDLL(None, use_errno=True)
_MS_RDONLY = 1
_MS_REMOUNT = 32
_MNT_DETACH = 2


def _check(status: int, what: str) -> None:
    if status != 0:
        number = ctypes.get_errno()
        raise OSError(number, f"{what}: {os.strerror(number)}")


@contextlib.contextmanager
def small_filesystem(path: Path, size: str = "2m") -> Iterator[Path]:
    """A tmpfs of `size` mounted at `path` while the block runs."""
    path.mkdir(parents=True, exist_ok=True)
    target = os.fsencode(path)
    _check(_LIBC.mount(b"tmpfs", target, b"tmpfs", 0, f"size={size}".encode()), f"mount tmpfs at {path}")
    try:
        yield path
    finally:
        _check(_LIBC.umount2(target, _MNT_DETACH), f"umount {path}")


def read_only(path: Path) -> None:
    """Remount the file system mounted at `path` read-only."""
    _check(_LIBC.mount(None, os.fsencode(path), None, _MS_REMOUNT | _MS_RDONLY, None), f"remount {path}")


def fill(path: Path, leave: int = 0) -> Path:
    """Fill the file system of `path` with a filler file, leaving about `leave` bytes free."""
    filler = path / ".filler"
    with open(filler, "wb") as file:
        chunk = b"\0" * 65536
        while True:
            free = os.statvfs(path).f_bavail * os.statvfs(path).f_frsize
            if free <= leave:
                break
            try:
                file.write(chunk[: max(1, min(len(chunk), free - leave))])
                file.flush()
            except OSError:
                break
    return filler
