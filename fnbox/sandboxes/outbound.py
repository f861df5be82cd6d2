"""One run's outbound HTTP requests, through one guarded client.

Every connection is made to an address the egress policy allowed (see egress.py): the
client's network backend resolves the host itself, checks the address and connects to
it, so a redirect to another host, a name that resolves somewhere private, or a second
resolution that answers differently (DNS rebinding) cannot reach past the policy. TLS
still verifies the certificate of the host named in the URL.

A run's requests are bounded together: their number, how many are open at once, the
bytes of each body in either direction (counted as they stream, after decompression, so
a gzip bomb stops at the cap), and time (never past the run's own deadline). Each ended
request adds a log entry to the run: `GET https://api.example.test/x -> 200 in 84 ms`.
Closing the session cancels what is still in flight.
"""

from __future__ import annotations

import asyncio
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpcore2

from fnbox import metrics
from fnbox.sandboxes.egress import EgressPolicy, EgressRefused, resolve

__all__ = [
    "OutboundConnectionFailed",
    "OutboundError",
    "OutboundLimits",
    "OutboundRedirects",
    "OutboundRefused",
    "OutboundResponse",
    "OutboundSession",
    "OutboundTimeout",
]

#: Request headers a function may not set: the client owns them (framing, the connection,
#: the host the policy checked).
_FORBIDDEN_HEADERS = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "keep-alive", "upgrade", "te", "trailer"}
)
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_MAX_REDIRECTS = 20
_MAX_URL = 16 * 1024
_CHUNK = 64 * 1024


class OutboundError(Exception):
    """A request that did not complete; the message says why in words a function's author can act on."""


class OutboundTimeout(OutboundError):
    """A request that ran out of time: its own timeout, or the run's (`run_ended`: the run is out of time too)."""

    def __init__(self, message: str, *, run_ended: bool = False) -> None:
        super().__init__(message)
        self.run_ended = run_ended


class OutboundRefused(OutboundError):
    """A request the egress policy refused."""


class OutboundConnectionFailed(OutboundError):
    """A request whose connection failed or broke off."""


class OutboundRedirects(OutboundError):
    """A redirect where none was allowed, or too many of them."""


@dataclass(frozen=True, kw_only=True)
class OutboundLimits:
    max_requests: int = 50
    max_concurrency: int = 6
    max_bytes: int = 10 * 1024 * 1024


@dataclass(frozen=True)
class OutboundResponse:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes
    #: The URL of the last hop, and whether a redirect led there.
    url: str
    redirected: bool


class _GuardedBackend(httpcore2.AsyncNetworkBackend):
    """Connects only to an address the policy allowed for the host asked for."""

    def __init__(self, policy: EgressPolicy) -> None:
        self._policy = policy
        self._inner = httpcore2.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore2.AsyncNetworkStream:
        address = await asyncio.to_thread(resolve, self._policy, host, port)
        return await self._inner.connect_tcp(str(address), port, timeout, local_address, socket_options)

    async def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore2.AsyncNetworkStream:
        raise EgressRefused("unix sockets are not reachable")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class OutboundSession:
    """The outbound requests of one run."""

    def __init__(
        self,
        policy: EgressPolicy,
        limits: OutboundLimits,
        *,
        deadline: float,
        on_log: Callable[[str], None] | None = None,
    ) -> None:
        self._limits = limits
        self._deadline = deadline  # time.monotonic() past which no request may wait
        self._on_log = on_log
        self._pool = httpcore2.AsyncConnectionPool(
            network_backend=_GuardedBackend(policy), max_connections=limits.max_concurrency
        )
        self._open = asyncio.Semaphore(limits.max_concurrency)
        self._made = 0

    async def aclose(self) -> None:
        await self._pool.aclose()

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Sequence[tuple[str, str]] = (),
        body: bytes = b"",
        redirect: str = "follow",
        timeout: float | None = None,
    ) -> OutboundResponse:
        """Send a request and read its whole body; `redirect` is follow, manual or error (as fetch's)."""
        method = _checked_method(method)
        headers = _checked_headers(headers)
        if len(body) > self._limits.max_bytes:
            raise OutboundError(f"the request body has {len(body)} bytes; the most is {self._limits.max_bytes}")
        if redirect not in ("follow", "manual", "error"):
            raise OutboundError(f"redirect must be follow, manual or error, not {redirect!r}")
        first = url
        for hop in range(_MAX_REDIRECTS + 1):
            response = await self._one(method, url, headers, body, timeout)
            location = next((value for name, value in response.headers if name.lower() == "location"), None)
            if response.status not in _REDIRECTS or location is None or redirect == "manual":
                return OutboundResponse(response.status, response.reason, response.headers, response.body, url, hop > 0)
            if redirect == "error":
                raise OutboundRedirects(
                    f"{method} {url} answered a redirect ({response.status}) and redirect is 'error'"
                )
            target = urljoin(url, location)
            if urlsplit(target).netloc != urlsplit(url).netloc:
                headers = [(name, value) for name, value in headers if name.lower() not in ("authorization", "cookie")]
            if response.status == 303 or (response.status in (301, 302) and method == "POST"):
                method, body = ("GET" if method != "HEAD" else method), b""
                headers = [(name, value) for name, value in headers if not name.lower().startswith("content-")]
            url = target
        raise OutboundRedirects(f"{first} redirected more than {_MAX_REDIRECTS} times")

    async def _one(
        self, method: str, url: str, headers: list[tuple[str, str]], body: bytes, timeout: float | None
    ) -> OutboundResponse:
        parts = _checked_url(url)
        if self._made >= self._limits.max_requests:
            raise OutboundError(f"a run may make at most {self._limits.max_requests} requests")
        self._made += 1
        started = time.monotonic()
        left = self._deadline - started
        wait = left if timeout is None else min(timeout, left)
        run_ended = wait == left  # when it times out, so does the run
        if wait <= 0:
            raise OutboundTimeout(f"{method} {url}: no time is left in this run", run_ended=True)
        try:
            async with asyncio.timeout(wait), self._open:
                answer = await self._send(method, url, parts.hostname or "", headers, body)
        except TimeoutError:
            self._log(f"{method} {url} -> timed out after {_ms(started)} ms")
            metrics.EGRESS_REQUESTS.labels("timed_out").inc()
            raise OutboundTimeout(f"{method} {url} timed out after {_ms(started)} ms", run_ended=run_ended) from None
        except EgressRefused as exc:
            self._log(f"{method} {url} -> refused: {exc}")
            metrics.EGRESS_REQUESTS.labels("refused").inc()
            raise OutboundRefused(f"{method} {url} refused by the egress policy: {exc}") from None
        except httpcore2.TimeoutException:
            self._log(f"{method} {url} -> timed out after {_ms(started)} ms")
            metrics.EGRESS_REQUESTS.labels("timed_out").inc()
            raise OutboundTimeout(f"{method} {url} timed out after {_ms(started)} ms") from None
        except (httpcore2.NetworkError, httpcore2.ProtocolError, OSError) as exc:
            self._log(f"{method} {url} -> failed: {exc or type(exc).__name__}")
            metrics.EGRESS_REQUESTS.labels("failed").inc()
            raise OutboundConnectionFailed(f"{method} {url} failed: {exc or type(exc).__name__}") from None
        except OutboundError as exc:
            self._log(f"{method} {url} -> {exc}")
            metrics.EGRESS_REQUESTS.labels("failed").inc()
            raise
        self._log(f"{method} {url} -> {answer.status} in {_ms(started)} ms")
        metrics.EGRESS_REQUESTS.labels("answered").inc()
        return answer

    async def _send(
        self, method: str, url: str, host: str, headers: list[tuple[str, str]], body: bytes
    ) -> OutboundResponse:
        sent = [*headers, ("accept-encoding", "gzip, deflate")] if not _has(headers, "accept-encoding") else headers
        async with self._pool.stream(method, url, headers=sent, content=body or None) as response:
            reason = response.extensions.get("reason_phrase", b"")
            received = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in response.headers]
            decoder = _decoder(dict((name.lower(), value) for name, value in received).get("content-encoding", ""))
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_stream():
                for piece in decoder(chunk):
                    size += len(piece)
                    if size > self._limits.max_bytes:
                        raise OutboundError(f"the response of {host} passed {self._limits.max_bytes} bytes")
                    chunks.append(piece)
            if decoder is not _identity:
                received = [(n, v) for n, v in received if n.lower() not in ("content-encoding", "content-length")]
            return OutboundResponse(
                response.status, bytes(reason).decode("latin-1"), received, b"".join(chunks), url, False
            )

    def _log(self, message: str) -> None:
        if self._on_log is not None:
            self._on_log(message)


