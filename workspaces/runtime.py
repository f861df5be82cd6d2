"""The Runtime: the one facade over documents, the store and the pool of sandboxes.

The REST server and embedding platforms call the same four operations: put, get and
delete a workspace, and run one of its functions.

    async with Runtime("data/functions") as runtime:
        await runtime.put_workspace("test", {"functions": {"hello": {"code": "return 'hi';"}}})
        outcome = await runtime.run("test", "hello", {})
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass
from typing import Any, Mapping

from sandboxes import python
from sandboxes.base import Limits, RunResult, SandboxFactory
from sandboxes.errors import CompilationError, FnboxError, NotFound
from sandboxes.languages import sandbox_factories
from sandboxes.pool import Pool, SandboxKey, SandboxPool
from sandboxes.workers import WorkerOptions, WorkerPool
from workspaces.document import FunctionSpec, Workspace, check_parameters, check_workspace_name, parse_workspace
from workspaces.store import FileStore, StoredDocumentError

__all__ = ["Runtime", "RuntimeOptions"]

logger = logging.getLogger("fnbox")

MEGABYTE = 1024 * 1024


@dataclass(frozen=True)
class RuntimeOptions:
    """Limits and pool sizes; the server builds these from its settings."""

    js_timeout_ms: float = 20_000
    python_timeout_ms: float = 20_000
    js_memory_mb: float = 100
    python_memory_mb: float = 512
    max_warm_sandboxes: int = 500
    idle_timeout: float = 3600
    max_queue: int = 64
    python_modules: tuple[str, ...] = python.ALLOWED_MODULES
    #: Worker processes per language; 0 keeps the sandboxes in this process.
    workers: int = 0
    #: RSS cap of a JavaScript worker process, MB.
    js_worker_rss_mb: float = 2048


def make_pool(options: RuntimeOptions, factories: Mapping[str, SandboxFactory] | None = None) -> Pool:
    """Worker processes when `options.workers` is set, else sandboxes in this process."""
    if options.workers:
        return WorkerPool(
            WorkerOptions(
                workers=options.workers,
                max_sandboxes=options.max_warm_sandboxes,
                idle_timeout=options.idle_timeout,
                max_queue=options.max_queue,
                python_modules=options.python_modules,
                python_memory_mb=options.python_memory_mb,
                js_rss_mb=options.js_worker_rss_mb,
            )
        )
    return SandboxPool(
        factories=factories or sandbox_factories(python_modules=options.python_modules),
        max_sandboxes=options.max_warm_sandboxes,
        idle_timeout=options.idle_timeout,
        max_queue=options.max_queue,
    )


class Runtime:
    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        *,
        options: RuntimeOptions | None = None,
        pool: Pool | None = None,
    ) -> None:
        self.options = options or RuntimeOptions()
        self.store = FileStore(data_dir)
        self.pool = pool if pool is not None else make_pool(self.options)
        self._workspaces: dict[str, Workspace] = {}
        self._writing: dict[str, asyncio.Lock] = {}

    async def __aenter__(self) -> Runtime:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def start(self, *, recompile: bool = False) -> list[str]:
        """Load every stored workspace; return the problems found (each also logged).

        A stored file that does not parse or validate is skipped, never fatal. With
        `recompile`, every workspace is compiled now and its compile errors reported.
        """
        await self.pool.start()
        problems = []
        for name in self.store.names():
            try:
                workspace = self._load(name)
            except FnboxError as exc:
                problems.append(f"workspace {name!r} skipped: {exc.message}")
                continue
            if recompile and workspace is not None:
                problems.extend(await self._recompile(workspace))
        for problem in problems:
            logger.error(problem)
        return problems

    async def close(self) -> None:
        await self.pool.close()

    def list_workspaces(self) -> list[str]:
        return sorted(set(self._workspaces) | set(self.store.names()))

    def get_workspace(self, name: str) -> Workspace:
        check_workspace_name(name)
        workspace = self._workspaces.get(name) or self._load(name)
        if workspace is None:
            raise NotFound(f"no workspace {name!r}", details={"workspace": name})
        return workspace

    async def put_workspace(self, name: str, document: Any) -> Workspace:
        """Validate and compile a new version, then store it; the old one serves until then."""
        workspace = parse_workspace(name, document)
        async with self._writing.setdefault(name, asyncio.Lock()):
            await self._compile(workspace)
            await asyncio.to_thread(self.store.save, name, workspace.document)
            self._workspaces[name] = workspace
        return workspace

    async def delete_workspace(self, name: str) -> None:
        self.get_workspace(name)
        async with self._writing.setdefault(name, asyncio.Lock()):
            await asyncio.to_thread(self.store.delete, name)
            self._workspaces.pop(name, None)
            await self.pool.drop(name)

    async def run(self, workspace: str, function: str, parameters: Mapping[str, Any] | None = None) -> RunResult:
        current = self.get_workspace(workspace)
        spec = current.functions.get(function)
        if spec is None:
            raise NotFound(
                f"no function {function!r} in workspace {workspace!r}",
                details={"workspace": workspace, "function": function},
            )
        checked = check_parameters(spec, parameters)
        key = SandboxKey(current.name, spec.language, current.version)
        return await self.pool.run(key, current.sources[spec.language], function, checked, self.limits(spec))

    def limits(self, spec: FunctionSpec) -> Limits:
        """A function's own timeout and memory, capped by the server maxima."""
        if spec.language == "python":
            max_timeout, max_memory = self.options.python_timeout_ms, self.options.python_memory_mb
        else:
            max_timeout, max_memory = self.options.js_timeout_ms, self.options.js_memory_mb
        timeout = min(spec.timeout or max_timeout, max_timeout)
        memory = min(spec.memory or max_memory, max_memory)
        return Limits(timeout=timeout / 1000, memory=int(memory * MEGABYTE))

    def _load(self, name: str) -> Workspace | None:
        """Read a workspace from the store; a file that cannot be used counts as absent."""
        try:
            document = self.store.load(name)
            workspace = None if document is None else parse_workspace(name, document)
        except (StoredDocumentError, FnboxError) as exc:
            raise NotFound(
                f"workspace {name!r} is stored but cannot be loaded: {exc}; save it again",
                details={"workspace": name},
            ) from exc
        if workspace is not None:
            self._workspaces[name] = workspace
        return workspace

    async def _compile(self, workspace: Workspace) -> None:
        """Compile every language of a new version; raise the first CompilationError."""
        for language in sorted(workspace.languages):
            key = SandboxKey(workspace.name, language, workspace.version)
            errors = await self.pool.compile(key, workspace.sources[language])
            if errors:
                raise _first_error(errors)

    async def _recompile(self, workspace: Workspace) -> list[str]:
        problems = []
        for language in sorted(workspace.languages):
            key = SandboxKey(workspace.name, language, workspace.version)
            errors = await self.pool.compile(key, workspace.sources[language], keep_on_error=True)
            problems.extend(f"workspace {workspace.name!r}: {error.message}" for error in errors.values())
        return problems


def _first_error(errors: Mapping[str, CompilationError]) -> CompilationError:
    first = next(iter(errors.values()))
    if len(errors) > 1:
        first.details = {**first.details, "others": sorted(errors)[1:]}
    return first
