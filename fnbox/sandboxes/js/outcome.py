"""From the JSON text a run hands over to what `Sandbox.run` returns or raises."""

from __future__ import annotations

import json
import re
from typing import Any

from fnbox import jsonfast
from fnbox.sandboxes.base import LogCollector, LogEntry
from fnbox.sandboxes.errors import FunctionError, MemoryLimitExceeded, SandboxCrashed
from fnbox.sandboxes.js.codegen import stack_line

__all__ = ["MAX_RESULT", "MAX_RESULT_DEPTH", "failure", "load", "logs"]

#: UTF-16 units of a result's JSON; a bigger one answers MemoryLimitExceeded. With the logs'
#: own cap (8 Mi units), a worker's answer stays under the protocol's 64 MB frame limit.
MAX_RESULT = 12 * 2**20
#: Nesting of a result, as in the Python sandbox: deeper is almost always a cycle, and the
#: JSON decoders after the sandbox recurse.
MAX_RESULT_DEPTH = 200

# JSON.stringify writes a lone surrogate as a \udnnn escape (n a hex digit); Python would keep it in a str
# that cannot be encoded as UTF-8, so make it U+FFFD, as a UTF-8 encoder would.
_LONE_SURROGATE = re.compile(r"(?<!\\)((?:\\\\)*)\\ud[89a-f][0-9a-f]{2}")


def load(text: str | None) -> dict[str, Any]:
    """Parse an outcome; one that does not parse means the runtime itself went wrong."""
    if text is None:
        raise SandboxCrashed("the JavaScript run ended without an outcome")
    if "\\ud" in text:
        text = _LONE_SURROGATE.sub(r"\1\\ufffd", text)
    try:
        value = _loads(text)
    except RecursionError as exc:  # runtime.js refuses results nested that deep: a bug if seen
        raise SandboxCrashed("the JavaScript run handed over an outcome nested too deeply") from exc
    except ValueError as exc:
        raise SandboxCrashed(f"the JavaScript run handed over a bad outcome: {exc}") from exc
    if not isinstance(value, dict):
        raise SandboxCrashed("the JavaScript run handed over a bad outcome")
    return value


def _loads(text: str) -> Any:
    """`json.loads(text)`, through jsonfast (the same values) when the text is valid UTF-8."""
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: only `json` reads it as before
        return json.loads(text)
    return jsonfast.loads(data)


def logs(stream: str, tail: dict[str, Any] | None = None, handed: list[LogEntry] | None = None) -> list[LogEntry]:
    """The entries handed over live, those streamed to the mailbox, those in the outcome,
    then the cap note. (A run hands its entries over live or streams them, not both.)"""
    if not stream and not handed and tail is not None and tail.get("logs") == [] and not tail.get("dropped"):
        return []  # the usual run: nothing logged
    entries: list[LogEntry] = list(handed) if handed else []
    try:
        if stream:
            entries.extend(json.loads("[" + stream[:-1] + "]"))
    except ValueError:
        pass
    tail = tail or {}
    more = tail.get("logs")
    if isinstance(more, list):
        entries.extend(more)
    dropped = tail.get("dropped")
    return LogCollector(entries=entries, dropped=dropped if isinstance(dropped, int) else 0).finish()


def failure(
    function: str, outcome: dict[str, Any], entries: list[LogEntry], duration: float
) -> FunctionError | MemoryLimitExceeded:
    """What a failed run's outcome raises: it threw, or it passed its memory limit where
    runtime.js counts (a result too big to leave, ArrayBuffers, a walk over a huge array)."""
    error = outcome.get("error")
    if not isinstance(error, dict):
        error = {}
    message = error.get("message")
    stack = error.get("stack") if isinstance(error.get("stack"), str) else None
    details = {"function": function, "line": stack_line(stack, function), "stack": stack}
    kind = MemoryLimitExceeded if outcome.get("limit") == "memory" else FunctionError
    text = message if isinstance(message, str) and message else "the function failed"
    return kind(text, details=details, logs=entries, duration=duration)
