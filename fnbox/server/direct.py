"""Run requests handed to the lean path straight from the connection, without uvicorn's ASGI cycle.

For each request uvicorn completes the scope, builds a `RequestResponseCycle`, starts a
task in its exception wrapper, and passes the request through its proxy-headers middleware
and Starlette's `__call__` before the app sees it; each answer goes through its `send`
twice. Without them a warm run costs the server about 5% fewer instructions. A
`DirectCycle` stands in for uvicorn's cycle where that work changes nothing: the request
is `POST /v2/functions/{workspace}/run/{function}` with a plain path, a `Content-Length`
body small enough to be read before the run starts, and no header uvicorn's layers act on.
The lean path (`runpath.RunPath`) then answers it as it answers every run, with the same
scope, and the answer leaves in one write. Every other request goes through uvicorn as before.

The cycle keeps the attributes uvicorn's protocol reads of its own (`body`, `more_body`,
`message_event`, `disconnected`, `keep_alive`, `response_started`, `response_complete`),
so reading, pipelining, shutdown and lost connections treat it as theirs.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import re
from typing import TYPE_CHECKING, Any, cast

from starlette.types import Message, Scope
from uvicorn.protocols.http.flow_control import HIGH_WATER_LIMIT
from uvicorn.protocols.http.httptools_impl import HEADER_RE, HEADER_VALUE_RE, STATUS_LINE

from fnbox.server.runpath import RunPath

if TYPE_CHECKING:
    from fnbox.server.connections import GuardedHttpToolsProtocol

__all__ = ["DirectCycle", "direct_cycle", "lean_path_of"]

logger = logging.getLogger("uvicorn.error")

#: The run route with plain names: no query, no escapes, no dot segments (anything else goes through uvicorn).
_RUN_URL = re.compile(rb"/v2/functions/[A-Za-z0-9_-]{1,64}/run/[A-Za-z0-9_-]{1,64}")
#: Headers that uvicorn's layers act on (proxy addresses, `100 Continue`, chunks, upgrades). A
#: `Connection` header is read by the parser (`should_keep_alive`, `should_upgrade`), as uvicorn reads it.
_UVICORN_HEADERS = frozenset((b"x-forwarded-for", b"x-forwarded-proto", b"expect", b"transfer-encoding", b"upgrade"))
#: What uvicorn answers when the app fails before answering.
_FAILED = (
    STATUS_LINE[500] + b"content-type: text/plain; charset=utf-8\r\ncontent-length: 21\r\n"
    b"connection: close\r\n\r\nInternal Server Error"
)


def lean_path_of(app: Any) -> tuple[Any, RunPath] | None:
    """The Starlette app under uvicorn's wrappers and its lean path, if it serves runs through one."""
    for _ in range(8):
        stack = getattr(app, "middleware_stack", None)
        if isinstance(stack, RunPath):
            return app, stack
        app = getattr(app, "app", None)
        if app is None:
            return None
    return None


def direct_cycle(protocol: GuardedHttpToolsProtocol, app: Any, lean: RunPath) -> DirectCycle | None:
    """A cycle for the request whose headers just ended, if it can skip uvicorn's; None: uvicorn's own."""
    parser = protocol.parser
    if (
        parser.get_method() != b"POST"
        or _RUN_URL.fullmatch(protocol.url) is None
        or parser.get_http_version() != "1.1"
        or not parser.should_keep_alive()
        or parser.should_upgrade()
        or protocol.root_path
        or protocol.access_log
        or (protocol.cycle is not None and not protocol.cycle.response_complete)  # one in flight: uvicorn queues it
    ):
        return None
    limit = protocol.limit_concurrency
    if limit is not None and (len(protocol.connections) >= limit or len(protocol.tasks) >= limit):  # uvicorn: 503
        return None
    length = None
    for name, value in protocol.headers:
        if name in _UVICORN_HEADERS:
            return None
        if name == b"content-length":
            length = value
    if length is None or not length.isdigit() or int(length) > min(HIGH_WATER_LIMIT, lean.max_size):
        return None  # uvicorn reads (or refuses) it as it comes, before the run
    scope = cast(Scope, protocol.scope)  # uvicorn's, as its message began: type, server, client, headers, state...
    scope["method"] = "POST"
    scope["path"] = protocol.url.decode("ascii")
    scope["raw_path"] = protocol.url
    scope["query_string"] = b""
    scope["app"] = app
    return DirectCycle(protocol, scope, lean)


