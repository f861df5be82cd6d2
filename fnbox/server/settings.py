"""Every setting of fnbox, declared once: its variable, where its value goes, how it is read.

A setting's default is the default of the field it fills (a field of `Settings` for the
server's own, of `RuntimeOptions` for the Runtime's), except where the server starts with
another one on purpose (`server_default`). The README's settings table is drawn from
`SETTINGS` (`python -m fnbox.server.settings` prints it), and a test keeps the two equal.

A bad value stops the start with a message naming the variable. Tests pass
`environ={...}` instead of patching the process environment.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from fnbox.logs import FORMATS
from fnbox.sandboxes.egress import EgressPolicy
from fnbox.sandboxes.js.names import KNOWN_MODULES, NODE_MODULES
from fnbox.sandboxes.python.modules import ALLOWED_MODULES
from fnbox.server.affinity import AUTO_MAX_CPUS, parse_server_cpu
from fnbox.workspaces.runtime import RuntimeOptions
from fnbox.workspaces.secrets import check_key

__all__ = ["SETTINGS", "Setting", "Settings", "SettingsError", "load_settings", "markdown_table", "parse_size"]


class SettingsError(ValueError):
    """A setting with a value fnbox cannot use."""


@dataclass(frozen=True)
class Settings:
    """The server's own settings, and the options it gives its Runtime."""

    runtime: RuntimeOptions = field(default_factory=RuntimeOptions)
    host: str = "127.0.0.1"
    port: int = 4000
    data_dir: str = "data/functions/"
    request_max_size: int = 1024 * 1024
    update_scripts_on_startup: bool = False
    #: A directory of archives imported at start (`fnbox serve --import`); None: no import.
    functions_location: str | None = None
    access_log: bool = False
    #: The admin bearer token; None (and no token made) leaves fnbox open.
    admin_token: str | None = field(default=None, repr=False)
    #: `text` or `json` (one JSON object per line).
    log_format: str = "text"
    metrics_per_workspace: bool = False
    #: Open HTTP connections, bytes of a request's headers, and seconds for a request to arrive
    #: in full or for an idle keep-alive connection to stay open (see server.connections).
    http_max_connections: int = 4096
    http_max_header_size: int = 64 * 1024
    http_request_timeout: float = 15.0
    http_keep_alive_timeout: float = 5.0
    #: `auto`, `no` or a CPU's number: the CPU the server process keeps to (see server.affinity).
    server_cpu: str | int = "auto"


@dataclass(frozen=True)
class Setting:
    """One environment variable."""

    variable: str
    #: The field it fills: `port` (of Settings) or `runtime.workers` (of RuntimeOptions).
    field: str
    parse: Callable[[str], Any]
    meaning: str
    #: The server's default where it is not the field's own, computed at start.
    server_default: Callable[[], Any] | None = None
    #: How the README shows the default, where printing the value would not say it.
    shown_default: str | None = None

    def default(self) -> Any:
        if self.server_default is not None:
            return self.server_default()
        owner, _, name = self.field.rpartition(".")
        fields = {f.name: f for f in dataclasses.fields(RuntimeOptions if owner == "runtime" else Settings)}
        declared = fields[name]
        if declared.default_factory is not dataclasses.MISSING:
            return declared.default_factory()
        return declared.default

    def default_text(self) -> str:
        if self.shown_default is not None:
            return self.shown_default
        value = self.default()
        if self.parse is parse_size:
            return f"`{format_size(value)}`"
        if isinstance(value, bool):
            return "`yes`" if value else "`no`"
        if value is None or value == ():
            return "(none)"
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        if isinstance(value, str):
            return f"`{value}`"
        return str(value)


def _non_empty(text: str) -> str:
    if not text.strip():
        raise ValueError("must not be empty")
    return text.strip()


def _optional_directory(text: str) -> str | None:
    if not text.strip():
        return None
    if not os.path.isdir(text.strip()):
        raise ValueError("no such directory")
    return text.strip()


def _egress(text: str) -> str:
    EgressPolicy.parse(text)  # raises ValueError naming the entry that is none of the forms
    return text.strip()


def _port(text: str) -> int:
    port = int(text)
    if not 0 <= port <= 65535:
        raise ValueError("a port is between 0 and 65535")
    return port


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError("must be at least 1")
    return value


def _token(text: str) -> str:
    if len(text.strip()) < 16:
        raise ValueError("a token of at least 16 characters is needed")
    return text.strip()


