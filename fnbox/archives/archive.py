"""Function archives: what an uploaded zip or tar means, and the `.tar.gz` a workspace exports to.

An archive holds one of three layouts, after one common top folder is stripped (people
archive a folder):

- `workspace.yaml` (or `.yml`, or `workspace.json`): the whole document; it replaces the workspace.
- `NAME.js` / `NAME.py`, one per function, each with an optional `NAME.yaml` for its other
  fields (parameters, timeout, memory, description); they add or replace those functions.
- a one-function archive: a single `function.py` or `function.js` (optional `function.yaml`): one function
  named by the caller, or after the uploaded file (`greet.tar.gz` gives `greet`).

Unpacking, with its caps and its refusals of hostile entries, is `unpack`'s job.
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from dataclasses import dataclass, field
from typing import Any, Literal

import yaml

from fnbox.archives.unpack import WORKSPACE_FILES, ArchiveLimits, unpack
from fnbox.sandboxes.errors import InvalidRequest
from fnbox.sandboxes.languages import LANGUAGES as ALL_LANGUAGES
from fnbox.workspaces import yaml_text
from fnbox.workspaces.document import parse_workspace

__all__ = ["ArchiveContents", "ArchiveLimits", "merge_functions", "read_archive", "write_archive"]

#: The language of a source file, by its suffix.
LANGUAGES = {language.suffix: language.name for language in ALL_LANGUAGES.values()}
META_SUFFIXES = (".yaml", ".yml")
SEED_NAME = "function"
# Longest first: `greet.tar.gz` loses `.tar.gz`, not just `.gz`.
ARCHIVE_SUFFIXES = (".tar.gz", ".tar.xz", ".tgz", ".txz", ".zip", ".tar", ".gz", ".xz")
LAYOUT = "an archive holds workspace.yaml, or NAME.js / NAME.py with optional NAME.yaml"


@dataclass(frozen=True)
class ArchiveContents:
    """What an archive holds: a whole document, or functions to add to one."""

    kind: Literal["workspace", "functions"]
    format: str  # zip, tar, tar.gz, tar.xz, gz or xz: what the content turned out to be
    document: dict[str, Any] | None = None  # kind "workspace"
    functions: dict[str, dict[str, Any]] = field(default_factory=dict)  # kind "functions"

    def apply(self, existing: dict[str, Any] | None) -> dict[str, Any]:
        """The workspace after the import: a workspace.yaml replaces it, function files add to it."""
        if self.document is not None:
            return self.document
        return merge_functions(existing, self.functions)


def read_archive(
    data: bytes,
    *,
    filename: str | None = None,
    function: str | None = None,
    limits: ArchiveLimits = ArchiveLimits(),
) -> ArchiveContents:
    """Read an archive recognised from its content; raise InvalidRequest naming the fault.

    `filename` (the uploaded file's name) and `function` only name a one-function archive's `function.py`.
    """
    container, entries = unpack(data, limits)
    files = _top_level(entries)
    if not files:
        raise InvalidRequest(f"the archive is empty: {LAYOUT}")
    for path in files:
        if path not in WORKSPACE_FILES and not path.endswith((*LANGUAGES, *META_SUFFIXES)):
            raise InvalidRequest(f"unknown file type: {path}; {LAYOUT}", details={"file": path})
    documents = [path for path in files if path in WORKSPACE_FILES]
    if documents:
        if len(files) > 1:
            others = ", ".join(sorted(path for path in files if path != documents[0]))
            raise InvalidRequest(
                f"{documents[0]} holds the whole workspace: it cannot come with other files ({others})",
                details={"file": documents[0]},
            )
        _no_function_argument(function, documents[0])
        document = _load_mapping(documents[0], files[documents[0]])
        return ArchiveContents(kind="workspace", format=container, document=document)
    functions = _functions(files)
    if SEED_NAME in functions:
        functions = _seed(functions, function, filename)
    else:
        _no_function_argument(function, "NAME.js / NAME.py files")
    _check(functions)
    return ArchiveContents(kind="functions", format=container, functions=functions)


def write_archive(document: dict[str, Any]) -> bytes:
    """The workspace as a `.tar.gz` of one `workspace.yaml`: same document, same bytes, every time."""
    text = yaml_text.dump(document)
    content = text.encode("utf-8")
    member = tarfile.TarInfo(WORKSPACE_FILES[0])
    member.size, member.mode, member.mtime = len(content), 0o644, 0
    buffer = io.BytesIO()
    with (
        gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0) as compressed,
        tarfile.open(fileobj=compressed, mode="w", format=tarfile.USTAR_FORMAT) as archive,
    ):
        archive.addfile(member, io.BytesIO(content))
    return buffer.getvalue()


def merge_functions(document: dict[str, Any] | None, functions: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A copy of `document` with `functions` added or replaced; its other functions and keys are kept."""
    merged = dict(document or {})
    merged["functions"] = {**(merged.get("functions") or {}), **functions}
    return merged


def _top_level(entries: dict[str, bytes]) -> dict[str, bytes]:
    """Strip one folder that holds everything; refuse files in subfolders."""
    tops = {path.split("/", 1)[0] for path in entries}
    if len(tops) == 1 and all("/" in path for path in entries):
        entries = {path.split("/", 1)[1]: data for path, data in entries.items()}
    for path in entries:
        if "/" in path:
            raise InvalidRequest(
                f"unexpected file in a subfolder: {path}; {LAYOUT}, at the top level or in one folder",
                details={"file": path},
            )
    return entries


def _functions(files: dict[str, bytes]) -> dict[str, dict[str, Any]]:
    sources: dict[str, str] = {}
    metas: dict[str, str] = {}
    for path in sorted(files):
        stem, _, suffix = path.rpartition(".")
        found = sources if "." + suffix in LANGUAGES else metas
        if stem in found:
            raise InvalidRequest(
                f"function {stem!r} comes twice: {found[stem]} and {path}", details={"function": stem, "file": path}
            )
        found[stem] = path
    for stem, path in metas.items():
        if stem not in sources:
            raise InvalidRequest(f"{path} has no {stem}.js or {stem}.py beside it", details={"file": path})
    functions = {}
    for stem, path in sources.items():
        fields = _load_mapping(metas[stem], files[metas[stem]]) if stem in metas else {}
        for key in ("code", "language"):
            if key in fields:
                raise InvalidRequest(
                    f"{metas[stem]}: remove {key!r}; the code and its language come from {path}",
                    details={"file": metas[stem]},
                )
        language = LANGUAGES["." + path.rpartition(".")[2]]
        functions[stem] = {"language": language, **fields, "code": _text(path, files[path])}
    return functions


def _seed(
    functions: dict[str, dict[str, Any]], function: str | None, filename: str | None
) -> dict[str, dict[str, Any]]:
    """Seed 000's `function.py`, named by the caller or after the uploaded file."""
    if len(functions) > 1:
        others = ", ".join(sorted(name for name in functions if name != SEED_NAME))
        raise InvalidRequest(f"function.py or function.js is the only function of its archive; remove {others}")
    spec = functions[SEED_NAME]
    if function is not None:
        return {function: spec}
    base = (filename or "").replace("\\", "/").rpartition("/")[2]
    if not base:
        raise InvalidRequest("name the function of a function.py archive: pass ?function=NAME")
    name = next((base[: -len(suffix)] for suffix in ARCHIVE_SUFFIXES if base.lower().endswith(suffix)), base)
    try:
        _check({name: {"language": spec["language"], "code": ""}})  # the name alone
    except InvalidRequest as exc:
        raise InvalidRequest(
            f"{exc.message} (named after the file {base}; pass ?function=NAME to choose a name)", details=exc.details
        ) from exc
    return {name: spec}


def _no_function_argument(function: str | None, held: str) -> None:
    if function is not None:
        raise InvalidRequest(f"'function' names the function of a function.py or function.js archive, not {held}")


def _check(functions: dict[str, dict[str, Any]]) -> None:
    """Check the functions as a saved document's are, so a bad one is named before anything is merged."""
    parse_workspace("archive", {"functions": functions})


def _text(path: str, data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")  # a leading BOM is dropped
    except UnicodeDecodeError as exc:
        raise InvalidRequest(
            f"{path} is not UTF-8 text (invalid byte at offset {exc.start})", details={"file": path}
        ) from exc


def _load_mapping(path: str, data: bytes) -> dict[str, Any]:
    text = _text(path, data)
    syntax = "JSON" if path.endswith(".json") else "YAML"
    try:
        value = json.loads(text) if syntax == "JSON" else yaml.load(text, Loader=yaml_text.Loader)
    except (yaml.YAMLError, ValueError, RecursionError) as exc:
        raise InvalidRequest(f"{path} is not valid {syntax}: {exc}", details={"file": path}) from exc
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidRequest(
            f"{path} must hold a mapping of keys to values, not a {type(value).__name__}", details={"file": path}
        )
    _check_expansion(path, value, len(data))
    return value


def _check_expansion(path: str, value: Any, size: int) -> None:
    """YAML aliases let a few lines stand for billions of nodes: refuse more nodes than bytes."""
    remaining = size + 64
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, (dict, list)):
            remaining -= 2 * len(item) if isinstance(item, dict) else len(item)
            if remaining < 0:
                raise InvalidRequest(f"{path}: its YAML aliases expand too far", details={"file": path})
            pending.extend([*item.keys(), *item.values()] if isinstance(item, dict) else item)
