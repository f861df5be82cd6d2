"""The Runtime: the one facade over documents, the store and the pool of sandboxes.

The REST server and embedding platforms call the same operations: put, get and delete
a workspace, run one of its functions, and start runs in the background and
read, wait for, cancel and follow their executions, each recorded in SQLite beside the
workspaces.

    async with Runtime("data/functions") as runtime:
        await runtime.put_workspace("test", {"functions": {"hello": {"code": "return 'hi';"}}})
        outcome = await runtime.run("test", "hello", {})
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from fnbox import metrics
from fnbox.archives.archive import read_archive
from fnbox.database import Database
from fnbox.executions.bounds import RecordBounds
from fnbox.executions.logsink import LogSink
from fnbox.executions.opening import open_records
from fnbox.executions.pgqueue import PgScheduler
from fnbox.executions.pgrecords import PgExecutionStore
from fnbox.executions.recorder import INTERVAL, SHARED_INTERVAL, Recorder
from fnbox.executions.records import Execution, ExecutionStatus, ExecutionStore, new_execution_id
from fnbox.executions.scheduler import EndEvent, LogEvent, Scheduler
from fnbox.sandboxes.base import MAX_KEPT_LIMITS, Limits, LogEntry, RunResult, SandboxFactory
from fnbox.sandboxes.errors import CompilationError, Conflict, FnboxError, NotFound, Overloaded, PreconditionFailed
from fnbox.sandboxes.js.names import NODE_MODULES
from fnbox.sandboxes.languages import sandbox_factories
from fnbox.sandboxes.network import EgressSettings
from fnbox.sandboxes.pool import IDLE_TIMEOUT, MAX_QUEUE, MAX_SANDBOXES, Pool, SandboxKey, SandboxPool
from fnbox.sandboxes.quarantine import QUARANTINE_SECONDS
from fnbox.sandboxes.supervisor import JS_WORKER_RSS_MB, PYTHON_MEMORY_MB, WorkerOptions, WorkerPool
from fnbox.workspaces.changes import ApplyOther, ChangeFeed
from fnbox.workspaces.document import FunctionSpec, Workspace, check_parameters, check_workspace_name, parse_workspace
from fnbox.workspaces.pgchanges import Follower
from fnbox.workspaces.pgsecrets import SECRETS, PgSecretStore
from fnbox.workspaces.pgstore import PgStore
from fnbox.workspaces.secrets import SecretStore, redact, redact_error
from fnbox.workspaces.store import FileStore, StoredDocumentError
from fnbox.workspaces.stores import ABSENT, WorkspaceStore

__all__ = ["Runtime", "RuntimeOptions"]

logger = logging.getLogger("fnbox")

MEGABYTE = 1024 * 1024
#: The execution database, in the data directory (not a workspace: no workspace.yaml).
EXECUTIONS_FILENAME = "executions.sqlite3"
NOT_STARTED = "the Runtime is not started: use `async with Runtime(...)` or `await runtime.start()`"
INTERRUPTED = "the service stopped while this execution was waiting or running"
#: Times an archive of functions is merged into its workspace when saves through other instances keep coming first.
MERGE_ATTEMPTS = 20
#: Seconds an asynchronous execution's lease outlasts the longest run timeout (see executions/pgqueue.py).
LEASE_MARGIN = 5.0
#: Seconds a step of closing may take beyond the time it is given (see Runtime.close).
CLOSE_TIMEOUT = 10.0


@dataclass(frozen=True)
class RuntimeOptions:
    """Limits and pool sizes; the server builds these from its settings."""

    js_timeout_ms: float = 20_000
    python_timeout_ms: float = 20_000
    js_memory_mb: float = 100
    python_memory_mb: float = PYTHON_MEMORY_MB
    max_warm_sandboxes: int = MAX_SANDBOXES
    idle_timeout: float = IDLE_TIMEOUT
    max_queue: int = MAX_QUEUE
    #: The modules a Python function may import; None: every vetted module.
    python_modules: tuple[str, ...] | None = None
    #: The Node modules a JavaScript function may require.
    node_modules: tuple[str, ...] = NODE_MODULES
    #: Worker processes per language; 0 keeps the sandboxes in this process.
    workers: int = 0
    #: RSS cap of a JavaScript worker process, MB.
    js_worker_rss_mb: float = JS_WORKER_RSS_MB
    #: Record synchronous runs too (asynchronous ones always are: they are read back by id).
    record_runs: bool = True
    #: Ended execution records kept: the newest `executions_max_count`, none older than `executions_max_age` s.
    executions_max_count: int = 100_000
    executions_max_age: float = 30 * 86400
    #: Bytes of result and logs one record keeps, and bytes all records may take (oldest ended go first).
    executions_max_record_bytes: int = MEGABYTE
    executions_max_bytes: int = 1024 * MEGABYTE
    #: Asynchronous executions waiting or running at once, all workspaces together.
    executions_queue: int = 1000
    #: Asynchronous executions of one workspace running at once.
    executions_per_workspace: int = 4
    #: Seconds executions in flight get to end when the Runtime closes; then they are cancelled.
    shutdown_grace: float = 30
    #: Fernet keys of the workspace secrets (comma-separated, the first encrypts); None: secrets.key.
    secrets_key: str | None = field(default=None, repr=False)
    #: Seconds a workspace whose run got its worker killed runs on a worker of its own.
    quarantine_seconds: float = QUARANTINE_SECONDS
    #: A directory or s3://bucket/prefix where each ended execution's logs go as one object; None: nowhere.
    logs_location: str | None = None
    #: postgresql://...: workspaces shared by every instance on that database; None: files in the data directory.
    database_url: str | None = field(default=None, repr=False)
    #: 0: every run sees every save answered before it started, on any instance; N: at most N ms late, for throughput.
    database_max_staleness_ms: float = 0
    #: Milliseconds an instance serves from what it holds after acknowledging the changes; what its death costs a save.
    database_lease_ms: float = 2000
    #: Where functions may send requests: `public`, `none` or an allow-list (see sandboxes.egress).
    egress: str = "public"
    #: Per run: requests made, requests open at once, bytes of one request or response body.
    egress_max_requests: int = 50
    egress_max_concurrency: int = 6
    egress_max_response_bytes: int = 10 * MEGABYTE
    #: Runs of one warm sandbox that may overlap while they wait (on the network, a sleep).
    concurrency_per_sandbox: int = 32
    #: Short Python runs on a worker's loop thread, without the hop to a run thread (see sandboxes.python.inline).
    python_inline_runs: bool = True
    #: CPUs the worker processes may use; None: those of the process that starts them. `fnbox serve`
    #: sets them when it keeps itself to one CPU (see server.affinity).
    worker_cpus: tuple[int, ...] | None = None
    #: (host, port) pairs fnbox itself listens on, never reachable by a function; the server sets them.
    egress_own: tuple[tuple[str, int], ...] = ()

    def egress_settings(self) -> EgressSettings:
        return EgressSettings(
            policy=self.egress,
            max_requests=self.egress_max_requests,
            max_concurrency=self.egress_max_concurrency,
            max_bytes=self.egress_max_response_bytes,
            own=self.egress_own,
        )


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
                node_modules=options.node_modules,
                python_memory_mb=options.python_memory_mb,
                js_rss_mb=options.js_worker_rss_mb,
                egress=options.egress_settings(),
                concurrency_per_sandbox=options.concurrency_per_sandbox,
                quarantine_seconds=options.quarantine_seconds,
                python_inline_runs=options.python_inline_runs,
                cpus=options.worker_cpus,
            )
        )
    return SandboxPool(
        factories=factories
        or sandbox_factories(python_modules=options.python_modules, node_modules=options.node_modules),
        max_sandboxes=options.max_warm_sandboxes,
        idle_timeout=options.idle_timeout,
        max_queue=options.max_queue,
        egress=options.egress_settings().build(),
        concurrency_per_sandbox=options.concurrency_per_sandbox,
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
        self.store: WorkspaceStore = FileStore(data_dir)
        self.database: Database | None = None
        self._feed: ChangeFeed | None = None
        self._log_sink: LogSink | None = None
        if self.options.database_url:
            self.database = Database(self.options.database_url)
            self.store = PgStore(self.database)
        self.pool = pool if pool is not None else make_pool(self.options)
        #: What the change feed keeps current besides workspaces, by kind of change (see `share`).
        self._followers: dict[str, Follower] = {}
        if self.database is None:
            self.secrets = SecretStore(data_dir, keys=self.options.secrets_key)
        else:
            self.secrets = shared_secrets = PgSecretStore(self.database, data_dir, keys=self.options.secrets_key)
            self.share(SECRETS, shared_secrets)
        self._executions_path = Path(data_dir) / EXECUTIONS_FILENAME
        self._records: ExecutionStore | None = None
        self._recorder: Recorder | None = None
        self._scheduler: Scheduler | PgScheduler | None = None
        self._workspaces: dict[str, Workspace] = {}
        self._writing: dict[str, asyncio.Lock] = {}
        #: `limits` by a function's (language, timeout, memory), under these options (fixed once built).
        self._kept_limits: dict[tuple[str, float | None, float | None], Limits] = {}

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
        await self._open_database()
        if self.options.logs_location:
            self._log_sink = LogSink(self.options.logs_location)
            self._log_sink.start()
        await self._open_executions()
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
        if self._feed is not None:
            self._feed.follow()  # everything is loaded: what it acknowledges from now on is served
        return problems

    async def close(self) -> None:
        """Let executions in flight end (up to `shutdown_grace`), then stop everything.

        Each step is bounded: one that hangs (a lost connection, say) is logged and passed
        over, so that the rest still closes and the process can end.
        """
        if self._scheduler is not None:
            await _bounded(
                "the executions", self._scheduler.close(self.options.shutdown_grace), self.options.shutdown_grace
            )
        if self._recorder is not None:
            await _bounded("the recorder", self._recorder.close())
        if self._log_sink is not None:
            await _bounded("the log sink", self._log_sink.close())
        await _bounded("the sandboxes", self.pool.close())
        if self._records is not None:
            self._records.close()
        if self._feed is not None:
            await _bounded("the change feed", self._feed.close())
        if self.database is not None:
            await _bounded("the database", asyncio.to_thread(self.database.close))

    async def _open_database(self) -> None:
        if self.database is None:
            return
        await asyncio.to_thread(self.database.open)
        self._feed = ChangeFeed(
            self.database.url,
            self._apply_changes,
            max_staleness=self.options.database_max_staleness_ms / 1000,
            lease=self.options.database_lease_ms / 1000,
            others={kind: _reloading(follower) for kind, follower in self._followers.items()},
        )
        await self._feed.start()  # before the workspaces are read: a change meanwhile is applied again
        if not self.options.secrets_key:
            logger.warning(
                "FNBOX_SECRETS_KEY is not set: this instance encrypts secrets with its own secrets.key, which every "
                "instance sharing the database needs too; set the same FNBOX_SECRETS_KEY on every instance"
            )
        try:
            for follower in self._followers.values():  # secrets first: a key that cannot read them stops the start
                await asyncio.to_thread(follower.load)
        except BaseException:
            await self._feed.close()
            await asyncio.to_thread(self.database.close)
            raise

    async def publish(self) -> None:
        """After this instance changed something shared (a secret, a token): apply it here, in order, then answer.

        It answers once every other instance holding a lease has it too (see fnbox/workspaces/presence.py).
        """
        if self._feed is not None:
            await self._feed.publish()

    def share(self, kind: str, follower: Follower) -> None:
        """Keep `follower` current through the change feed's changes of `kind` (call before `start`)."""
        self._followers[kind] = follower

    async def refresh(self) -> None:
        """Apply the changes other instances made to workspaces, secrets and tokens (with a shared database)."""
        if self._feed is not None:
            await self._feed.catch_up()

    async def _apply_changes(self, names: list[str], documents: dict[str, dict[str, Any]]) -> None:
        for name in names:
            document = documents.get(name)
            try:
                workspace = None if document is None else parse_workspace(name, document)
            except FnboxError:
                workspace = None  # reading it again says why it cannot be used
            if workspace is not None:
                self._workspaces[name] = workspace
            elif self._workspaces.pop(name, None) is not None:
                await self.pool.drop(name)

    async def _open_executions(self) -> None:
        options = self.options
        bounds = RecordBounds(options.executions_max_record_bytes, options.executions_max_bytes)
        if self.database is not None:
            shared = PgExecutionStore(self.database, bounds=bounds)
            records = cast(ExecutionStore, shared)  # the same methods
            interrupted = await asyncio.to_thread(shared.mark_interrupted, INTERRUPTED)
        else:
            records, interrupted = await asyncio.to_thread(open_records, self._executions_path, bounds, INTERRUPTED)
        self._records = records
        if interrupted:
            logger.warning("%d executions were cut short by the last stop; they are marked failed", interrupted)
        self._recorder = Recorder(
            records,
            interval=INTERVAL if self.database is None else SHARED_INTERVAL,
            max_count=options.executions_max_count,
            max_age=options.executions_max_age,
        )
        self._recorder.start()
        scheduler: Scheduler | PgScheduler
        if self.database is not None:
            longest = max(options.js_timeout_ms, options.python_timeout_ms) / 1000
            scheduler = self._scheduler = PgScheduler(
                cast(PgExecutionStore, records),
                self._run_execution,
                max_queue=options.executions_queue,
                per_workspace=options.executions_per_workspace,
                lease=longest + LEASE_MARGIN,
            )
            scheduler.start()
        else:
            scheduler = self._scheduler = Scheduler(
                records,
                self._run_execution,
                max_queue=options.executions_queue,
                per_workspace=options.executions_per_workspace,
            )
        metrics.EXECUTIONS_QUEUED.set_function(lambda: len(scheduler))

    def list_workspaces(self) -> list[str]:
        return sorted(set(self._workspaces) | set(self.store.names()))

    def get_workspace(self, name: str) -> Workspace:
        check_workspace_name(name)
        workspace = self._workspaces.get(name) or self._load(name)
        if workspace is None:
            raise NotFound(f"no workspace {name!r}", details={"workspace": name})
        return workspace

    async def put_workspace(self, name: str, document: Any, *, expected: str | None = None) -> Workspace:
        """Validate and compile a new version, then store it; the old one serves until then.

        With `expected` (a version, ANY or ABSENT of fnbox.workspaces.stores), only if the
        stored version is that one: PreconditionFailed otherwise.
        """
        async with self._writing.setdefault(name, asyncio.Lock()):
            return await self._put_locked(name, document, expected)

    async def _put_locked(self, name: str, document: Any, expected: str | None = None) -> Workspace:
        workspace = parse_workspace(name, document)
        await self._compile(workspace)
        change = await asyncio.to_thread(self.store.save, name, workspace.document, expected=expected)
        # A shared database: the change feed keeps every version in order, this one included,
        # and the save is answered once every instance serving has it.
        if self._feed is None or not await self._feed.publish(change):
            self._workspaces[name] = workspace
        return workspace

    async def delete_workspace(self, name: str, *, expected: str | None = None) -> None:
        await self.refresh()
        self.get_workspace(name)
        async with self._writing.setdefault(name, asyncio.Lock()):
            await asyncio.to_thread(self.store.delete, name, expected=expected)
            self._workspaces.pop(name, None)
            await self.pool.drop(name)
            if self._feed is not None:
                await self._feed.publish()

    async def run(
        self,
        workspace: str,
        function: str,
        parameters: Mapping[str, Any] | None = None,
        *,
        owner: str | None = None,
    ) -> RunResult:
        """Run a function and wait for it.

        When runs are recorded, the result (or the error) names the record: `execution_id`;
        `owner` names the token that asked for the run in it.
        """
        if self._feed is not None:  # as `refresh`, without a coroutine of its own
            await self._feed.catch_up()
        current, spec, checked = self._prepare(workspace, function, parameters)
        key = SandboxKey(current.name, spec.language, current.version)
        if self._recorder is None or not self.options.record_runs:
            return await self._run_on_pool(key, current, spec, function, checked)
        # The record is made once, in its final form: a run that succeeds (most) costs one
        # constructor call here, and the writer's thread makes its row.
        execution_id, started = new_execution_id(), time.time()
        try:
            outcome = await self._run_on_pool(key, current, spec, function, checked)
        except BaseException as exc:
            execution = Execution(
                execution_id, current.name, function, current.version, spec.language, checked,
                ExecutionStatus.RUNNING, started, started, owner=owner,
            )  # fmt: skip
            if isinstance(exc, FnboxError):
                execution.fail(exc)
                exc.execution_id = execution_id
                exc.details = {**exc.details, "execution": execution_id}  # where the caller finds the record
            elif isinstance(exc, asyncio.CancelledError):
                execution.dismiss(
                    "the run was cancelled before it ended (its client went away, or the service stopped)"
                )
            self._record_run(execution)
            raise
        result, logs, duration = outcome.result, outcome.logs, outcome.duration
        ended = Execution(
            execution_id, current.name, function, current.version, spec.language, checked,
            ExecutionStatus.SUCCESSFUL, started, started, time.time(), result, logs, duration, None, owner,
        )  # fmt: skip
        self._record_run(ended)
        return RunResult(result, logs, duration, execution_id)

    def _record_run(self, execution: Execution) -> None:
        assert self._recorder is not None
        self._recorder.record(execution)
        if self._log_sink is not None:
            self._log_sink.put(execution)

    # ---- executions --------------------------------------------------------------------

    async def start_run(
        self,
        workspace: str,
        function: str,
        parameters: Mapping[str, Any] | None = None,
        *,
        execution_id: str | None = None,
        owner: str | None = None,
    ) -> Execution:
        """Accept a run to go on in the background; bad names and parameters are refused now.

        Raises Conflict if `execution_id` is taken, Overloaded when too many wait.
        """
        await self.refresh()
        current, spec, checked = self._prepare(workspace, function, parameters)
        if execution_id is not None and await self._started_recorder().get(execution_id) is not None:
            # A record still queued for writing is not in the table yet: its id is taken all the same.
            raise Conflict(f"an execution {execution_id!r} already exists", details={"id": execution_id})
        execution = Execution(
            execution_id or new_execution_id(),
            current.name,
            function,
            current.version,
            spec.language,
            checked,
            owner=owner,
        )
        return await self._executions().submit(execution)

    async def get_execution(self, execution_id: str) -> Execution:
        found = self._executions().live(execution_id) or await self._started_recorder().get(execution_id)
        if found is None:
            raise NotFound(f"no execution {execution_id!r}", details={"id": execution_id})
        return found

    async def list_executions(
        self,
        *,
        workspace: str | None = None,
        function: str | None = None,
        status: str | None = None,
        limit: int = 50,
        after: str | None = None,
        **narrowed: Any,
    ) -> tuple[list[Execution], str | None]:
        """A page of executions, newest first, and the cursor of the next page (None on the last).

        `narrowed` are ExecutionStore.list's filters of access control (`workspaces`, `owner`).
        """
        items, cursor = await self._started_recorder().list(
            workspace=workspace, function=function, status=status, limit=limit, after=after, **narrowed
        )
        live = self._executions().live
        return [live(item.id) or item for item in items], cursor

    async def wait_execution(self, execution_id: str, timeout: float) -> Execution:
        """The execution as soon as it ends, or as it is when `timeout` seconds pass."""
        found = await self._executions().wait(execution_id, timeout)
        return found if found is not None else await self.get_execution(execution_id)

    async def cancel_execution(self, execution_id: str) -> Execution:
        """Stop an execution (it ends `dismissed`); Conflict if it has ended already."""
        cancelled = await self._executions().cancel(execution_id)
        if cancelled is not None:
            return cancelled
        ended = await self.get_execution(execution_id)
        raise Conflict(
            f"execution {execution_id!r} has already ended ({ended.status}); there is nothing to cancel",
            details={"id": execution_id, "status": str(ended.status)},
        )

    async def follow_execution(
        self, execution_id: str, *, start: int = 0, follow: bool = True, heartbeat: float | None = None
    ) -> AsyncIterator[LogEvent | EndEvent | None]:
        """Its log entries from index `start` as they come, then its end (see Scheduler.follow)."""
        scheduler = self._executions()
        if scheduler.live(execution_id) is not None or (
            isinstance(scheduler, PgScheduler) and not (await self.get_execution(execution_id)).ended
        ):  # an execution another instance holds is followed through the database
            async for event in scheduler.follow(execution_id, start=start, follow=follow, heartbeat=heartbeat):
                yield event
            return
        ended = await self.get_execution(execution_id)
        for index in range(start, len(ended.logs)):
            yield LogEvent(index, ended.logs[index])
        yield EndEvent(ended)

    def _executions(self) -> Scheduler | PgScheduler:
        if self._scheduler is None:
            raise RuntimeError(NOT_STARTED)
        return self._scheduler

    def _started_recorder(self) -> Recorder:
        if self._recorder is None:
            raise RuntimeError(NOT_STARTED)
        return self._recorder

    async def _run_execution(self, execution: Execution, on_log: Callable[[LogEntry], None]) -> RunResult:
        sink = self._log_sink
        if sink is None:
            return await self._run_execution_now(execution, on_log)
        ended = dataclasses.replace(execution, logs=execution.logs)  # the scheduler writes its own end
        try:
            outcome = await self._run_execution_now(execution, on_log)
        except FnboxError as exc:
            ended.fail(exc)
            raise
        except asyncio.CancelledError:
            ended.dismiss("the execution was cancelled, or the service stopped, before it ended")
            raise
        else:
            ended.succeed(outcome)
        finally:
            ended.version = execution.version
            sink.put(ended)
        return outcome

    async def _run_execution_now(self, execution: Execution, on_log: Callable[[LogEntry], None]) -> RunResult:
        # The version current when the run starts, as for a synchronous run; it may be newer
        # than the one the execution was accepted for, or the function may be gone.
        await self.refresh()
        current, spec, _ = self._prepare(execution.workspace, execution.function, None)
        key = SandboxKey(current.name, spec.language, current.version)
        execution.version = current.version
        metrics.EXECUTION_WAIT.observe(max(time.time() - execution.created, 0.0))
        return await self._run_on_pool(key, current, spec, execution.function, execution.parameters, on_log=on_log)

    async def _run_on_pool(
        self,
        key: SandboxKey,
        current: Workspace,
        spec: FunctionSpec,
        function: str,
        parameters: Mapping[str, Any],
        *,
        on_log: Callable[[LogEntry], None] | None = None,
    ) -> RunResult:
        """Run with the workspace's secrets as its env, blank them out of all it gives back, count it."""
        try:
            outcome = await self._run_with_secrets(key, current, spec, function, parameters, on_log=on_log)
        except FnboxError as exc:
            seconds = None if exc.duration is None else exc.duration / 1000
            metrics.count_run(spec.language, exc.code, seconds, current.name, function)
            raise
        metrics.count_run(spec.language, "ok", outcome.duration / 1000, current.name, function)
        return outcome

    def _run_with_secrets(
        self,
        key: SandboxKey,
        current: Workspace,
        spec: FunctionSpec,
        function: str,
        parameters: Mapping[str, Any],
        *,
        on_log: Callable[[LogEntry], None] | None = None,
    ) -> Awaitable[RunResult]:
        """The pool's run, with the workspace's secrets as its env, blanked out of all it gives
        back (`_redacted`); a workspace without secrets gets the pool's run itself, no coroutine around it."""
        env = self.secrets.values(current.name)
        # Only when the document narrows the egress policy: a pool without outbound access need not take it.
        options: dict[str, Any] = {} if current.egress is None else {"egress": current.egress}
        if env:
            options["env"] = env
            if on_log is not None:
                on_log = _redacting(on_log, env)
        run = self.pool.run(
            key, current.sources[spec.language], function, parameters, self.limits(spec), on_log=on_log, **options
        )
        return _redacted(run, env) if env else run

    def _prepare(
        self, workspace: str, function: str, parameters: Mapping[str, Any] | None
    ) -> tuple[Workspace, FunctionSpec, dict[str, Any]]:
        current = self.get_workspace(workspace)
        spec = current.functions.get(function)
        if spec is None:
            raise NotFound(
                f"no function {function!r} in workspace {workspace!r}",
                details={"workspace": workspace, "function": function},
            )
        return current, spec, check_parameters(spec, parameters)

    def limits(self, spec: FunctionSpec) -> Limits:
        """A function's own timeout and memory, capped by the server maxima (kept: a frozen dataclass costs to build)."""
        wanted = (spec.language, spec.timeout, spec.memory)
        limits = self._kept_limits.get(wanted)
        if limits is None:
            limits = self._limits(spec)
            if len(self._kept_limits) < MAX_KEPT_LIMITS:
                self._kept_limits[wanted] = limits
        return limits

    def _limits(self, spec: FunctionSpec) -> Limits:
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
        except Overloaded:
            raise  # the shared database cannot be reached: not a fault of the stored workspace
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
        problems: list[str] = []
        for language in sorted(workspace.languages):
            key = SandboxKey(workspace.name, language, workspace.version)
            errors = await self.pool.compile(key, workspace.sources[language], keep_on_error=True)
            problems.extend(f"workspace {workspace.name!r}: {error.message}" for error in errors.values())
        return problems

    # ---- archives ----------------------------------------------------------------------

    async def import_archive(
        self, name: str, data: bytes, *, filename: str | None = None, function: str | None = None
    ) -> Workspace:
        """Import a zip or tar archive as a new version of workspace `name` (see workspaces.archives).

        A `workspace.yaml` replaces the workspace; function files add to it or replace those
        functions. Either way the result is saved like a document: compiled first, the old
        version serving until then. `filename` and `function` name a one-function archive's `function.py`.
        """
        check_workspace_name(name)
        contents = await asyncio.to_thread(read_archive, data, filename=filename, function=function)
        for attempt in range(MERGE_ATTEMPTS):
            async with self._writing.setdefault(name, asyncio.Lock()):  # no save here between the read and the merge
                await self.refresh()
                existing, expected = None, None
                if contents.kind == "functions":
                    # A save through another instance between the read and the merge is refused, then merged again.
                    expected = ABSENT
                    if name in self.list_workspaces():
                        # A stored file that cannot be loaded is refused here (NotFound), never merged over.
                        current = self.get_workspace(name)
                        existing, expected = current.document, current.version
                if self.database is None:
                    expected = None  # one process writes the files, under the lock held here
                try:
                    return await self._put_locked(name, contents.apply(existing), expected)
                except PreconditionFailed:
                    if attempt == MERGE_ATTEMPTS - 1:
                        raise
            await asyncio.sleep(random.uniform(0, 0.005 * (attempt + 1)))  # contenders' retries spread apart
        raise AssertionError("unreachable")


