"""Start-up import: every archive of a directory, into the workspace its name gives.

    DIR/billing.tar.gz         workspace `billing`: its workspace.yaml replaces the workspace,
                               its NAME.js / NAME.py files add functions, and a one-function
                               `function.py` becomes the function `billing`
    DIR/billing/greet.tar.gz   adds to workspace `billing`; a `function.py` becomes `greet`

Archives at the top come first, then folders, each in name order, so a folder adds to what
a top-level archive of the same name laid down. Each import is a normal save (compiled
first). A failure is logged naming the file, and the next archive is imported all the same.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from fnbox.archives.archive import ARCHIVE_SUFFIXES, ArchiveLimits
from fnbox.sandboxes.errors import FnboxError, InvalidRequest
from fnbox.workspaces.runtime import Runtime

__all__ = ["ImportReport", "import_directory", "workspace_name"]

logger = logging.getLogger("fnbox")


@dataclass
class ImportReport:
    imported: list[str] = field(default_factory=list)  # the files imported
    problems: list[str] = field(default_factory=list)  # one message per file that failed


def workspace_name(filename: str) -> str | None:
    """`billing.tar.gz` gives `billing`; a name without an archive suffix gives None."""
    lowered = filename.lower()
    for suffix in ARCHIVE_SUFFIXES:
        if lowered.endswith(suffix) and len(filename) > len(suffix):
            return filename[: -len(suffix)]
    return None


async def import_directory(runtime: Runtime, directory: str | os.PathLike[str]) -> ImportReport:
    """Import every archive of `directory` (see the module docstring); never raises for one file."""
    root = Path(directory)
    report = ImportReport()
    try:
        archives = _archives(root)
    except OSError as exc:
        archives = []
        report.problems.append(f"start-up import: cannot read the directory {root}: {exc}")
        logger.error(report.problems[-1])
    for path, workspace in archives:
        problem = await _import_one(runtime, path, workspace)
        if problem is None:
            report.imported.append(str(path))
        else:
            logger.error(problem)
            report.problems.append(problem)
    logger.info("start-up import from %s: %d imported, %d failed", root, len(report.imported), len(report.problems))
    return report


async def _import_one(runtime: Runtime, path: Path, workspace: str) -> str | None:
    """Import one file; return what went wrong, or None."""
    try:
        imported = await runtime.import_archive(workspace, await asyncio.to_thread(_read, path), filename=path.name)
    except FnboxError as exc:
        return f"import of {path} failed: {exc.message}"
    except OSError as exc:
        return f"import of {path} failed: {exc}"
    except Exception as exc:  # one broken file must not stop the start
        logger.exception("import of %s failed", path)
        return f"import of {path} failed: unexpected {type(exc).__name__}: {exc}"
    logger.info(
        "imported %s into workspace %r (its functions now: %s)", path, workspace, ", ".join(sorted(imported.functions))
    )
    return None


def _archives(root: Path) -> list[tuple[Path, str]]:
    """(file, workspace) pairs in import order; skipped files are logged."""
    found: list[tuple[Path, str]] = []
    folders: list[tuple[Path, str]] = []
    for entry in sorted(root.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            folders.extend((file, entry.name) for file in sorted(entry.iterdir()) if _is_archive(file))
        elif _is_archive(entry):
            found.append((entry, workspace_name(entry.name) or entry.name))
    return found + folders


def _read(path: Path) -> bytes:
    limit = ArchiveLimits().max_total_size  # an archive bigger than what it may expand to is no archive of ours
    with path.open("rb") as file:
        data = file.read(limit + 1)
    if len(data) > limit:
        raise InvalidRequest(f"the file is over the {limit} bytes an archive may have")
    return data


def _is_archive(path: Path) -> bool:
    if path.name.startswith(".") or not path.is_file():
        return False
    if workspace_name(path.name) is None:
        logger.warning("start-up import: %s skipped: not an archive (%s)", path, ", ".join(ARCHIVE_SUFFIXES))
        return False
    return True
