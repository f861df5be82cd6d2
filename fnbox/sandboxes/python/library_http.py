"""Outbound HTTP for Python functions: a `requests`-compatible module, `urllib.request` and `urllib.error`.

Every request goes through the run's guarded client (sandboxes.outbound, under the egress
policy and the per-run caps) on the worker's event loop; the calling run waits outside its
sandbox's turn (turns.py), bounded by its deadline, and a cancelled run stops waiting at
once. What user code gets back is plain data (status, headers, bytes): no socket, no
connection pool, no adapter. What is left out, and why, is in LEFT_OUT.
"""

from __future__ import annotations

import base64
import datetime
import json as jsonlib
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from typing import Any

from fnbox.sandboxes.outbound import (
    OutboundConnectionFailed,
    OutboundError,
    OutboundRedirects,
    OutboundRefused,
    OutboundResponse,
    OutboundTimeout,
)
from fnbox.sandboxes.python import turns
from fnbox.sandboxes.python.guards import LIBRARY_INSTANCE_TYPES, Guards

__all__ = ["BUILDERS", "LEFT_OUT"]

LEFT_OUT: dict[str, dict[str, str]] = {
    "requests": {
        "adapters": "transport adapters open their own connections, past the egress policy",
        "Request": "prepared requests carry hooks; pass method, url and the keyword arguments instead",
        "PreparedRequest": "prepared requests carry hooks; pass method, url and the keyword arguments instead",
        "hooks": "callbacks run by the client, outside the run's checks",
        "packages": "the vendored urllib3, chardet and idna modules hold sockets and file access",
        "certs": "reads the certificate bundle from the file system",
        "utils": "reads .netrc and environment proxies from the host",
    },
    "urllib.request": {
        "build_opener": "handlers open their own connections (file:, ftp:, proxies), past the egress policy",
        "install_opener": "changes how every workspace of the worker opens URLs",
        "urlretrieve": "writes to the file system",
        "ProxyHandler": "a proxy would carry requests past the egress policy",
        "HTTPHandler": "handlers open their own connections, past the egress policy",
        "HTTPSHandler": "handlers open their own connections, past the egress policy",
        "FileHandler": "reads the worker's file system",
        "OpenerDirector": "handlers open their own connections, past the egress policy",
    },
    "urllib.error": {},
}

_REASONS = {
    200: "OK",
    201: "Created",
    202: "Accepted",
    204: "No Content",
    301: "Moved Permanently",
    302: "Found",
    304: "Not Modified",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


# ---- requests.exceptions ------------------------------------------------------------------


class RequestException(IOError):
    """The base of requests' errors, as in requests."""

    def __init__(self, *args: Any, response: Response | None = None, **kwargs: Any) -> None:
        super().__init__(*args)
        self.response = response


class ConnectionError(RequestException):
    pass


class HTTPError(RequestException):
    pass


class Timeout(RequestException):
    pass


class ConnectTimeout(ConnectionError, Timeout):
    pass


class ReadTimeout(Timeout):
    pass


class TooManyRedirects(RequestException):
    pass


class InvalidURL(RequestException, ValueError):
    pass


class MissingSchema(RequestException, ValueError):
    pass


class InvalidSchema(RequestException, ValueError):
    pass


class InvalidHeader(RequestException, ValueError):
    pass


class JSONDecodeError(RequestException, ValueError):
    pass


class ContentDecodingError(RequestException):
    pass


_EXCEPTIONS: dict[str, type[BaseException]] = {
    cls.__name__: cls
    for cls in (
        RequestException,
        ConnectionError,
        HTTPError,
        Timeout,
        ConnectTimeout,
        ReadTimeout,
        TooManyRedirects,
        InvalidURL,
        MissingSchema,
        InvalidSchema,
        InvalidHeader,
        JSONDecodeError,
        ContentDecodingError,
    )
}


class CaseInsensitiveDict(MutableMapping[str, str]):
    """Headers, looked up whatever the case of the name (requests.structures.CaseInsensitiveDict)."""

    def __init__(self, data: Any = None, **kwargs: str) -> None:
        self._store: dict[str, tuple[str, str]] = {}
        self.update(data or {}, **kwargs)

    def __setitem__(self, key: str, value: str) -> None:
        self._store[str(key).lower()] = (str(key), value)

    def __getitem__(self, key: str) -> str:
        return self._store[str(key).lower()][1]

    def __delitem__(self, key: str) -> None:
        del self._store[str(key).lower()]

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._store.values())

    def __len__(self) -> int:
        return len(self._store)

    def __repr__(self) -> str:
        return repr(dict(self.items()))

    def copy(self) -> CaseInsensitiveDict:
        return CaseInsensitiveDict(dict(self.items()))


