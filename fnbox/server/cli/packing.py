"""What `fnbox deploy` uploads for a path: an archive as it is, or a folder or file packed in memory.

- an archive (`.zip`, `.tar`, `.tar.gz`, `.tgz`, `.tar.xz`, ...): sent as it is;
- a folder: its `workspace.yaml` alone if it has one, else its `NAME.js` / `NAME.py` and
  `NAME.yaml` files (other files and subfolders are left out, and said so);
- a `.yaml`, `.yml` or `.json` file: the workspace document;
- a `NAME.js` or `NAME.py` file: that one function, with `NAME.yaml` beside it if there is one.

The server reads what is sent exactly as an uploaded archive, with the same checks.
"""

from __future__ import annotations

import io
import tarfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PackError", "Upload", "pack"]

WORKSPACE_FILES = ("workspace.yaml", "workspace.yml", "workspace.json")
DOCUMENT_SUFFIXES = (".yaml", ".yml", ".json")
SOURCE_SUFFIXES = (".js", ".py")
SEED_SOURCES = ("function.js", "function.py")


class PackError(Exception):
    """A path that cannot be deployed, with what to do instead."""


@dataclass(frozen=True)
class Upload:
    data: bytes
    #: The uploaded file's name: a one-function archive's `function.py` becomes the function it names.
    filename: str
    #: Files of a folder that were left out.
    skipped: tuple[str, ...] = ()


def pack(path: Path) -> Upload:
    if path.is_dir():
        return _pack_folder(path)
    if not path.is_file():
        raise PackError(f"{path}: no such file or folder")
    name = path.name.lower()
    if name.endswith(DOCUMENT_SUFFIXES):
        target = "workspace.json" if name.endswith(".json") else "workspace.yaml"
        return Upload(_tar({target: path}), f"{path.stem}.tar.gz")
    if name.endswith(SOURCE_SUFFIXES):
        files = {path.name: path}
        for suffix in (".yaml", ".yml"):
            meta = path.with_suffix(suffix)
            if meta.is_file():
                files[meta.name] = meta
        # A lone function.py is named after its folder, as a one-function archive is after its file.
        seed = path.name in SEED_SOURCES
        return Upload(_tar(files), f"{path.resolve().parent.name if seed else path.stem}.tar.gz")
    return Upload(path.read_bytes(), path.name)


def _pack_folder(folder: Path) -> Upload:
    entries = sorted(entry for entry in folder.iterdir() if not entry.name.startswith("."))
    documents = [entry for entry in entries if entry.name in WORKSPACE_FILES and entry.is_file()]
    if documents:
        chosen = {documents[0].name: documents[0]}
    else:
        chosen = {
            entry.name: entry
            for entry in entries
            if entry.is_file() and entry.name.lower().endswith((*SOURCE_SUFFIXES, ".yaml", ".yml"))
        }
    if not chosen:
        raise PackError(f"{folder} holds no workspace.yaml and no NAME.js / NAME.py file: nothing to deploy")
    skipped = tuple(
        f"{entry.name}/" if entry.is_dir() else entry.name
        for entry in entries
        if entry.name not in chosen and entry.name != "__pycache__"
    )
    return Upload(_tar(chosen), f"{folder.resolve().name}.tar.gz", skipped)


def _tar(files: dict[str, Path]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.USTAR_FORMAT) as archive:
        for name, path in files.items():
            data = path.read_bytes()
            member = tarfile.TarInfo(name)
            member.size, member.mode = len(data), 0o644
            archive.addfile(member, io.BytesIO(data))
    return buffer.getvalue()
