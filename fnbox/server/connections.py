"""The HTTP connections the server keeps: bounded in number, in header size and in time.

uvicorn has settings for most of it (`limit_concurrency`, `timeout_keep_alive`), and they
are used. What its httptools protocol lacks is added by a small subclass:

- the header section of a request is capped in bytes (counted as they arrive, since
  httptools buffers a header until it ends) and in count; past either, `431` and close;
- a request must arrive in full (headers and body) within `request_timeout` seconds of
  its first byte, and a new connection must start one as soon: else `408` (or a plain
  close when nothing came) - slow clients cannot hold connections open one byte at a time;
- past `max_connections`, a new connection pushes out the oldest one that is not being
  answered (idle, or still sending its request), so idle sockets never lock healthy
  clients out; if every connection is being answered, the new one is closed;
- a keep-alive connection that has begun no request for `keep_alive_timeout` seconds since
  its last answer is closed, by one sweep of the server's connections every `IDLE_SWEEP`
  seconds (a quarter of the timeout when that is less), up to that much late. uvicorn arms
  a timer for it after every answer and cancels it at the next bytes (about 8,000 of the
  server's instructions per request), and blank lines sent now and then kept it open.

At start the server raises its own soft `RLIMIT_NOFILE` to the hard limit, so the cap
on connections, not the file descriptor limit, is what sheds them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import resource
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from fnbox.server.coalescing import CoalescingTransport
from fnbox.server.direct import DirectCycle, direct_cycle, lean_path_of
from fnbox.server.runpath import RunPath
from fnbox.server.settings import Settings

__all__ = ["ConnectionLimits", "connection_limits", "guarded_protocol", "raise_file_limit", "uvicorn_options"]

logger = logging.getLogger("fnbox")

#: Header fields one request may carry (nginx and h11 accept about as many).
MAX_HEADERS = 100
#: Seconds before the end of the grace period that requests still unanswered get their 503
#: (after it, uvicorn cancels them and closes their connections without a word).
STOP_MARGIN = 1.0
#: File descriptors kept for everything but client connections (workers, the database, logs).
RESERVED_FILES = 256
#: Seconds between two looks for keep-alive connections idle past their timeout, at most.
IDLE_SWEEP = 1.0


@dataclass(frozen=True, kw_only=True)
class ConnectionLimits:
    """The server's settings HTTP_MAX_CONNECTIONS, HTTP_MAX_HEADER_SIZE, HTTP_REQUEST_TIMEOUT, HTTP_KEEP_ALIVE_TIMEOUT."""

    max_connections: int
    max_header_size: int
    request_timeout: float
    keep_alive_timeout: float
    max_headers: int = MAX_HEADERS
    #: SHUTDOWN_GRACE_PERIOD: a request still unanswered this long after SIGTERM answers 503.
    shutdown_grace: float | None = None


def raise_file_limit() -> int:
    """Raise the soft limit on open files to the hard limit; return the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError) as exc:
            logger.warning("could not raise the open files limit from %d to %d: %s", soft, hard, exc)
    return soft


def uvicorn_options(limits: ConnectionLimits) -> dict[str, Any]:
    """uvicorn.run's keyword arguments for these limits (the file limit raised first)."""
    files = raise_file_limit()
    connections = limits.max_connections
    if files != resource.RLIM_INFINITY and connections > files - RESERVED_FILES:
        connections = max(64, files - RESERVED_FILES)
        logger.warning(
            "HTTP_MAX_CONNECTIONS=%d is more than the open files limit (%d) allows: %d connections at most",
            limits.max_connections,
            files,
            connections,
        )
    return {
        "http": guarded_protocol(dataclasses.replace(limits, max_connections=connections)),
        # uvicorn's own cap answers 503 past it; the eviction below keeps connections under it.
        "limit_concurrency": connections + 1,
        "timeout_keep_alive": limits.keep_alive_timeout,
        "h11_max_incomplete_event_size": limits.max_header_size,
        # No `server: uvicorn` on every answer: a header each one pays for, naming software to scanners.
        "server_header": False,
    }