def _joined_headers(pairs: list[tuple[str, str]]) -> CaseInsensitiveDict:
    headers = CaseInsensitiveDict()
    for name, value in pairs:
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


class Response:
    """What a request answered: plain data, as requests.Response shows it."""

    def __init__(self, answer: OutboundResponse, method: str, elapsed: float) -> None:
        self.status_code = answer.status
        self.reason = answer.reason or _REASONS.get(answer.status, "")
        self.headers = _joined_headers(answer.headers)
        self.content = answer.body
        self.url = answer.url
        self.history: list[Response] = []
        self.elapsed = datetime.timedelta(seconds=elapsed)
        self.encoding = _charset(self.headers.get("content-type", "")) or (
            "utf-8" if "json" in self.headers.get("content-type", "") else "ISO-8859-1"
        )
        self.method = method

    @property
    def text(self) -> str:
        return self.content.decode(self.encoding or "utf-8", errors="replace")

    @property
    def ok(self) -> bool:
        return self.status_code < 400

    def json(self, **kwargs: Any) -> Any:
        if kwargs:
            raise TypeError("Response.json() takes no arguments in fnbox functions")
        try:
            return jsonlib.loads(self.content)
        except ValueError as exc:
            raise JSONDecodeError(f"the response of {self.url} is not JSON: {exc}", response=self) from None

    def raise_for_status(self) -> None:
        if 400 <= self.status_code < 600:
            kind = "Client" if self.status_code < 500 else "Server"
            raise HTTPError(f"{self.status_code} {kind} Error: {self.reason} for url: {self.url}", response=self)

    def iter_content(self, chunk_size: int | None = 1, decode_unicode: bool = False) -> Iterator[Any]:
        body: Any = self.text if decode_unicode else self.content
        size = len(body) if chunk_size is None else max(int(chunk_size), 1)
        return (body[i : i + size] for i in range(0, len(body), size))

    def iter_lines(self, chunk_size: int = 512, decode_unicode: bool = False) -> Iterator[Any]:
        body: Any = self.text if decode_unicode else self.content
        return iter(body.splitlines())

    def close(self) -> None:
        pass

    def __enter__(self) -> Response:
        return self

    def __exit__(self, *exc: Any) -> None:
        pass

    def __bool__(self) -> bool:
        return self.ok

    def __repr__(self) -> str:
        return f"<Response [{self.status_code}]>"


def _charset(content_type: str) -> str | None:
    for part in content_type.split(";")[1:]:
        name, _, value = part.strip().partition("=")
        if name.lower() == "charset" and value:
            charset = value.strip("\"' ")
            try:
                "".encode(charset)
            except LookupError:
                return None
            return charset
    return None


def _send(
    method: str,
    url: str,
    headers: list[tuple[str, str]],
    body: bytes,
    redirect: str,
    timeout: float | None,
    errors: Callable[[OutboundError], BaseException],
) -> tuple[OutboundResponse, float]:
    run = turns.current()
    if run is None:
        raise RuntimeError("outbound requests are made from a running function only")
    started = time.perf_counter()
    try:
        answer = run.request(method, url, headers=headers, body=body, redirect=redirect, timeout=timeout)
    except OutboundError as exc:
        raise errors(exc) from None
    return answer, time.perf_counter() - started


