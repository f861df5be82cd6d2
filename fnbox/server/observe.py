"""The outermost middleware: a request id for every request, its log context, and its HTTP metrics.

An `X-Request-Id` the client sends (up to 128 safe characters) is kept, otherwise one is
made; either way the answer carries it, and every log line written for the request
(LOG_FORMAT=json) names it. Requests are counted by route template (`/v2/functions/{workspace}`,
never the concrete path: one series per route, not per workspace), method and status.
"""

from __future__ import annotations

import re
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fnbox import logs, metrics
from fnbox.randomness import random_hex
from fnbox.tallies import Counted, Timed

__all__ = ["Observe", "count_request", "request_id_of", "route_template"]

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")
#: The two series of a request, by (route, method, status): one look-up, and no status made text.
_SERIES: dict[tuple[str, str, int], tuple[Counted, Timed]] = {}
_MAX_SERIES = 4096


def request_id_of(scope: Scope) -> str:
    """The client's `X-Request-Id` if it is safe to log and echo, else a new random one.

    128 random bits in hexadecimal, as `uuid.uuid4().hex` gave, without its system call.
    """
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            given = value.decode("latin-1")
            return given if _REQUEST_ID.fullmatch(given) else random_hex(16)
    return random_hex(16)


def count_request(route: str, method: str, status: int, seconds: float) -> None:
    """One request in the HTTP metrics: its count by route, method and status, and its duration by route."""
    key = (route, method, status)
    series = _SERIES.get(key)
    if series is None:
        series = metrics.HTTP_REQUESTS.series(route, method, str(status)), metrics.HTTP_DURATION.series(route)
        if len(_SERIES) < _MAX_SERIES:  # methods and statuses are few; never let a flood grow this
            _SERIES[key] = series
    series[0].add()
    series[1].add(seconds)


def route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    if not isinstance(path, str):
        return "unmatched"
    return f"{scope.get('root_path', '')}{path}" or "/"


class Observe:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(scope)
        header = (b"x-request-id", request_id.encode())
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        token = logs.CONTEXT.set({"request_id": request_id, "scope": scope})
        started = time.perf_counter()
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            count_request(route_template(scope), scope["method"], status, time.perf_counter() - started)
            logs.CONTEXT.reset(token)