def _log_format(text: str) -> str:
    value = text.strip().lower()
    if value not in FORMATS:
        raise ValueError(f"expected one of {', '.join(FORMATS)}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError("must be 0 or more")
    return value


def _database_url(text: str) -> str | None:
    if not text.strip():
        return None
    if not text.strip().startswith(("postgresql://", "postgres://")):
        raise ValueError("expected a PostgreSQL URL: postgresql://user:password@host:5432/database")
    return text.strip()


def _location(text: str) -> str | None:
    """A directory, or s3://bucket/prefix on the S3 service of S3_ENDPOINT_URL."""
    if text.strip().startswith("s3://"):
        if not text.strip()[5:].split("/", 1)[0]:
            raise ValueError("an s3:// location names a bucket: s3://bucket/prefix")
        return text.strip()
    return _optional_directory(text)


def _logs_location(text: str) -> str | None:
    if not text.strip():
        return None
    return text.strip() if text.strip().startswith("s3://") else os.path.abspath(text.strip())


def _non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise ValueError("must be 0 or more")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise ValueError("must be positive")
    return value


def _yes_no(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("yes", "true", "1", "on"):
        return True
    if lowered in ("no", "false", "0", "off", ""):
        return False
    raise ValueError("expected yes or no")


def _names(text: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in text.split(",") if name.strip())


def _node_modules(text: str) -> tuple[str, ...]:
    names = tuple(name.removeprefix("node:") for name in _names(text))
    unknown = sorted(set(names) - KNOWN_MODULES)
    if unknown:
        raise ValueError(
            f"{', '.join(unknown)} not among the Node modules fnbox provides ({', '.join(sorted(KNOWN_MODULES))})"
        )
    return names


def _python_modules(text: str) -> tuple[str, ...]:
    names = _names(text)
    unvetted = sorted(set(names) - set(ALLOWED_MODULES))
    if unvetted:
        raise ValueError(f"{', '.join(unvetted)} not in fnbox's vetted modules ({', '.join(ALLOWED_MODULES)})")
    return names


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb)?\s*$", re.IGNORECASE)
_UNITS = {"b": 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3}


def parse_size(text: str) -> int:
    """Parse a byte size the way the model service's body parser does: `100kb`, `1mb`, `512`."""
    match = _SIZE.match(text)
    if not match:
        raise ValueError("expected a size such as 512, 100kb, 1mb or 1gb")
    size = int(float(match.group(1)) * _UNITS[(match.group(2) or "b").lower()])
    if size <= 0:
        raise ValueError("the size must be positive")
    return size


def format_size(size: int) -> str:
    """The shortest text `parse_size` reads back as `size`."""
    for unit in ("gb", "mb", "kb"):
        if size % _UNITS[unit] == 0:
            return f"{size // _UNITS[unit]}{unit}"
    return str(size)


SETTINGS: tuple[Setting, ...] = (
    Setting("HOST", "host", _non_empty, "the address the HTTP server listens on"),
    Setting("PORT", "port", _port, "HTTP port"),
    Setting("FUNCTIONS_STORAGE_FILESYSTEM_DIRPATH", "data_dir", _non_empty, "where workspaces live"),
    Setting(
        "FUNCTIONS_RUN_TIMEOUT",
        "runtime.js_timeout_ms",
        _positive_float,
        "JavaScript run timeout, ms; also the cap of a function's `timeout`",
    ),
    Setting(
        "PYTHON_FUNCTIONS_RUN_TIMEOUT",
        "runtime.python_timeout_ms",
        _positive_float,
        "Python run timeout, ms; also the cap of a function's `timeout`",
    ),
    Setting(
        "FUNCTIONS_WORKERS_MAX_LRU",
        "runtime.max_warm_sandboxes",
        _positive_int,
        "warm sandboxes kept (one per workspace and language)",
    ),
    Setting(
        "NODE_WORKER_MAX_OLD_GENERATION_SIZE_MB",
        "runtime.js_memory_mb",
        _positive_float,
        "JavaScript heap limit per run, MB; also the cap of a function's `memory`",
    ),
    Setting("PYTHON_WORKER_MAX_MEMORY_MB", "runtime.python_memory_mb", _positive_float, "memory cap for Python, MB"),
    Setting(
        "INACTIVE_NODE_WORKER_DELETION_TIMEOUT",
        "runtime.idle_timeout",
        _positive_float,
        "seconds after which an idle sandbox is dropped",
    ),
    Setting(
        "NODE_BUILTIN_MODULES",
        "runtime.node_modules",
        _node_modules,
        "Node modules a JavaScript function may `require` (fnbox's own implementations; see JavaScript below)",
        shown_default="`" + ",".join(NODE_MODULES) + "`",
    ),
    Setting(
        "PYTHON_BUILTIN_MODULES",
        "runtime.python_modules",
        _python_modules,
        "modules a Python function may import; only names from the vetted list are accepted",
        shown_default="all vetted modules",
    ),
    Setting("REQUEST_MAX_SIZE", "request_max_size", parse_size, "largest accepted body (`512`, `100kb`, `1mb`)"),
    Setting(
        "UPDATE_SCRIPTS_ON_STARTUP",
        "update_scripts_on_startup",
        _yes_no,
        "`yes`: recompile every stored workspace at start and log each failure",
    ),
    Setting(
        "FUNCTIONS_LOCATION",
        "functions_location",
        _location,
        "a directory of archives imported at start, or `s3://bucket/prefix` (laid out alike) on the S3 service of "
        "`S3_ENDPOINT_URL` with the `AWS_*` credentials (see [Archives](#archives)); `fnbox serve --import DIR` wins",
    ),
    Setting(
        "FUNCTIONS_WORKERS",
        "runtime.workers",
        _non_negative_int,
        "worker processes per language; `0` keeps the sandboxes in the server process (embedding, tests)",
        server_default=lambda: os.cpu_count() or 1,
        shown_default="CPU count",
    ),
    Setting(
        "SERVER_CPU",
        "server_cpu",
        parse_server_cpu,
        f"`auto`: on a machine of 2 to {AUTO_MAX_CPUS} CPUs, the server process keeps to the first one and leaves "
        "the others to its worker processes (its event loop and a worker then never take turns on one CPU: more "
        "calls a second; not with `FUNCTIONS_WORKERS=0`); a number: that CPU, on any machine (give each instance "
        "on one machine its own); `no`: wherever the scheduler puts it",
    ),
    Setting(
        "FUNCTIONS_WORKER_MAX_RSS_MB",
        "runtime.js_worker_rss_mb",
        _positive_float,
        "RSS cap of a JavaScript worker process; past it the worker is killed and restarted",
    ),
    Setting("ACCESS_LOG", "access_log", _yes_no, "`yes` logs every request (costs throughput)"),
    Setting(
        "FNBOX_ADMIN_TOKEN",
        "admin_token",
        _token,
        "the admin bearer token (at least 16 characters); set, or once tokens exist, every route but "
        "`/sys/healthcheck` needs a token (see [Access control](#access-control))",
    ),
    Setting(
        "SHUTDOWN_GRACE_PERIOD",
        "runtime.shutdown_grace",
        _positive_float,
        "seconds that runs in flight get to finish on SIGTERM before the workers stop; "
        "asynchronous executions still running then are cancelled",
    ),
    Setting(
        "LOG_FORMAT",
        "log_format",
        _log_format,
        "`json`: every log line of the server and its workers is one JSON object "
        "(time, level, message, request id, workspace, function, execution id)",
    ),
    Setting(
        "METRICS_PER_WORKSPACE",
        "metrics_per_workspace",
        _yes_no,
        "`yes` adds /metrics series labelled by workspace and function (one series each: mind the cardinality)",
    ),
    Setting(
        "FNBOX_SECRETS_KEY",
        "runtime.secrets_key",
        check_key,
        "Fernet keys of the workspace secrets, comma-separated: the first encrypts, all decrypt "
        "(see [Secrets](#secrets)); unset: `secrets.key`, made in the data directory. With "
        "`FNBOX_DATABASE_URL`, the same on every instance",
    ),
    Setting(
        "FUNCTIONS_QUARANTINE_SECONDS",
        "runtime.quarantine_seconds",
        _positive_float,
        "seconds a workspace whose run got its worker killed (a timeout in C code, memory) runs on a worker "
        "of its own, so it stalls no neighbour again",
    ),
    Setting(
        "HTTP_MAX_CONNECTIONS",
        "http_max_connections",
        _positive_int,
        "open HTTP connections; past it a new one pushes out the oldest that is not being answered "
        "(the open files limit is raised to its hard limit at start)",
    ),
    Setting(
        "HTTP_MAX_HEADER_SIZE",
        "http_max_header_size",
        parse_size,
        "largest header section of a request (past it, or past 100 header fields: 431)",
    ),
    Setting(
        "HTTP_REQUEST_TIMEOUT",
        "http_request_timeout",
        _positive_float,
        "seconds a request has to arrive in full, from its first byte or from the connection's start (else 408)",
    ),
    Setting(
        "HTTP_KEEP_ALIVE_TIMEOUT",
        "http_keep_alive_timeout",
        _positive_float,
        "seconds an idle keep-alive connection stays open (up to a second more: a sweep closes such connections)",
    ),
    Setting(
        "EXECUTIONS_RECORD_RUNS",
        "runtime.record_runs",
        _yes_no,
        "`no`: synchronous runs get no record (asynchronous ones always do)",
    ),
    Setting("EXECUTIONS_MAX_COUNT", "runtime.executions_max_count", _positive_int, "ended execution records kept"),
    Setting(
        "EXECUTIONS_MAX_AGE",
        "runtime.executions_max_age",
        _positive_float,
        "seconds an execution record is kept (30 days)",
    ),
    Setting(
        "EXECUTIONS_MAX_RECORD_BYTES",
        "runtime.executions_max_record_bytes",
        parse_size,
        "bytes of result and logs an execution record keeps (`1mb`); past it the record is cut and says so, "
        "the synchronous answer is whole",
    ),
    Setting(
        "EXECUTIONS_MAX_BYTES",
        "runtime.executions_max_bytes",
        parse_size,
        "bytes the execution records may take on disk in all (`1gb`); past it the oldest ended records go",
    ),
    Setting(
        "EXECUTIONS_QUEUE_SIZE",
        "runtime.executions_queue",
        _positive_int,
        "asynchronous executions waiting or running at once, all workspaces",
    ),
    Setting(
        "EXECUTIONS_PER_WORKSPACE",
        "runtime.executions_per_workspace",
        _positive_int,
        "asynchronous executions of one workspace running at once",
    ),
    Setting(
        "FUNCTIONS_EGRESS",
        "runtime.egress",
        _egress,
        "where functions may send HTTP requests: `public` (public addresses after DNS resolution), `none`, "
        "or a comma-separated allow-list of hosts, `*.domain` patterns, addresses and CIDR ranges "
        "(see [Outbound access](#outbound-access))",
    ),
    Setting("FUNCTIONS_EGRESS_MAX_REQUESTS", "runtime.egress_max_requests", _positive_int, "outbound requests per run"),
    Setting(
        "FUNCTIONS_EGRESS_MAX_CONCURRENCY",
        "runtime.egress_max_concurrency",
        _positive_int,
        "outbound requests of one run open at once",
    ),
    Setting(
        "FUNCTIONS_EGRESS_MAX_RESPONSE_BYTES",
        "runtime.egress_max_response_bytes",
        parse_size,
        "largest body of one outbound response (after decompression) or request",
    ),
    Setting(
        "FUNCTIONS_CONCURRENCY_PER_SANDBOX",
        "runtime.concurrency_per_sandbox",
        _positive_int,
        "runs of one workspace that overlap in its warm sandbox while they wait (on the network, a sleep)",
    ),
    Setting(
        "PYTHON_INLINE_RUNS",
        "runtime.python_inline_runs",
        _yes_no,
        "`yes`: a Python worker runs short calls of workspaces that cannot wait nor keep state on its "
        "event-loop thread, without the hop to a run thread (less CPU a call); a call that then runs long "
        "holds that worker's other calls for 0.05-0.15 s, and is run again from its start on a thread; "
        "`no`: every call on a run thread",
    ),
    Setting(
        "LOGS_LOCATION",
        "runtime.logs_location",
        _logs_location,
        "a directory or `s3://bucket/prefix`: each ended execution's logs are written there as one object, "
        "`<workspace>/<function>/<execution id>.json`",
    ),
    Setting(
        "FNBOX_DATABASE_URL",
        "runtime.database_url",
        _database_url,
        "`postgresql://...`: workspaces in that PostgreSQL database, shared by every instance using it "
        "(see [Running several instances](#running-several-instances)); unset: files in the data directory",
    ),
    Setting(
        "FNBOX_DATABASE_MAX_STALENESS_MS",
        "runtime.database_max_staleness_ms",
        _non_negative_float,
        "`0`: a run started on any instance sees every save answered before it (saves wait for every instance "
        "holding a lease); N: this instance holds none, and a save may reach its runs up to N ms late",
    ),
    Setting(
        "FNBOX_DATABASE_LEASE_MS",
        "runtime.database_lease_ms",
        _positive_float,
        "how long an instance serves runs from what it holds after acknowledging the changes of workspaces; "
        "a save waits at most this long for an instance that stopped without a word",
    ),
)


def load_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Read the settings from `environ` (default: the process environment).

    `overrides` (from CLI flags: fields of `Settings`) win over the environment when not None.
    """
    environ = os.environ if environ is None else environ
    server: dict[str, Any] = {}
    runtime: dict[str, Any] = {}
    for setting in SETTINGS:
        raw = environ.get(setting.variable)
        if raw is None:
            if setting.server_default is None:
                continue
            value = setting.server_default()
        else:
            try:
                value = setting.parse(raw)
            except (TypeError, ValueError) as exc:
                raise SettingsError(f"{setting.variable}={raw!r} is not valid: {exc}") from None
        owner, _, name = setting.field.rpartition(".")
        (runtime if owner == "runtime" else server)[name] = value
    server.update({key: value for key, value in overrides.items() if value is not None})
    return Settings(runtime=RuntimeOptions(**runtime), **server)


def markdown_table() -> str:
    """The README's settings table."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    rows += [f"| `{s.variable}` | {s.default_text()} | {s.meaning} |" for s in SETTINGS]
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(markdown_table(), end="")