def _requests_error(exc: OutboundError) -> BaseException:
    message = str(exc)
    if isinstance(exc, OutboundTimeout):
        return ReadTimeout(message)
    if isinstance(exc, OutboundRedirects):
        return TooManyRedirects(message)
    if isinstance(exc, OutboundRefused | OutboundConnectionFailed):
        return ConnectionError(message)
    if "only http and https" in message:
        return InvalidSchema(message)
    if "not a valid URL" in message or "URL may" in message:
        return InvalidURL(message)
    if "header" in message:
        return InvalidHeader(message)
    return RequestException(message)


def _timeout(value: Any) -> float | None:
    """requests' `timeout`: seconds, or (connect, read), which together bound the request here."""
    if value is None:
        return None
    if isinstance(value, (tuple, list)):
        parts = [float(part) for part in value if part is not None]
        return sum(parts) if parts else None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ValueError(f"timeout must be a positive number of seconds, not {value!r}")
    return float(value)


def _header_pairs(*sources: Any) -> list[tuple[str, str]]:
    merged = CaseInsensitiveDict()
    for source in sources:
        if not source:
            continue
        items = source.items() if isinstance(source, Mapping) else source
        for name, value in items:
            if value is None:
                merged.pop(name, None)
                continue
            if isinstance(value, bytes):
                value = value.decode("latin-1")
            if not isinstance(name, str) or not isinstance(value, str):
                raise InvalidHeader(f"header {name!r}: names and values must be str (or bytes), not {value!r}")
            merged[name] = value
    return list(merged.items())


def _encode_data(data: Any) -> tuple[bytes, str | None]:
    """A body from requests' `data`: bytes or text as they are, a mapping or pairs form-encoded."""
    if data is None:
        return b"", None
    if isinstance(data, bytes | bytearray):
        return bytes(data), None
    if isinstance(data, str):
        return data.encode("utf-8"), None
    if isinstance(data, (Mapping, list, tuple)):
        return urllib.parse.urlencode(data, doseq=True).encode("ascii"), "application/x-www-form-urlencoded"
    raise TypeError(f"data must be bytes, str, a dict or a list of pairs, not {type(data).__name__}")


def _with_params(url: str, params: Any) -> str:
    if not params:
        return url
    if isinstance(params, (str, bytes)):
        query = params.decode() if isinstance(params, bytes) else params
    else:
        pairs = params.items() if isinstance(params, Mapping) else params
        query = urllib.parse.urlencode([(k, v) for k, v in pairs if v is not None], doseq=True)
    base, hash_sign, fragment = url.partition("#")
    joined = base + ("&" if "?" in base else "?") + query
    return joined + hash_sign + fragment


def _check_url(url: Any) -> str:
    if isinstance(url, bytes):
        url = url.decode("utf-8")
    if not isinstance(url, str):
        raise InvalidURL(f"the URL must be a str, not {type(url).__name__}")
    url = url.strip()
    if "://" not in url:
        raise MissingSchema(f"invalid URL {url!r}: no scheme supplied; perhaps you meant https://{url}?")
    return url


