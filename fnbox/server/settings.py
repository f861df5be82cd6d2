"""Every setting of fnbox, read once from the environment, with its default.

A bad value stops the start with a message naming the variable. Tests pass
`environ={...}` instead of patching the process environment.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.config import Config

from fnbox.sandboxes import python
from fnbox.workspaces.runtime import RuntimeOptions

__all__ = ["Settings", "SettingsError", "load_settings", "parse_size"]


class SettingsError(ValueError):
    """A setting with a value fnbox cannot use."""


@dataclass(frozen=True)
class Settings:
    host: str
    port: int
    data_dir: str
    js_timeout_ms: float
    python_timeout_ms: float
    max_warm_sandboxes: int
    js_memory_mb: float
    python_memory_mb: float
    idle_timeout: float
    node_modules: tuple[str, ...]
    python_modules: tuple[str, ...]
    request_max_size: int
    update_scripts_on_startup: bool
    #: A directory of archives imported at start (`fnbox serve --import`); None: no import.
    functions_location: str | None
    workers: int
    js_worker_rss_mb: float
    shutdown_grace: float
    access_log: bool
    record_runs: bool
    executions_max_count: int
    executions_max_age: float
    executions_queue: int
    executions_per_workspace: int

    def runtime_options(self) -> RuntimeOptions:
        return RuntimeOptions(
            js_timeout_ms=self.js_timeout_ms,
            python_timeout_ms=self.python_timeout_ms,
            js_memory_mb=self.js_memory_mb,
            python_memory_mb=self.python_memory_mb,
            max_warm_sandboxes=self.max_warm_sandboxes,
            idle_timeout=self.idle_timeout,
            python_modules=self.python_modules,
            workers=self.workers,
            js_worker_rss_mb=self.js_worker_rss_mb,
            record_runs=self.record_runs,
            executions_max_count=self.executions_max_count,
            executions_max_age=self.executions_max_age,
            executions_queue=self.executions_queue,
            executions_per_workspace=self.executions_per_workspace,
            shutdown_grace=self.shutdown_grace,
        )


def load_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Read the settings from `environ` (default: the process environment).

    `overrides` (from CLI flags) win over the environment when not None.
    """
    config = Config(environ=dict(os.environ if environ is None else environ))

    def read(key: str, cast: Callable[[str], Any], default: str) -> Any:
        raw = config(key, default=default)
        try:
            return cast(raw)
        except (TypeError, ValueError) as exc:
            raise SettingsError(f"{key}={raw!r} is not valid: {exc}") from None

    values = dict(
        host=read("HOST", _non_empty, "127.0.0.1"),
        port=read("PORT", _port, "4000"),
        data_dir=read("FUNCTIONS_STORAGE_FILESYSTEM_DIRPATH", _non_empty, "data/functions/"),
        js_timeout_ms=read("FUNCTIONS_RUN_TIMEOUT", _positive_float, "20000"),
        python_timeout_ms=read("PYTHON_FUNCTIONS_RUN_TIMEOUT", _positive_float, "20000"),
        max_warm_sandboxes=read("FUNCTIONS_WORKERS_MAX_LRU", _positive_int, "500"),
        js_memory_mb=read("NODE_WORKER_MAX_OLD_GENERATION_SIZE_MB", _positive_float, "100"),
        python_memory_mb=read("PYTHON_WORKER_MAX_MEMORY_MB", _positive_float, "512"),
        idle_timeout=read("INACTIVE_NODE_WORKER_DELETION_TIMEOUT", _positive_float, "3600"),
        node_modules=read("NODE_BUILTIN_MODULES", _names, ""),
        python_modules=read("PYTHON_BUILTIN_MODULES", _python_modules, ",".join(python.ALLOWED_MODULES)),
        request_max_size=read("REQUEST_MAX_SIZE", parse_size, "1mb"),
        update_scripts_on_startup=read("UPDATE_SCRIPTS_ON_STARTUP", _yes_no, "no"),
        functions_location=read("FUNCTIONS_LOCATION", _optional_directory, ""),
        workers=read("FUNCTIONS_WORKERS", _non_negative_int, str(os.cpu_count() or 1)),
        js_worker_rss_mb=read("FUNCTIONS_WORKER_MAX_RSS_MB", _positive_float, "2048"),
        shutdown_grace=read("SHUTDOWN_GRACE_PERIOD", _positive_float, "30"),
        access_log=read("ACCESS_LOG", _yes_no, "no"),
        record_runs=read("EXECUTIONS_RECORD_RUNS", _yes_no, "yes"),
        executions_max_count=read("EXECUTIONS_MAX_COUNT", _positive_int, "100000"),
        executions_max_age=read("EXECUTIONS_MAX_AGE", _positive_float, str(30 * 86400)),
        executions_queue=read("EXECUTIONS_QUEUE_SIZE", _positive_int, "1000"),
        executions_per_workspace=read("EXECUTIONS_PER_WORKSPACE", _positive_int, "4"),
    )
    values.update({key: value for key, value in overrides.items() if value is not None})
    return Settings(**values)


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


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
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


def _python_modules(text: str) -> tuple[str, ...]:
    names = _names(text)
    unvetted = sorted(set(names) - set(python.ALLOWED_MODULES))
    if unvetted:
        raise ValueError(f"{', '.join(unvetted)} not in fnbox's vetted modules ({', '.join(python.ALLOWED_MODULES)})")
    return names
