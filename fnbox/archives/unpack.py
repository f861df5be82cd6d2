"""Unpacking an uploaded archive without trusting it: every byte counted, nothing on disk.

The container is recognised from its first bytes (zip, gzip, xz or tar; a gzip or xz stream
holds a tar or one single file). Decompressed data is read in bounded chunks and counted as
it comes out of the decompressor, never from the sizes the headers declare, so a bomb is
refused after at most one chunk past a cap. Names, entry types, duplicates and counts are
checked before a file is kept; a failure raises `InvalidRequest` and returns nothing.
"""

from __future__ import annotations

import gzip
import io
import lzma
import re
import stat
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from typing import Any, Protocol

from fnbox.sandboxes.errors import InvalidRequest

__all__ = ["WORKSPACE_FILES", "ArchiveLimits", "unpack"]

MiB = 1024 * 1024
#: A file holding a whole workspace: capped by `max_total_size`, not `max_file_size`.
WORKSPACE_FILES = ("workspace.yaml", "workspace.yml", "workspace.json")
DEFAULT_NAME = "function.py"  # a gzip or xz of one file without a stored name (a one-function archive's entry point)

_CHUNK = 64 * 1024
# tar pads even a one-line archive to 10 KiB of mostly zeros (ratios near 100:1), so the ratio
# only counts once the archive has expanded past this.
_RATIO_GRACE = 1 * MiB
# A zip has no such padding: its ratio counts, per entry and in all, past a few pages.
_ZIP_RATIO_GRACE = 16 * 1024
_TAR_OVERHEAD = 4096  # headers and padding allowed per tar entry, on top of the content
_MAX_NAME = 1024
_XZ_MEMORY = 100 * MiB  # `xz -9` needs 65 MiB to decompress; a header may ask for 4 GiB
_DRIVE = re.compile(r"^[A-Za-z]:")
_ZIP_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)  # zipfile's bzip2/lzma readers are unbounded
# NotImplementedError: zip flags zipfile cannot read (strong encryption, patched data).
_CORRUPT = (
    tarfile.TarError,
    zipfile.BadZipFile,
    zlib.error,
    lzma.LZMAError,
    EOFError,
    OSError,
    ValueError,
    NotImplementedError,
)


@dataclass(frozen=True, kw_only=True)
class ArchiveLimits:
    """Caps on what one archive may hold; sizes are uncompressed bytes, counted as read."""

    max_files: int = 1000  # entries of any kind, directories included
    max_file_size: int = 1 * MiB  # one source or NAME.yaml file
    max_total_size: int = 16 * MiB  # all files together (and a workspace.yaml alone)
    max_ratio: float = 200  # uncompressed bytes per byte of the archive


def unpack(data: bytes, limits: ArchiveLimits) -> tuple[str, dict[str, bytes]]:
    """Return the container format and the archive's files by normalised path.

    Directories and desktop noise (`__MACOSX/`, `.DS_Store`, `._*`) are left out.
    """
    container = _container(data)
    budget = _Budget(limits, len(data), grace=_ZIP_RATIO_GRACE if container == "zip" else _RATIO_GRACE)
    try:
        if container == "zip":
            return "zip", _read_zip(data, budget)
        if container == "tar":
            return "tar", _read_tar(_Expanding(io.BytesIO(data), budget), budget)
        raw = gzip.GzipFile(fileobj=io.BytesIO(data)) if container == "gz" else _XzReader(data)
        stream = _Expanding(raw, budget)
        if _is_tar_header(stream.peek_block()):
            return f"tar.{container}", _read_tar(stream, budget)
        path = _checked_path((_gzip_name(data) if container == "gz" else None) or DEFAULT_NAME)
        return container, {path: _read_file(stream, path, budget)}
    except _CORRUPT as exc:
        raise InvalidRequest(f"corrupt or truncated {container} archive: {exc}", details={"format": container}) from exc


