"""What a request brings to a handler: its JSON body, its query values, and the Runtime."""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request

from fnbox import jsonfast
from fnbox.sandboxes.errors import InvalidRequest
from fnbox.workspaces.document import lone_surrogate
from fnbox.workspaces.runtime import Runtime

__all__ = [
    "MAX_JSON_DEPTH",
    "flag",
    "parse_json",
    "prefers_async",
    "query_flag",
    "query_number",
    "read_json",
    "runtime_of",
    "wants_async",
]

MAX_JSON_DEPTH = 64
# Only an escape from \\ud800 to \\udfff can put a lone surrogate in a body that decoded as UTF-8.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def read_json(request: Request, *, empty: Any) -> Any:
    return parse_json(await request.body(), empty=empty)


def parse_json(body: bytes, *, empty: Any) -> Any:
    """A request body's JSON value (`empty` for a blank body), checked as fnbox reads every body."""
    if not body.strip():
        return empty
    try:
        value = jsonfast.loads(body)
    except (ValueError, RecursionError) as exc:
        raise InvalidRequest(f"the body is not valid JSON: {str(exc)[:200]}") from None
    # Each level of nesting opens a bracket: a body with few of them cannot be too deep.
    if body.count(b"[") + body.count(b"{") > MAX_JSON_DEPTH and _depth(value) > MAX_JSON_DEPTH:
        raise InvalidRequest(f"the body is nested deeper than {MAX_JSON_DEPTH} levels")
    if _SURROGATE_ESCAPE.search(body):
        surrogate = lone_surrogate(value)
        if surrogate is not None:
            raise InvalidRequest(f"the body holds a lone surrogate ({surrogate}), which is not Unicode text")
    return value


def _depth(value: Any) -> int:
    depth, level = 0, [value]
    while level:
        depth += 1
        level = [
            child
            for item in level
            if isinstance(item, (dict, list))
            for child in (item.values() if isinstance(item, dict) else item)
            if isinstance(child, (dict, list))
        ]
    return depth - 1 if depth else 0


def query_number(request: Request, name: str, default: float, *, low: float, high: float) -> float:
    """A number from the query string, checked against its range."""
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise InvalidRequest(f"{name}={raw!r} is not a number", details={name: raw}) from None
    if not low <= value <= high:
        raise InvalidRequest(f"{name} must be between {low:g} and {high:g}, not {raw}", details={name: raw})
    return value


def query_flag(request: Request, name: str) -> bool:
    """A yes/no value from the query string (true/false, yes/no, 1/0); absent is false."""
    return flag(name, request.query_params.get(name))


def flag(name: str, given: str | None) -> bool:
    """A yes/no value given for `name` (true/false, yes/no, 1/0); None is false."""
    raw = "false" if given is None else given.lower()
    if raw in ("true", "yes", "1", ""):
        return True
    if raw in ("false", "no", "0"):
        return False
    raise InvalidRequest(f"{name}={raw!r}: expected true or false", details={name: raw})


def wants_async(request: Request) -> bool:
    """`Prefer: respond-async` (RFC 7240; other preferences are ignored) or `?async=true`."""
    return prefers_async(request.headers.get("prefer", "")) or query_flag(request, "async")


def prefers_async(preferences: str) -> bool:
    """A `Prefer` header's value asks for `respond-async`."""
    return any(token.split(";")[0].strip().lower() == "respond-async" for token in preferences.split(","))
