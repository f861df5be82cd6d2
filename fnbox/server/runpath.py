"""The lean path of `POST /v2/functions/{workspace}/run/{function}`: the warm call, without the layers it does not need.

Through the general app a run passes Starlette's error wrapper, `Observe`, `AccessControl`,
`BodySizeLimit`, the exception middleware, the routing table and the route's own exception
wrapper: each a closure, a `Request` or a lookup per call, about a quarter of a warm
call's cost in the server. `RunPath` sits in front of all of them and serves that one
route itself, in one function doing the same steps in the same order with the same
pieces: the request id and the HTTP metrics (`observe`), the token check and its
refusals (the `AccessControl` it is given, which shares its failed-attempt limit with the
general one), the body limit (declared, then counted as it arrives), the JSON checks
(`inputs.parse_json`), the run's answer (`running.answer_run`), errors answered by
`responses.error_response`, and an unexpected failure answered and re-raised as
Starlette's error middleware does. Every other request, and any request under a root
path, goes to the general app untouched.
"""

from __future__ import annotations

import re
import time
from typing import Any

from starlette.datastructures import QueryParams
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fnbox import logs
from fnbox.sandboxes.errors import FnboxError
from fnbox.server.access import PRINCIPAL_KEY, AccessControl
from fnbox.server.inputs import flag, parse_json, prefers_async
from fnbox.server.limits import declared_too_large, too_large
from fnbox.server.observe import count_request, request_id_of
from fnbox.server.responses import error_response, handle_unexpected
from fnbox.server.running import answer_run
from fnbox.server.tokens import OPEN
from fnbox.workspaces.runtime import Runtime

__all__ = ["RunPath"]


class RunPath:
    def __init__(
        self, general: ASGIApp, *, route: Route, router: Any, runtime: Runtime, access: AccessControl, max_size: int
    ) -> None:
        self.general = general
        self.route = route
        self.router = router
        self.runtime = runtime
        self.access = access
        self.max_size = max_size
        self._path: re.Pattern[str] = route.path_regex
        self._template = route.path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope.get("root_path"):
            await self.general(scope, receive, send)
            return
        match = self._path.match(scope["path"])
        if match is None:
            await self.general(scope, receive, send)
            return
        # What routing would have put in the scope: log lines and handlers read it.
        scope["router"] = self.router
        scope["route"] = self.route
        scope["endpoint"] = self.route.endpoint
        scope["path_params"] = match.groupdict()
        started = False  # True once the answer's start is sent
        try:
            # What `observe.Observe` does around a request: its id, its log context and its metrics.
            request_id = request_id_of(scope)
            token = logs.CONTEXT.set({"request_id": request_id, "scope": scope})
            began = time.perf_counter()
            status = 500
            try:
                response = await self._answer(scope, receive)
                status = response.status_code
                headers = [*response.raw_headers, (b"x-request-id", request_id.encode())]
                started = True
                await send({"type": "http.response.start", "status": status, "headers": headers})
                await send({"type": "http.response.body", "body": response.body})
            finally:
                count_request(self._template, "POST", status, time.perf_counter() - began)
                logs.CONTEXT.reset(token)
        except Exception as exc:  # as Starlette's ServerErrorMiddleware: answer if still possible, then raise
            response = await handle_unexpected(Request(scope), exc)
            if not started:
                await response(scope, receive, send)
            raise

    async def _answer(self, scope: Scope, receive: Receive) -> Response:
        access = self.access
        if access.tokens.shared:
            await access.catch_up(scope)
        refusal = access.judge(scope)
        if refusal is not None:
            return refusal
        declared, prefer = None, None
        for name, value in scope["headers"]:
            if name == b"content-length":
                declared = value  # the last one, as BodySizeLimit reads it
            elif name == b"prefer" and prefer is None:
                prefer = value.decode("latin-1")  # the first one, as Request.headers reads it
        if declared_too_large(declared, self.max_size):
            return error_response(too_large(self.max_size))
        try:
            message = await receive()
            if message["type"] == "http.request" and not message.get("more_body", False):
                data = message.get("body", b"")  # the whole body at once, as it mostly comes
                if len(data) > self.max_size:
                    raise too_large(self.max_size)
            else:
                data = await self._body(receive, message)
            body = parse_json(data, empty={})
            params = scope["path_params"]

            def respond_async() -> bool:
                query = scope["query_string"]
                given = QueryParams(query).get("async") if query else None
                return (prefer is not None and prefers_async(prefer)) or flag("async", given)

            return await answer_run(
                self.runtime,
                params["workspace"],
                params["function"],
                body,
                respond_async=respond_async,
                owner=scope.get(PRINCIPAL_KEY, OPEN).id,
            )
        except FnboxError as exc:
            exc.__traceback__ = None  # an error kept and raised again must not pile up tracebacks
            return error_response(exc)

    async def _body(self, receive: Receive, message: Message) -> bytes:
        """The whole body from its first `message` on, refused as soon as it passes the limit (a chunked one too)."""
        chunks: list[bytes] = []
        received = 0
        while True:
            if message["type"] == "http.request":
                chunk = message.get("body", b"")
                received += len(chunk)
                if received > self.max_size:
                    raise too_large(self.max_size)
                if chunk:
                    chunks.append(chunk)
                if not message.get("more_body", False):
                    return b"".join(chunks)
            elif message["type"] == "http.disconnect":
                raise ClientDisconnect()
            message = await receive()