def request(
    method: str,
    url: Any,
    params: Any = None,
    data: Any = None,
    headers: Any = None,
    cookies: Any = None,
    files: Any = None,
    auth: Any = None,
    timeout: Any = None,
    allow_redirects: bool = True,
    proxies: Any = None,
    hooks: Any = None,
    stream: Any = None,
    verify: Any = None,
    cert: Any = None,
    json: Any = None,
    _session_headers: Any = None,
) -> Response:
    """requests.request(): one request through the run's guarded client."""
    if files is not None:
        raise TypeError("requests files= uploads are not available in fnbox functions: send data= or json=")
    if proxies or hooks or cert:
        raise TypeError("requests proxies=, hooks= and cert= are not available in fnbox functions")
    if verify is False:
        raise TypeError("requests verify=False is not available in fnbox functions: certificates are always checked")
    url = _with_params(_check_url(url), params)
    extra: dict[str, str] = {}
    if json is not None and data is None:
        body = jsonlib.dumps(json).encode("utf-8")
        extra["Content-Type"] = "application/json"
    else:
        body, content_type = _encode_data(data)
        if content_type:
            extra["Content-Type"] = content_type
    if auth is not None:
        if not isinstance(auth, (tuple, list)) or len(auth) != 2:
            raise TypeError("requests auth= takes a (user, password) pair in fnbox functions")
        user, password = (part.decode("latin-1") if isinstance(part, bytes) else str(part) for part in auth)
        extra["Authorization"] = "Basic " + base64.b64encode(f"{user}:{password}".encode("latin-1")).decode()
    if cookies:
        extra["Cookie"] = "; ".join(f"{name}={value}" for name, value in dict(cookies).items())
    pairs = _header_pairs(_session_headers, extra, headers)
    method = str(method).upper()
    answer, elapsed = _send(
        method, url, pairs, body, "follow" if allow_redirects else "manual", _timeout(timeout), _requests_error
    )
    return Response(answer, method, elapsed)


def _verb(method: str) -> Callable[..., Response]:
    def call(url: Any, *args: Any, **kwargs: Any) -> Response:
        if method in ("GET", "OPTIONS", "HEAD") and args:
            kwargs.setdefault("params", args[0])
        elif args:
            kwargs.setdefault("data", args[0])
        if method == "HEAD":
            kwargs.setdefault("allow_redirects", False)
        return request(method, url, **kwargs)

    call.__name__ = method.lower()
    return call


class Session:
    """requests.Session: default headers, params and auth for the requests it sends (no connection is kept)."""

    def __init__(self) -> None:
        self.headers = CaseInsensitiveDict({"Accept": "*/*", "User-Agent": "fnbox"})
        self.params: dict[str, Any] = {}
        self.auth: Any = None

    def request(self, method: str, url: Any, **kwargs: Any) -> Response:
        params = kwargs.pop("params", None)
        if self.params:
            merged = dict(self.params)
            merged.update(params or {})
            params = merged
        if self.auth is not None:
            kwargs.setdefault("auth", self.auth)
        return request(method, url, params=params, _session_headers=self.headers, **kwargs)

    def get(self, url: Any, **kwargs: Any) -> Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: Any, data: Any = None, json: Any = None, **kwargs: Any) -> Response:
        return self.request("POST", url, data=data, json=json, **kwargs)

    def put(self, url: Any, data: Any = None, **kwargs: Any) -> Response:
        return self.request("PUT", url, data=data, **kwargs)

    def patch(self, url: Any, data: Any = None, **kwargs: Any) -> Response:
        return self.request("PATCH", url, data=data, **kwargs)

    def delete(self, url: Any, **kwargs: Any) -> Response:
        return self.request("DELETE", url, **kwargs)

    def head(self, url: Any, **kwargs: Any) -> Response:
        kwargs.setdefault("allow_redirects", False)
        return self.request("HEAD", url, **kwargs)

    def options(self, url: Any, **kwargs: Any) -> Response:
        return self.request("OPTIONS", url, **kwargs)

    def close(self) -> None:
        pass

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: Any) -> None:
        pass


class _Codes:
    """requests.codes: status codes by name (`requests.codes.ok`)."""

    __slots__ = ()
    ok = okay = 200
    created = 201
    accepted = 202
    no_content = 204
    moved_permanently = 301
    found = 302
    not_modified = 304
    bad_request = 400
    unauthorized = 401
    forbidden = 403
    not_found = 404
    conflict = 409
    too_many_requests = 429
    internal_server_error = server_error = 500
    bad_gateway = 502
    service_unavailable = 503
    gateway_timeout = 504