def _container(data: bytes) -> str:
    if data[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "zip"
    if data[:2] == b"\x1f\x8b":
        return "gz"
    if data[:6] == b"\xfd7zXZ\x00":
        return "xz"
    if _is_tar_header(data[:512]):
        return "tar"
    raise InvalidRequest("not an archive: expected zip, tar, tar.gz or tar.xz")


def _is_tar_header(block: bytes) -> bool:
    if block[257:262] == b"ustar":
        return True
    try:
        tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")  # old tars: a valid checksum
    except tarfile.EOFHeaderError:  # type: ignore[attr-defined]  # tarfile has it; typeshed does not
        return True  # a zero block: an empty tar
    except tarfile.HeaderError:
        return False
    return True


def _gzip_name(data: bytes) -> str | None:
    """The original file name `gzip` keeps in the header (RFC 1952 FNAME), if any."""
    flags = data[3] if len(data) > 3 else 0
    if not flags & 0x08:
        return None
    start = 10
    if flags & 0x04:  # FEXTRA comes first
        start += 2 + int.from_bytes(data[10:12], "little")
    end = data.find(b"\x00", start)
    return data[start:end].decode("latin-1") if end > start else None


class _Budget:
    """Counts entries and bytes against the limits and refuses as soon as one is passed."""

    def __init__(self, limits: ArchiveLimits, compressed: int, *, grace: int = _RATIO_GRACE) -> None:
        self.limits = limits
        self.compressed = compressed
        self.grace = grace
        self.entries = 0
        self.expanded = 0  # bytes out of the decompressor, tar headers included
        self.total = 0  # bytes of kept files

    def entry(self) -> None:
        self.entries += 1
        if self.entries > self.limits.max_files:
            raise _too_big(f"the archive holds more than {self.limits.max_files} entries", "max_files", self.limits)

    def expand(self, size: int) -> None:
        self.expanded += size
        limits = self.limits
        if self.expanded > limits.max_total_size + _TAR_OVERHEAD * limits.max_files + tarfile.RECORDSIZE:
            raise _too_big(f"the archive expands past {_size(limits.max_total_size)}", "max_total_size", limits)
        if self.expanded > self.grace and self.expanded > limits.max_ratio * self.compressed:
            raise _ratio_error("the archive", limits)

    def expand_entry(self, path: str, expanded: int, compressed: int) -> None:
        """A zip entry's own ratio: a bomb in one entry hides behind a large archive otherwise."""
        if expanded > _ZIP_RATIO_GRACE and expanded > self.limits.max_ratio * max(compressed, 1):
            raise _ratio_error(path, self.limits, path)

    def content(self, path: str, file_size: int, size: int) -> None:
        self.total += size
        limits = self.limits
        if path.rpartition("/")[2] not in WORKSPACE_FILES and file_size > limits.max_file_size:
            raise _too_big(f"{path} is larger than {_size(limits.max_file_size)}", "max_file_size", limits, path)
        if self.total > limits.max_total_size:
            raise _too_big(f"the archive expands past {_size(limits.max_total_size)}", "max_total_size", limits)


def _ratio_error(what: str, limits: ArchiveLimits, path: str | None = None) -> InvalidRequest:
    return _too_big(
        f"{what} expands more than {limits.max_ratio:g} times its size (a compression bomb?)", "max_ratio", limits, path
    )


def _too_big(message: str, limit: str, limits: ArchiveLimits, path: str | None = None) -> InvalidRequest:
    details: dict[str, Any] = {"limit": limit, "max": getattr(limits, limit)}
    if path is not None:
        details["file"] = path
    return InvalidRequest(message, details=details)


def _size(size: int) -> str:
    for unit, scale in (("MiB", MiB), ("KiB", 1024)):
        if size >= scale and size % scale == 0:
            return f"{size // scale} {unit}"
    return f"{size} bytes"


class _Reader(Protocol):
    def read(self, size: int, /) -> bytes: ...


class _XzReader:
    """xz streams, one after another as `xz` allows, decompressed under a memory limit.

    (lzma.LZMAFile has no memory limit.)
    """

    def __init__(self, data: bytes) -> None:
        self._input = data
        self._decompressor = lzma.LZMADecompressor(lzma.FORMAT_XZ, memlimit=_XZ_MEMORY)

    def read(self, size: int, /) -> bytes:
        while True:
            if self._decompressor.eof:
                self._input = self._decompressor.unused_data.lstrip(b"\0")  # stream padding
                if not self._input:
                    return b""
                self._decompressor = lzma.LZMADecompressor(lzma.FORMAT_XZ, memlimit=_XZ_MEMORY)
            if self._decompressor.needs_input and not self._input:
                raise EOFError("the xz stream ends before its end marker")
            chunk = self._decompressor.decompress(self._input, size)
            self._input = b""
            if chunk:
                return chunk


class _Expanding:
    """A (decompressed) stream that counts every byte it hands out against the budget."""

    def __init__(self, raw: _Reader, budget: _Budget) -> None:
        self._raw = raw
        self._budget = budget
        self._head = b""

    def peek_block(self) -> bytes:
        head = b""
        while len(head) < tarfile.BLOCKSIZE and (chunk := self.read(tarfile.BLOCKSIZE - len(head))):
            head += chunk
        self._head = head
        return head

    def read(self, size: int = -1) -> bytes:
        if self._head:
            cut = len(self._head) if size < 0 else size
            chunk, self._head = self._head[:cut], self._head[cut:]
            return chunk
        chunk = self._raw.read(_CHUNK if size < 0 else min(size, _CHUNK))
        self._budget.expand(len(chunk))
        return chunk


class _StrictTarInfo(tarfile.TarInfo):
    """tarfile quietly ends an archive at a damaged header past the first one; refuse instead."""

    @classmethod
    def fromtarfile(cls, archive: tarfile.TarFile) -> _StrictTarInfo:
        try:
            return super().fromtarfile(archive)
        except (tarfile.InvalidHeaderError, tarfile.TruncatedHeaderError) as exc:  # type: ignore[attr-defined]
            raise tarfile.ReadError(f"damaged header at byte {archive.offset}: {exc}") from None


def _read_tar(stream: _Expanding, budget: _Budget) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    seen: dict[str, str] = {}
    with tarfile.open(fileobj=stream, mode="r|", tarinfo=_StrictTarInfo) as archive:  # type: ignore[call-overload]
        for member in archive:
            budget.entry()
            path = _checked_path(member.name)
            if member.issym() or member.islnk():
                raise InvalidRequest(
                    f"links are not allowed in an archive: {member.name}", details={"file": member.name}
                )
            if member.isdir():
                continue
            if not member.isreg():
                raise InvalidRequest(
                    f"only regular files and folders are allowed in an archive (not devices or fifos): {member.name}",
                    details={"file": member.name},
                )
            file = archive.extractfile(member)
            if file is not None and _keep(path, seen):
                files[path] = _read_file(file, path, budget)
    while stream.read(_CHUNK):  # the rest: a gzip or xz stream checks its CRC at its end
        pass
    return files


def _read_zip(data: bytes, budget: _Budget) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    seen: dict[str, str] = {}
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        wanted = []
        for info in archive.infolist():
            budget.entry()
            name = info.orig_filename  # zipfile cuts `filename` at a NUL
            path = _checked_path(name)
            kind = stat.S_IFMT(info.external_attr >> 16)  # Unix mode, where the tool stored one
            if kind == stat.S_IFLNK:
                raise InvalidRequest(f"links are not allowed in an archive: {name}", details={"file": name})
            if info.is_dir() or kind == stat.S_IFDIR:
                continue
            if kind not in (0, stat.S_IFREG):
                raise InvalidRequest(
                    f"only regular files and folders are allowed in an archive: {name}", details={"file": name}
                )
            if info.flag_bits & 0x1:
                raise InvalidRequest(f"encrypted zip entries are not supported: {name}", details={"file": name})
            if info.compress_type not in _ZIP_METHODS:
                raise InvalidRequest(
                    f"unsupported zip compression for {name}: use deflate or no compression", details={"file": name}
                )
            if _keep(path, seen):
                wanted.append((path, info))
        for path, info in wanted:
            with archive.open(info) as member:
                files[path] = _read_file(member, path, budget, compressed=info.compress_size)
    return files


def _checked_path(name: str) -> str:
    """The normalised relative path of an entry; refuse anything that could point elsewhere."""
    details = {"file": name[:_MAX_NAME]}
    if len(name) > _MAX_NAME:
        raise InvalidRequest(f"a name in the archive is longer than {_MAX_NAME} characters", details=details)
    if "\x00" in name:
        raise InvalidRequest(f"a name in the archive holds a NUL byte: {name!r}", details=details)
    if "\\" in name or _DRIVE.match(name):
        raise InvalidRequest(
            f"Windows-style path in the archive: {name!r}; use '/' and relative paths", details=details
        )
    if name.startswith("/"):
        raise InvalidRequest(f"absolute path in the archive: {name!r}", details=details)
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise InvalidRequest(f"path leading out of the archive: {name!r}", details=details)
    return "/".join(parts)


def _keep(path: str, seen: dict[str, str]) -> bool:
    """False for desktop noise; refuse a second file of the same name, letter case aside."""
    parts = path.split("/")
    if "__MACOSX" in parts or parts[-1] == ".DS_Store" or parts[-1].startswith("._"):
        return False
    other = seen.get(path.casefold())
    if other is not None:
        also = "" if other == path else f" (and {other}: names may not differ in letter case only)"
        raise InvalidRequest(f"duplicate name in the archive: {path}{also}", details={"file": path})
    seen[path.casefold()] = path
    return True


def _read_file(source: _Reader, path: str, budget: _Budget, *, compressed: int | None = None) -> bytes:
    """Read one file; `compressed` is a zip entry's stored size (zipfile reads no more than it)."""
    chunks: list[bytes] = []
    size = 0
    while chunk := source.read(_CHUNK):
        size += len(chunk)
        if compressed is not None:
            budget.expand(len(chunk))
            budget.expand_entry(path, size, compressed)
        budget.content(path, size, len(chunk))
        chunks.append(chunk)
    return b"".join(chunks)