def guarded_protocol(limits: ConnectionLimits) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol with these limits (uvicorn builds it with its own arguments)."""
    return type("GuardedHttpToolsProtocol", (GuardedHttpToolsProtocol,), {"limits": limits})


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    limits: ConnectionLimits  # set by guarded_protocol

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._refusal: int | None = None  # the status this connection is being closed with
        self._header_bytes = 0
        self._header_count = 0
        self._in_headers = False
        self._arriving = False  # a request has begun and not fully arrived
        self._completed = 0  # requests that arrived in full
        self._arrival_timer: asyncio.TimerHandle | None = None
        self.idle_since: float | None = None  # when its last answer ended, if nothing came since
        self._lean: tuple[Any, RunPath] | None = None  # the app and its lean path, for direct runs

    # ---- connections -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.transport = CoalescingTransport(transport)  # flow control keeps the socket's own
        order = _order(self.server_state)
        order[self] = None
        if len(self.connections) > self.limits.max_connections and not _evict(order, self):
            logger.warning("%d connections open: a new one is refused", len(self.connections))
            self.transport.close()
            return
        _sweep_soon(self.server_state, self.loop, self.timeout_keep_alive)
        self._lean = lean_path_of(self.app)
        self._arm_arrival_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        _order(self.server_state).pop(self, None)
        self._cancel_arrival_timer()
        super().connection_lost(exc)

    @property
    def answering(self) -> bool:
        """A request of this connection is being handled: it must not be pushed out."""
        return self.cycle is not None and not self.cycle.response_complete

    # ---- requests ----------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self._refusal is not None:
            return
        completed = self._completed
        super().data_received(data)
        if self._arriving or self._completed != completed:
            # A request came: no longer idle. Bytes that begin none (blank lines between
            # requests, which the parser skips) leave the connection as idle as it was.
            self.idle_since = None
        if self._arriving and self._arrival_timer is None:
            # A request began in this chunk and has not all arrived. Armed here rather than at its
            # beginning: a request that arrives in one chunk (most do) never needs the timer.
            self._arm_arrival_timer()
        if self._completed != completed:
            self._header_bytes = 0  # a request ended in this chunk: what follows is counted from its next one
        elif self._refusal is None and (self._in_headers or not self._arriving):
            # The whole chunk went to a header section that has not ended: httptools keeps
            # an unfinished header in memory, so it is counted here, as it arrives.
            self._header_bytes += len(data)
            if self._header_bytes > self.limits.max_header_size:
                self._refuse(431, "the request's headers are too large")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_count = 0
        self._header_bytes = 0
        self._in_headers = True
        self._arriving = True
        self._cancel_arrival_timer()  # the wait for a first request; `data_received` arms this one's if it needs it

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > self.limits.max_headers:
            self._refuse(431, f"the request has more than {self.limits.max_headers} header fields")
            raise _Refused
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_headers = False
        self._header_bytes = 0
        if self._lean is not None:
            cycle = direct_cycle(self, *self._lean)
            if cycle is not None:
                self.cycle = cycle  # type: ignore[assignment]  # it has what uvicorn reads of its own
                return
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._completed += 1
        self._arriving = False
        self._cancel_arrival_timer()
        super().on_message_complete()
        if type(self.cycle) is DirectCycle:
            self.cycle.start()

    def on_response_complete(self) -> None:
        """uvicorn's, with the connection marked idle instead of a keep-alive timer armed (see IDLE_SWEEP)."""
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self.flow.resume_reading()
        if self.pipeline:  # a request that came while this one was answered: its turn
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
        else:
            self.idle_since = time.monotonic()

    def send_400_response(self, msg: str) -> None:
        if self._refusal is not None:
            return  # a refusal of ours, raised through the parser: answered already
        super().send_400_response(msg)

    def shutdown(self) -> None:
        """uvicorn stops: a request being answered gets until just before the grace period ends."""
        super().shutdown()
        if self.answering and self.limits.shutdown_grace is not None:
            self.loop.call_later(max(0.0, self.limits.shutdown_grace - STOP_MARGIN), self._stopped)

    def _stopped(self) -> None:
        if self.answering and not self.transport.is_closing():
            self._refuse(503, "the service stopped before this request could be answered; try again")

    # ---- timers ------------------------------------------------------------------------

    def _arm_arrival_timer(self) -> None:
        self._cancel_arrival_timer()
        self._arrival_timer = self.loop.call_later(self.limits.request_timeout, self._arrival_timed_out)

    def _cancel_arrival_timer(self) -> None:
        if self._arrival_timer is not None:
            self._arrival_timer.cancel()
            self._arrival_timer = None

    def _arrival_timed_out(self) -> None:
        self._arrival_timer = None
        if (self.answering and not self._arriving) or self.transport.is_closing():
            return
        if self._arriving:
            self._refuse(408, "the request did not arrive in time")
        else:
            self.transport.close()  # a connection that never sent a request

    def _refuse(self, status: int, message: str) -> None:
        """Answer `status` with a short JSON error and close the connection."""
        if self._refusal is not None or self.transport.is_closing():
            return
        self._refusal = status
        code = "Overloaded" if status == 503 else "InvalidRequest"  # codes of the README's table
        body = f'{{"error":"{code}","message":"{message}"}}'.encode()
        head = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            head += [name, b": ", value, b"\r\n"]
        head += [
            b"content-type: application/json\r\n",
            b"content-length: " + str(len(body)).encode() + b"\r\n",
            b"connection: close\r\n\r\n",
        ]
        cycle = self.cycle  # the last request's: answered already, or not begun, unless one is half sent
        if cycle is None or not cycle.response_started or cycle.response_complete:
            self.transport.write(b"".join(head) + body)
        self.transport.close()


