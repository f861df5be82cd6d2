"""RFC 7807 problems for the OGC API - Processes face, and the router that answers with them.

Under /ogcapi every error is `application/problem+json`: OGC's exception types where the
standard names one (`no-such-process`, `no-such-job`, `result-not-ready`), OGC's
`invalid-parameter` for bad input, else `about:blank` with the status of the native code;
the native code itself is in the `code` member. The handling is local to these routes
(a wrapper around each handler, and a router that turns its own 404 and 405 into
problems), so the native API keeps its `{"error", "message", "details"}` answers.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from http import HTTPStatus
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Router
from starlette.types import Receive, Scope, Send

from fnbox.sandboxes.errors import ERROR_CLASSES, FnboxError, InternalError, InvalidParameters, InvalidRequest

__all__ = [
    "INVALID_PARAMETER",
    "NO_SUCH_JOB",
    "NO_SUCH_PROCESS",
    "RESULT_NOT_READY",
    "Problem",
    "ProblemRouter",
    "problem_of",
    "problem_response",
    "problems",
]

logger = logging.getLogger("fnbox")

MEDIA_TYPE = "application/problem+json"
_EXCEPTIONS = "http://www.opengis.net/def/exceptions/ogcapi-processes-1/1.0/"
NO_SUCH_PROCESS = _EXCEPTIONS + "no-such-process"
NO_SUCH_JOB = _EXCEPTIONS + "no-such-job"
RESULT_NOT_READY = _EXCEPTIONS + "result-not-ready"
INVALID_PARAMETER = _EXCEPTIONS + "invalid-parameter"
_TITLES = {
    NO_SUCH_PROCESS: "No such process",
    NO_SUCH_JOB: "No such job",
    RESULT_NOT_READY: "Result not ready",
    INVALID_PARAMETER: "Invalid parameter",
}
_STATUS_OF = {cls.code: cls.status for cls in ERROR_CLASSES}

Handler = Callable[[Request], Awaitable[Response]]


class Problem(Exception):
    """An RFC 7807 problem; `extra` members (the native code, details, logs...) go beside."""

    def __init__(self, status: int, detail: str, *, type: str = "about:blank", **extra: Any) -> None:
        super().__init__(detail)
        self.status, self.detail, self.type, self.extra = status, detail, type, extra

    def to_json(self, instance: str | None = None) -> dict[str, Any]:
        title = _TITLES.get(self.type) or HTTPStatus(self.status).phrase
        body = {"type": self.type, "title": title, "status": self.status, "detail": self.detail}
        if instance:
            body["instance"] = instance
        return {**body, **self.extra}


def problem_of(
    error: FnboxError | Mapping[str, Any], *, job_id: str | None = None, status: int | None = None
) -> Problem:
    """The problem of a fnbox error, raised now or kept in a record (`{"error", "message", "details"}`)."""
    if isinstance(error, FnboxError):
        code, message, details = error.code, error.message, error.details
        extra: dict[str, Any] = {} if error.logs is None else {"logs": error.logs, "duration": error.duration}
    else:
        code, message, extra = str(error.get("error")), str(error.get("message", "")), {}
        details = error["details"] if isinstance(error.get("details"), dict) else {}
    kind = INVALID_PARAMETER if code in (InvalidParameters.code, InvalidRequest.code) else "about:blank"
    if job_id is not None:
        extra["jobID"] = job_id
    return Problem(status or _STATUS_OF.get(code, 500), message, type=kind, code=code, details=details or {}, **extra)


def problem_response(problem: Problem, request: Request, headers: Mapping[str, str] | None = None) -> Response:
    return JSONResponse(
        problem.to_json(request.url.path), status_code=problem.status, media_type=MEDIA_TYPE, headers=headers
    )


def _as_problem(exc: Exception) -> Problem:
    if isinstance(exc, Problem):
        return exc
    if isinstance(exc, FnboxError):
        return problem_of(exc)
    if isinstance(exc, HTTPException):
        return Problem(exc.status_code, "no such resource" if exc.status_code == 404 else str(exc.detail))
    return Problem(500, "an unexpected error occurred; it has been logged", code=InternalError.code)


def problems(handler: Handler) -> Handler:
    """Answer every error of `handler` as a problem (the app's own handlers would answer natively)."""

    @functools.wraps(handler)
    async def answer(request: Request) -> Response:
        try:
            return await handler(request)
        except Exception as exc:
            if not isinstance(exc, (Problem, FnboxError, HTTPException)):
                logger.exception("unexpected error on %s %s", request.method, request.url.path)
            return problem_response(_as_problem(exc), request)

    return answer


class ProblemRouter:
    """A router whose own errors (no such path, method not allowed) are problems too."""

    def __init__(self, routes: Sequence[BaseRoute]) -> None:
        self.router = Router(list(routes))

    @property
    def routes(self) -> list[BaseRoute]:  # read by Mount, for the OpenAPI document
        return self.router.routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.router(scope, receive, send)
        except HTTPException as exc:
            response = problem_response(_as_problem(exc), Request(scope), exc.headers)
            await response(scope, receive, send)
