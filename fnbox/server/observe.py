"""The outermost middleware: a request id for every request, its log context, and its HTTP metrics.

An `X-Request-Id` the client sends (up to 128 safe characters) is kept, otherwise one is
made; either way the answer carries it, and every log line written for the request
(LOG_FORMAT=json) names it. Requests are counted by route template (`/v2/functions/{workspace}`,
never the concrete path: one series per route, not per workspace), method and status.
"""

from __future__ import annotations

import re
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fnbox import logs, metrics

__all__ = ["Observe", "route_template"]

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")


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
        given = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                given = value.decode("latin-1")
                break
        request_id = given if given is not None and _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
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
            route = route_template(scope)
            metrics.HTTP_REQUESTS.labels(route, scope["method"], str(status)).inc()
            metrics.HTTP_DURATION.labels(route).observe(time.perf_counter() - started)
            logs.CONTEXT.reset(token)