class _Refused(Exception):
    """Raised through httptools to stop parsing a refused request."""


def _order(state: Any) -> OrderedDict[GuardedHttpToolsProtocol, None]:
    """The server's guarded connections, oldest first."""
    order: OrderedDict[GuardedHttpToolsProtocol, None] | None = getattr(state, "fnbox_connections", None)
    if order is None:
        order = state.fnbox_connections = OrderedDict()
    return order


def _sweep_soon(state: Any, loop: asyncio.AbstractEventLoop, timeout: float) -> None:
    """Have the server's connections swept for idle ones, unless a sweep is due already."""
    if getattr(state, "fnbox_sweep", None) is None:
        state.fnbox_sweep = loop.call_later(min(IDLE_SWEEP, timeout / 4), _sweep, state, loop, timeout)


def _sweep(state: Any, loop: asyncio.AbstractEventLoop, timeout: float) -> None:
    """Close the keep-alive connections idle for `timeout` seconds; again later while any is open."""
    state.fnbox_sweep = None
    order = _order(state)
    now = time.monotonic()
    idle = [
        connection
        for connection in order
        if connection.idle_since is not None and now - connection.idle_since >= timeout
    ]
    for connection in idle:
        connection.idle_since = None
        if not connection.transport.is_closing():
            connection.transport.close()
    if order:
        _sweep_soon(state, loop, timeout)


def _evict(order: OrderedDict[GuardedHttpToolsProtocol, None], newcomer: GuardedHttpToolsProtocol) -> bool:
    """Close the oldest connection not being answered; False if there is none."""
    for connection in order:
        if connection is not newcomer and not connection.answering and not connection.transport.is_closing():
            order.pop(connection)
            connection.transport.close()
            connection.connections.discard(connection)
            return True
    return False


def connection_limits(settings: Settings) -> ConnectionLimits:
    return ConnectionLimits(
        max_connections=settings.http_max_connections,
        max_header_size=settings.http_max_header_size,
        request_timeout=settings.http_request_timeout,
        keep_alive_timeout=settings.http_keep_alive_timeout,
        shutdown_grace=settings.runtime.shutdown_grace,
    )