def _reloading(follower: Follower) -> ApplyOther:
    async def reload(names: list[str]) -> None:
        await asyncio.to_thread(follower.reload, names)

    return reload


async def _redacted(run: Awaitable[RunResult], env: Mapping[str, str]) -> RunResult:
    """`run`'s outcome or error with the values of `env` (the workspace's secrets) blanked out."""
    try:
        outcome = await run
    except FnboxError as exc:
        redact_error(exc, env)
        raise
    return dataclasses.replace(outcome, result=redact(outcome.result, env), logs=redact(outcome.logs, env))


def _redacting(on_log: Callable[[LogEntry], None], env: Mapping[str, str]) -> Callable[[LogEntry], None]:
    def live(entry: LogEntry) -> None:
        on_log(redact(entry, env))

    return live


def _first_error(errors: Mapping[str, CompilationError]) -> CompilationError:
    first = next(iter(errors.values()))
    if len(errors) > 1:
        first.details = {**first.details, "others": sorted(errors)[1:]}
    return first


async def _bounded(what: str, step: Awaitable[None], seconds: float = 0.0) -> None:
    """Await one step of closing for at most `seconds` + CLOSE_TIMEOUT; log one that does not end."""
    try:
        async with asyncio.timeout(seconds + CLOSE_TIMEOUT):
            await step
    except TimeoutError:
        logger.error("closing %s took more than %g s; going on without it", what, seconds + CLOSE_TIMEOUT)
