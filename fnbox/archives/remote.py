"""Start-up import from object storage: `FUNCTIONS_LOCATION=s3://bucket/prefix`.

The objects are laid out as a directory's files are (see archives/imports.py):
`prefix/billing.tar.gz` is workspace `billing`, `prefix/billing/greet.tar.gz` adds to it;
top-level archives first, then folders, each in name order. A failure is logged naming the
object, and the next one is imported all the same.
"""

from __future__ import annotations

import asyncio
import logging

from fnbox.archives.archive import ArchiveLimits
from fnbox.archives.imports import ImportReport, workspace_name
from fnbox.objects import S3Location, list_keys, read_object, s3_client
from fnbox.sandboxes.errors import FnboxError
from fnbox.workspaces.runtime import Runtime

__all__ = ["import_s3"]

logger = logging.getLogger("fnbox")


async def import_s3(runtime: Runtime, location: str) -> ImportReport:
    """Import every archive under `location`; never raises for one object."""
    where = S3Location(location)
    report = ImportReport()
    try:
        client = await asyncio.to_thread(s3_client)
        keys = await asyncio.to_thread(list_keys, client, where)
    except Exception as exc:  # an unreachable endpoint, no such bucket, no credentials
        report.problems.append(f"start-up import: cannot list {where}: {exc}")
        logger.error(report.problems[-1])
        return report
    for key, workspace in _archives(where, keys):
        problem = await _import_one(runtime, client, where, key, workspace)
        if problem is None:
            report.imported.append(key)
        else:
            logger.error(problem)
            report.problems.append(problem)
    logger.info("start-up import from %s: %d imported, %d failed", where, len(report.imported), len(report.problems))
    return report


def _archives(where: S3Location, keys: list[str]) -> list[tuple[str, str]]:
    top: list[tuple[str, str]] = []
    folders: list[tuple[str, str]] = []
    for key in keys:
        parts = where.relative(key).split("/")
        if any(part.startswith(".") or not part for part in parts) or len(parts) > 2:
            continue
        name = workspace_name(parts[-1])
        if name is None:
            logger.warning("start-up import: %s skipped: not an archive", key)
        elif len(parts) == 1:
            top.append((key, name))
        else:
            folders.append((key, parts[0]))
    return top + folders


async def _import_one(runtime: Runtime, client: object, where: S3Location, key: str, workspace: str) -> str | None:
    filename = key.rsplit("/", 1)[-1]
    try:
        data = await asyncio.to_thread(read_object, client, where, key, ArchiveLimits().max_total_size)
        imported = await runtime.import_archive(workspace, data, filename=filename)
    except FnboxError as exc:
        return f"import of s3://{where.bucket}/{key} failed: {exc.message}"
    except Exception as exc:  # one broken object must not stop the start
        return f"import of s3://{where.bucket}/{key} failed: {type(exc).__name__}: {exc}"
    logger.info(
        "imported s3://%s/%s into workspace %r (its functions now: %s)",
        where.bucket,
        key,
        workspace,
        ", ".join(sorted(imported.functions)),
    )
    return None
