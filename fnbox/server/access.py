"""Access control: who may call which route, decided in one place.

`AccessControl` (an ASGI middleware) reads the bearer token, answers 401 for none or a
wrong one (and to an address after too many failures), then looks the request up in
`RULES`: the scopes a route needs and the path part naming its workspace, 403 when the
token lacks them. What depends on a stored object (an execution's workspace and owner,
which workspaces a listing shows) is judged by the handlers through `principal_of`,
`execution_visible` and `execution_filters`. With access control off every request is
`tokens.OPEN`.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from cachetools import TTLCache
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from fnbox.executions.records import Execution
from fnbox.sandboxes.errors import FnboxError, Forbidden, Unauthorized
from fnbox.server.responses import error_response
from fnbox.server.tokens import OPEN, Principal, TokenStore

__all__ = ["RULES", "AccessControl", "Rule", "execution_filters", "execution_visible", "principal_of"]

logger = logging.getLogger("fnbox")

PRINCIPAL_KEY = "fnbox.principal"
#: Failed attempts an address may make in FAILURE_WINDOW seconds; past it, it is refused meanwhile.
MAX_FAILURES = 10
FAILURE_WINDOW = 60.0
#: Addresses whose failures are remembered at once (the oldest are forgotten first).
MAX_ADDRESSES = 10_000
#: Any valid token.
ANY = ("admin", "deploy", "run", "read")


@dataclass(frozen=True)
class Rule:
    methods: frozenset[str]
    path: re.Pattern[str]
    #: The scopes of which the token needs one; None: no token needed.
    scopes: tuple[str, ...] | None
    #: The named group of `path` that is the workspace the token must cover.
    workspace: str | None = None


def _rule(methods: str, path: str, scopes: tuple[str, ...] | None, workspace: str | None = None) -> Rule:
    return Rule(frozenset(methods.split()), re.compile(path), scopes, workspace)


_WS = r"(?P<ws>[^/]+)"
#: The first rule matching a request decides; a request no rule matches needs `admin`.
RULES: tuple[Rule, ...] = (
    _rule("GET HEAD", r"/sys/healthcheck", None),
    _rule("GET HEAD", r"/(docs|openapi\.json)", ANY),
    _rule("GET HEAD", r"/v2/functions", ANY),  # the listing shows the workspaces the token covers
    _rule("GET HEAD", rf"/v2/functions/{_WS}(/archive)?", ("read", "deploy"), "ws"),
    _rule("PUT POST DELETE", rf"/v2/functions/{_WS}(/archive)?", ("deploy",), "ws"),
    _rule("GET HEAD PUT DELETE", rf"/v2/functions/{_WS}/secrets(/[^/]+)?", ("deploy",), "ws"),
    _rule("POST", rf"/v2/functions/{_WS}/run/[^/]+", ("run",), "ws"),
    _rule("GET HEAD", r"/v2/executions(/[^/]+(/wait|/logs)?)?", ("read", "run")),  # judged per execution
    _rule("POST", r"/v2/executions/[^/]+/cancel", ("run",)),  # its own only
    _rule("GET HEAD", r"/metrics", ("read",)),
    _rule("POST", r"/ogcapi/processes/(?P<ws>[^/.]+)\.[^/]+/execution", ("run",), "ws"),
    _rule("GET HEAD", r"/ogcapi/processes/(?P<ws>[^/.]+)\.[^/]+", ANY, "ws"),
    _rule("DELETE", r"/ogcapi/jobs/[^/]+", ("run",)),  # its own only
    _rule("GET HEAD", r"/ogcapi(/.*)?", ANY),  # jobs judged per execution, processes listed per token
)


def required(method: str, path: str) -> tuple[tuple[str, ...] | None, str | None]:
    """The scopes a request needs and the workspace it touches (None: no workspace in its path)."""
    for rule in RULES:
        if method in rule.methods:
            match = rule.path.fullmatch(path)
            if match:
                return rule.scopes, match.group(rule.workspace) if rule.workspace else None
    return ("admin",), None


class FailedAttempts:
    """Failed authentications per client address, in a sliding window."""

    def __init__(self, *, limit: int = MAX_FAILURES, window: float = FAILURE_WINDOW) -> None:
        self.limit, self.window = limit, window
        self._seen: TTLCache[str, deque[float]] = TTLCache(maxsize=MAX_ADDRESSES, ttl=window)

    def blocked_for(self, address: str) -> float:
        """Seconds until `address` may try again; 0 if it may now."""
        times = self._seen.get(address)
        if times is None or len(times) < self.limit:
            return 0.0
        return max(times[0] + self.window - time.monotonic(), 0.0)

    def fail(self, address: str) -> None:
        now = time.monotonic()
        times = self._seen.get(address) or deque(maxlen=self.limit)
        while times and times[0] <= now - self.window:
            times.popleft()
        times.append(now)
        self._seen[address] = times


class AccessControl:
    def __init__(self, app: ASGIApp, *, tokens: TokenStore, failures: FailedAttempts | None = None) -> None:
        self.app = app
        self.tokens = tokens
        self.failures = failures or FailedAttempts()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = await self.admit(scope)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def admit(self, scope: Scope) -> Response | None:
        """Put the request's principal in its scope; or the refusal to answer instead.

        Every path of a request is judged here (the lean path of runs too): what decides
        whether a token holds belongs in this method.
        """
        await self.catch_up(scope)
        return self.judge(scope)

    def judge(self, scope: Scope) -> Response | None:
        """`admit` once the tokens are caught up (a caller that knows they need not be may skip `catch_up`)."""
        try:
            scope[PRINCIPAL_KEY] = self._check(scope)
        except FnboxError as exc:
            response = _refusal(exc, scope)
            if isinstance(exc, Unauthorized):
                response.headers["WWW-Authenticate"] = 'Bearer realm="fnbox"'
                if "retry_after" in exc.details:
                    response.headers["Retry-After"] = str(exc.details["retry_after"])
            return response
        return None

    async def catch_up(self, scope: Scope) -> None:
        """Tokens shared by several instances: apply what the others made or revoked before judging a request.

        So they count from the next request on, as saves do for runs: the change feed is
        caught up first, as before a run (its passes are shared by the requests that arrive
        meanwhile: no query of a request's own).
        """
        if self.tokens.shared and required(scope["method"], scope["path"])[0] is not None:
            await self.tokens.refresh()

    def _check(self, scope: Scope) -> Principal:
        if not self.tokens.enabled:
            return OPEN
        scopes, workspace = required(scope["method"], scope["path"])
        if scopes is None:
            return OPEN
        address = (scope.get("client") or ("unknown", 0))[0]
        wait = self.failures.blocked_for(address)
        if wait:
            raise Unauthorized(
                f"too many failed attempts from {address}; try again in {int(wait) + 1} s",
                details={"retry_after": int(wait) + 1},
            )
        principal = self._authenticate(scope)
        if principal is None:
            self.failures.fail(address)
            raise Unauthorized("a valid token is needed: send the header Authorization: Bearer <token>")
        if not principal.may(scopes, workspace):
            needs = " or ".join(scopes)
            where = f" on workspace {workspace!r}" if workspace is not None else ""
            raise Forbidden(
                f"this token may not do this: it needs the scope {needs}{where}",
                details={"scopes": list(scopes), **({"workspace": workspace} if workspace is not None else {})},
            )
        return principal

    def _authenticate(self, scope: Scope) -> Principal | None:
        for name, value in scope["headers"]:
            if name == b"authorization":
                kind, _, token = value.decode("latin-1").partition(" ")
                if kind.lower() != "bearer" or not token.strip():
                    return None
                return self.tokens.authenticate(token.strip())
        return None


def _refusal(error: FnboxError, scope: Scope) -> Response:
    """The native error, or under /ogcapi the RFC 7807 problem that API answers everywhere."""
    if scope["path"] == "/ogcapi" or scope["path"].startswith("/ogcapi/"):
        from fnbox.server.ogcapi.problems import problem_of, problem_response

        return problem_response(problem_of(error), Request(scope))
    return error_response(error)


def principal_of(request: Request) -> Principal:
    principal: Principal = request.scope.get(PRINCIPAL_KEY, OPEN)
    return principal


def execution_visible(principal: Principal, execution: Execution, *, write: bool = False) -> bool:
    """`read` sees every execution of its workspaces; `run` sees and cancels those it started."""
    if principal.admin:
        return True
    if not principal.covers(execution.workspace):
        return False
    if "read" in principal.scopes and not write:
        return True
    return "run" in principal.scopes and execution.owner is not None and execution.owner == principal.id


def execution_filters(principal: Principal) -> dict[str, Any]:
    """What a listing of executions is narrowed to for this principal."""
    if principal.admin:
        return {}
    filters: dict[str, Any] = {"workspaces": principal.workspaces or None}
    if "read" not in principal.scopes:
        filters["owner"] = principal.id
    return filters


def warn_if_open(tokens: TokenStore, host: str) -> None:
    """Say at start that anyone may deploy and run code; shout it when that is anyone on the network."""
    if tokens.enabled:
        return
    if ipaddress_is_loopback(host):
        logger.warning(
            "access control is off (no FNBOX_ADMIN_TOKEN): anyone who reaches %s may deploy and run code", host
        )
    else:
        logger.critical(
            "ACCESS CONTROL IS OFF and fnbox listens on %s, a non-loopback address: anyone on the network may "
            "deploy code, run it and read every execution. Set FNBOX_ADMIN_TOKEN.",
            host,
        )


def ipaddress_is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