class DirectCycle:
    """One run request between its headers and its answer; see the module's docstring."""

    def __init__(self, protocol: GuardedHttpToolsProtocol, scope: Scope, lean: RunPath) -> None:
        self.protocol = protocol
        self.scope = scope
        self.lean = lean
        self.body = bytearray()
        self.more_body = True
        self.message_event = asyncio.Event()  # uvicorn's protocol sets it on a lost connection
        self.disconnected = False
        self.keep_alive = True
        self.response_started = False
        self.response_complete = False
        self._head = b""  # the answer's status line and headers, but the blank line
        self._length: int | None = None  # the length its headers give its body

    def start(self) -> None:
        """The body has arrived: run the request as uvicorn would start its app."""
        protocol = self.protocol
        coroutine = self._run()
        if getattr(protocol.config, "reset_contextvars", False):
            task = protocol.loop.create_task(coroutine, context=contextvars.Context())
        else:
            task = protocol.loop.create_task(coroutine)
        task.add_done_callback(protocol.tasks.discard)
        protocol.tasks.add(task)

    async def _run(self) -> None:
        try:
            await self.lean(self.scope, self._receive, self._send)
        except BaseException as exc:
            logger.error("Exception in ASGI application\n", exc_info=exc)
            self._fail()
        else:
            if not self.response_complete and not self.disconnected:
                logger.error("ASGI callable returned without completing response.")
                self._fail()

    def _fail(self) -> None:
        """As uvicorn's cycle when its app fails: a 500 if nothing was answered yet, then the connection closed."""
        transport = self.protocol.transport
        if not self.response_complete and not self.disconnected:  # the answer's head waits for its body
            self.response_started = self.response_complete = True
            transport.write(_FAILED)
        transport.close()

    async def _receive(self) -> Message:
        if self.disconnected or self.response_complete or self.more_body:
            return {"type": "http.disconnect"}
        body, self.body = bytes(self.body), bytearray()
        return {"type": "http.request", "body": body, "more_body": False}

    async def _send(self, message: Message) -> None:
        protocol = self.protocol
        if protocol.flow.write_paused and not self.disconnected:
            await protocol.flow.drain()
        if self.disconnected:
            return
        kind = message["type"]
        if kind == "http.response.start" and not self.response_started:
            self.response_started = True
            headers = message.get("headers", ())
            names = [name.lower() for name, _ in headers]
            values = [value for _, value in headers]
            # uvicorn's checks of each name and value, in one search each: '-' may be in a name, a tab in a value.
            if HEADER_RE.search(b"-".join(names)) or HEADER_VALUE_RE.search(b"\t".join(values)):
                raise RuntimeError("Invalid HTTP header.")
            head = [STATUS_LINE[message["status"]], _default_head(protocol.server_state.default_headers)]
            for name, value in zip(names, values, strict=True):
                head += (name, b": ", value, b"\r\n")
                if name == b"content-length":
                    self._length = int(value)
            self._head = b"".join(head)
        elif kind == "http.response.body" and self.response_started and not self.response_complete:
            if message.get("more_body", False):
                raise RuntimeError("the lean path answers in one body")
            body = message.get("body", b"")
            if self._length != len(body):  # every answer of the lean path says its length
                raise RuntimeError("Response content length differs from its Content-Length, or has none")
            self.response_complete = True
            protocol.transport.write(b"".join((self._head, b"\r\n", body)))
            if not self.keep_alive:  # the server is stopping
                protocol.transport.close()
            protocol.on_response_complete()
        else:
            raise RuntimeError(f"Unexpected ASGI message {kind!r}.")


#: uvicorn's default headers (the date, renewed every second as a new list) and their text.
_defaults: tuple[list[tuple[bytes, bytes]] | None, bytes] = (None, b"")


def _default_head(headers: list[tuple[bytes, bytes]]) -> bytes:
    """The text of uvicorn's default headers, made again only when uvicorn renews them."""
    global _defaults
    if _defaults[0] is not headers:
        _defaults = (headers, b"".join(b"%s: %s\r\n" % (name, value) for name, value in headers))
    return _defaults[1]