def _requests(guards: Guards) -> dict[str, Any]:
    from fnbox.sandboxes.python.modules import make_proxy

    members: dict[str, Any] = {
        "request": request,
        "get": _verb("GET"),
        "post": _verb("POST"),
        "put": _verb("PUT"),
        "patch": _verb("PATCH"),
        "delete": _verb("DELETE"),
        "head": _verb("HEAD"),
        "options": _verb("OPTIONS"),
        "Session": Session,
        "session": Session,
        "Response": Response,
        "codes": _Codes(),
        "structures": make_proxy("requests.structures", {"CaseInsensitiveDict": CaseInsensitiveDict}),
        "exceptions": make_proxy("requests.exceptions", dict(_EXCEPTIONS)),
    }
    members.update(_EXCEPTIONS)
    return members


# ---- urllib.request and urllib.error ------------------------------------------------------


class URLError(OSError):
    """urllib.error.URLError: the request did not get an answer."""

    def __init__(self, reason: Any) -> None:
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return f"<urlopen error {self.reason}>"


class _Headers:
    """The headers of an answer, as http.client's HTTPMessage reads them."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._pairs = list(pairs)

    def get(self, name: str, failobj: Any = None) -> Any:
        return next((v for n, v in self._pairs if n.lower() == str(name).lower()), failobj)

    def get_all(self, name: str, failobj: Any = None) -> Any:
        found = [v for n, v in self._pairs if n.lower() == str(name).lower()]
        return found or failobj

    def get_content_charset(self, failobj: Any = None) -> Any:
        return _charset(self.get("content-type", "")) or failobj

    def get_content_type(self) -> str:
        return str(self.get("content-type", "text/plain")).split(";")[0].strip().lower()

    def items(self) -> list[tuple[str, str]]:
        return list(self._pairs)

    def keys(self) -> list[str]:
        return [n for n, _ in self._pairs]

    def values(self) -> list[str]:
        return [v for _, v in self._pairs]

    def __getitem__(self, name: str) -> Any:
        return self.get(name)

    def __contains__(self, name: object) -> bool:
        return self.get(str(name)) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self._pairs)

    def __str__(self) -> str:
        return "".join(f"{n}: {v}\n" for n, v in self._pairs)


class HTTPResponse:
    """What urlopen() answers: the whole body, already read, served as a file."""

    def __init__(self, answer: OutboundResponse) -> None:
        self.status = self.code = answer.status
        self.reason = self.msg = answer.reason or _REASONS.get(answer.status, "")
        self.headers = _Headers(answer.headers)
        self.url = answer.url
        self._body = answer.body
        self._at = 0
        self.closed = False

    def read(self, amt: int | None = None) -> bytes:
        end = len(self._body) if amt is None or amt < 0 else min(self._at + int(amt), len(self._body))
        chunk, self._at = self._body[self._at : end], end
        return chunk

    def readline(self, limit: int = -1) -> bytes:
        end = self._body.find(b"\n", self._at)
        end = len(self._body) if end < 0 else end + 1
        if limit is not None and limit >= 0:
            end = min(end, self._at + limit)
        chunk, self._at = self._body[self._at : end], end
        return chunk

    def readlines(self) -> list[bytes]:
        lines = []
        while line := self.readline():
            lines.append(line)
        return lines

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.readlines())

    def getcode(self) -> int:
        return self.status

    def geturl(self) -> str:
        return self.url

    def getheader(self, name: str, default: Any = None) -> Any:
        return self.headers.get(name, default)

    def getheaders(self) -> list[tuple[str, str]]:
        return self.headers.items()

    def info(self) -> _Headers:
        return self.headers

    def close(self) -> None:
        self.closed = True

    def __enter__(self) -> HTTPResponse:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class UrllibHTTPError(URLError, HTTPResponse):
    """urllib.error.HTTPError: an answer with a 4xx or 5xx status, readable like any answer."""

    def __init__(self, answer: OutboundResponse) -> None:
        HTTPResponse.__init__(self, answer)
        URLError.__init__(self, self.reason)
        self.hdrs = self.headers
        self.filename = answer.url

    def __str__(self) -> str:
        return f"HTTP Error {self.code}: {self.reason}"


UrllibHTTPError.__name__ = UrllibHTTPError.__qualname__ = "HTTPError"


class Request:
    """urllib.request.Request: a URL, a body, headers and a method."""

    def __init__(
        self,
        url: str,
        data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        origin_req_host: Any = None,
        unverifiable: bool = False,
        method: str | None = None,
    ) -> None:
        if not isinstance(url, str):
            raise TypeError("the URL must be a str")
        self.full_url = url
        self.data = data
        self.headers: dict[str, str] = {}
        for name, value in (headers or {}).items():
            self.add_header(name, value)
        self.method = method

    def add_header(self, key: str, val: str) -> None:
        self.headers[str(key).capitalize()] = val

    def has_header(self, header_name: str) -> bool:
        return str(header_name).capitalize() in self.headers

    def get_header(self, header_name: str, default: Any = None) -> Any:
        return self.headers.get(str(header_name).capitalize(), default)

    def remove_header(self, header_name: str) -> None:
        self.headers.pop(str(header_name).capitalize(), None)

    def get_method(self) -> str:
        return self.method or ("POST" if self.data is not None else "GET")

    def get_full_url(self) -> str:
        return self.full_url

    @property
    def host(self) -> str:
        return urllib.parse.urlsplit(self.full_url).netloc

    @property
    def type(self) -> str:
        return urllib.parse.urlsplit(self.full_url).scheme


def _urllib_error(exc: OutboundError) -> BaseException:
    if isinstance(exc, OutboundTimeout):
        return TimeoutError(str(exc))
    if isinstance(exc, OutboundConnectionFailed | OutboundRefused | OutboundRedirects):
        return URLError(str(exc))
    return ValueError(str(exc))


def urlopen(url: Any, data: Any = None, timeout: Any = None, *, context: Any = None, **kwargs: Any) -> HTTPResponse:
    """urllib.request.urlopen() over http and https, through the run's guarded client."""
    if kwargs or context is not None:
        raise TypeError("urlopen() takes url, data and timeout in fnbox functions")
    request = url if isinstance(url, Request) else Request(url)
    body = request.data if data is None else data
    if isinstance(body, str):
        raise TypeError("POST data should be bytes, an iterable of bytes, or a file object. It cannot be of type str.")
    if body is not None and not isinstance(body, bytes | bytearray):
        raise TypeError("urlopen() data must be bytes in fnbox functions")
    headers = dict(request.headers)
    if body is not None and not request.has_header("Content-type"):
        headers["Content-type"] = "application/x-www-form-urlencoded"
    headers.setdefault("User-agent", "Python-urllib/3.11")
    method = request.method or ("POST" if body is not None else "GET")
    seconds = None if timeout is None else _timeout(timeout)
    answer, _ = _send(
        method, request.full_url, list(headers.items()), bytes(body or b""), "follow", seconds, _urllib_error
    )
    if answer.status >= 400:
        raise UrllibHTTPError(answer)
    return HTTPResponse(answer)


def _urllib_request(guards: Guards) -> dict[str, Any]:
    return {"urlopen": urlopen, "Request": Request}


def _urllib_error_module(guards: Guards) -> dict[str, Any]:
    return {"URLError": URLError, "HTTPError": UrllibHTTPError}


# Made per run by user code (`requests.Session()`, `Request(url)`), so theirs to modify:
# `session.headers['Authorization'] = ...`, `session.auth = (...)`, `request.data = ...`.
LIBRARY_INSTANCE_TYPES.update({Session, CaseInsensitiveDict, Request, Response, HTTPResponse})

BUILDERS: dict[str, Callable[[Guards], dict[str, Any]]] = {
    "requests": _requests,
    "urllib.request": _urllib_request,
    "urllib.error": _urllib_error_module,
}
