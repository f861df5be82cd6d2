"""How fnbox's log lines look: text, or with LOG_FORMAT=json one JSON object per line.

A JSON line holds time, level, logger and message, plus the request id, workspace,
function and execution id of the request (or run) it was written for, where there is one:
`server.observe` puts the request in `CONTEXT`, and its path parameters are read when
a line is written (routing fills them in after the request starts). Worker processes,
which inherit LOG_FORMAT, write their lines the same way.
"""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

__all__ = ["CONTEXT", "FORMATS", "JsonFormatter", "configure", "context_fields"]

FORMATS = ("text", "json")
TEXT_FORMAT = "%(levelname)s %(name)s: %(message)s"
#: The request being answered: {"request_id": ..., "scope": the ASGI scope}, or extra fields of a run.
CONTEXT: ContextVar[dict[str, Any] | None] = ContextVar("fnbox_log_context", default=None)
_PATH_FIELDS = (("workspace", "workspace"), ("function", "function"), ("id", "execution_id"), ("jobID", "execution_id"))


def context_fields() -> dict[str, Any]:
    """The request id, workspace, function and execution id of the current request or run, those known."""
    context = CONTEXT.get()
    if not context:
        return {}
    fields = {key: value for key, value in context.items() if key != "scope" and value is not None}
    scope = context.get("scope")
    if scope is not None:
        params = scope.get("path_params") or {}
        for param, field in _PATH_FIELDS:
            if param in params and field not in fields:
                fields[field] = params[param]
        process = params.get("processID")
        if isinstance(process, str) and "." in process:
            fields.setdefault("workspace", process.split(".", 1)[0])
            fields.setdefault("function", process.split(".", 1)[1])
    return fields


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(context_fields())
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def configure(log_format: str = "text", *, level: int = logging.INFO) -> None:
    """Make every logger (uvicorn's too, through the root) write in `log_format` to stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