def _ms(since: float) -> int:
    return round((time.monotonic() - since) * 1000)


def _has(headers: Sequence[tuple[str, str]], name: str) -> bool:
    return any(key.lower() == name for key, _ in headers)


def _checked_method(method: str) -> str:
    if not isinstance(method, str) or not method.isascii() or not method.isalpha() or len(method) > 16:
        raise OutboundError(f"{method!r} is not an HTTP method")
    method = method.upper()
    if method in ("CONNECT", "TRACE", "TRACK"):
        raise OutboundError(f"the {method} method is not allowed")
    return method


def _checked_headers(headers: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    checked = []
    for name, value in headers:
        if not isinstance(name, str) or not isinstance(value, str):
            raise OutboundError("header names and values must be strings")
        if not name or not all(33 <= ord(c) < 127 and c not in '()<>@,;:\\"/[]?={}' for c in name):
            raise OutboundError(f"{name!r} is not a valid header name")
        if any(c in value for c in "\r\n\0"):
            raise OutboundError(f"the value of header {name!r} holds a line break or a NUL")
        if name.lower() in _FORBIDDEN_HEADERS:
            raise OutboundError(f"the {name!r} header is set by fnbox, not by a function")
        checked.append((name, value))
    return checked


def _checked_url(url: str) -> Any:
    if len(url) > _MAX_URL:
        raise OutboundError(f"a URL may have at most {_MAX_URL} characters")
    if any(c in url for c in "\r\n\0\t "):
        raise OutboundError("a URL may not hold white space, a line break or a NUL")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError for a bad port)
    except ValueError as exc:
        raise OutboundError(f"{url!r} is not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise OutboundError(f"{url!r}: only http and https URLs with a host can be fetched")
    if parts.username or parts.password:
        raise OutboundError(f"{url!r}: credentials in a URL are not sent; use an Authorization header")
    return parts


def _identity(chunk: bytes) -> list[bytes]:
    return [chunk]


def _decoder(encoding: str) -> Callable[[bytes], list[bytes]]:
    """Decompress as the bytes arrive, in bounded pieces, so that a bomb is caught by the byte cap."""
    encoding = encoding.strip().lower()
    if encoding in ("gzip", "x-gzip", "deflate"):
        inflater = zlib.decompressobj(zlib.MAX_WBITS | 32)  # gzip or zlib, from its header

        def inflate(chunk: bytes) -> list[bytes]:
            pieces = []
            data = chunk
            while data:
                pieces.append(inflater.decompress(data, _CHUNK))
                data = inflater.unconsumed_tail
            return pieces

        return inflate
    if encoding in ("", "identity"):
        return _identity
    raise OutboundError(f"the response is encoded as {encoding!r}, which fnbox does not decode")
