"""The one place where fnbox errors become HTTP answers."""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from fnbox import jsonfast
from fnbox.sandboxes.errors import FnboxError, InternalError, InvalidRequest, NotFound

logger = logging.getLogger("fnbox")


class FastJSONResponse(JSONResponse):
    """Starlette's JSONResponse (NaN refused), rendered by orjson where that gives the same JSON."""

    def render(self, content: object) -> bytes:
        return jsonfast.dumps(content, allow_nan=False)


def error_response(error: FnboxError) -> JSONResponse:
    return FastJSONResponse(error.to_json(), status_code=error.status)


async def handle_fnbox_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, FnboxError):  # Starlette hands this handler FnboxError only
        raise exc
    return error_response(exc)


async def handle_http_exception(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, HTTPException):  # Starlette hands this handler HTTPException only
        raise exc
    if exc.status_code == 404:
        error: FnboxError = NotFound(f"no route {request.method} {request.url.path}")
    else:
        error = InvalidRequest(str(exc.detail))
    response = error_response(error)
    response.status_code = exc.status_code
    return response


async def handle_unexpected(request: Request, exc: Exception) -> Response:
    logger.exception("unexpected error on %s %s", request.method, request.url.path)
    return error_response(InternalError("an unexpected error occurred; it has been logged"))
