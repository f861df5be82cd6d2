"""The REST routes of the model service, plus listing, reading, deleting and docs.

Handlers only translate HTTP to Runtime calls and back; every rule lives in the Runtime.
The YAML after `---` in each docstring is that route's OpenAPI fragment.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.schemas import SchemaGenerator

from sandboxes.errors import InvalidRequest
from server.docs import render_docs
from workspaces.runtime import Runtime

MAX_JSON_DEPTH = 64


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def _read_json(request: Request, *, empty: Any) -> Any:
    body = await request.body()
    if not body.strip():
        return empty
    try:
        value = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise InvalidRequest(f"the body is not valid JSON: {str(exc)[:200]}") from None
    if _depth(value) > MAX_JSON_DEPTH:
        raise InvalidRequest(f"the body is nested deeper than {MAX_JSON_DEPTH} levels")
    return value


def _depth(value: Any) -> int:
    depth, level = 0, [value]
    while level:
        depth += 1
        level = [
            child
            for item in level
            if isinstance(item, (dict, list))
            for child in (item.values() if isinstance(item, dict) else item)
            if isinstance(child, (dict, list))
        ]
    return depth - 1 if depth else 0


def _etag(version: str) -> str:
    return f'"{version}"'


async def healthcheck(request: Request) -> Response:
    """
    ---
    summary: Liveness check
    responses:
      200: {description: The service answers}
    """
    return JSONResponse({"status": "ok"})


async def list_workspaces(request: Request) -> Response:
    """
    ---
    summary: Names of the stored workspaces
    responses:
      200: {description: A JSON array of workspace names}
    """
    return JSONResponse(_runtime(request).list_workspaces())


async def get_workspace(request: Request) -> Response:
    """
    ---
    summary: A stored workspace document, with its version as ETag
    responses:
      200: {description: The document}
      304: {description: Not modified since the ETag given in If-None-Match}
      404: {description: NotFound}
    """
    workspace = _runtime(request).get_workspace(request.path_params["workspace"])
    etag = _etag(workspace.version)
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers={"ETag": etag})
    return JSONResponse(workspace.document, headers={"ETag": etag})


async def put_workspace(request: Request) -> Response:
    """
    ---
    summary: Save a workspace (create or replace); every function is compiled first
    requestBody:
      content:
        application/json:
          example: {"functions": {"hello": {"code": "return \\"Hello \\" + name;", "parameters": {"name": {"type": "string"}}}}}
    responses:
      200: {description: The stored document, with its new version as ETag}
      400: {description: InvalidRequest or CompilationError (details name the function and line)}
      413: {description: PayloadTooLarge}
    """
    document = await _read_json(request, empty=None)
    workspace = await _runtime(request).put_workspace(request.path_params["workspace"], document)
    return JSONResponse(workspace.document, headers={"ETag": _etag(workspace.version)})


async def delete_workspace(request: Request) -> Response:
    """
    ---
    summary: Delete a workspace and drop its warm sandboxes
    responses:
      204: {description: Deleted}
      404: {description: NotFound}
    """
    await _runtime(request).delete_workspace(request.path_params["workspace"])
    return Response(status_code=204)


async def run_function(request: Request) -> Response:
    """
    ---
    summary: Run a function and wait for its result
    requestBody:
      content:
        application/json:
          example: {"parameters": {"name": "world"}}
    responses:
      200: {description: '{"result": ..., "logs": [...], "duration": <ms>}'}
      400: {description: InvalidParameters or CompilationError}
      404: {description: NotFound}
      500: {description: FunctionError, MemoryLimitExceeded or SandboxCrashed, with logs and duration}
      503: {description: Overloaded}
      504: {description: TimeoutExceeded, with logs and duration}
    """
    body = await _read_json(request, empty={})
    if not isinstance(body, dict):
        raise InvalidRequest('the body must be an object such as {"parameters": {...}}')
    outcome = await _runtime(request).run(
        request.path_params["workspace"], request.path_params["function"], body.get("parameters")
    )
    return JSONResponse({"result": outcome.result, "logs": outcome.logs, "duration": outcome.duration})


schemas = SchemaGenerator(
    {
        "openapi": "3.0.3",
        "info": {
            "title": "fnbox",
            "version": "0.1.0",
            "description": "Run JavaScript and Python functions of stored workspaces in warm sandboxes.",
        },
    }
)


async def openapi(request: Request) -> Response:
    return JSONResponse(schemas.get_schema(routes=request.app.routes))


async def docs(request: Request) -> Response:
    return HTMLResponse(render_docs(schemas.get_schema(routes=request.app.routes)))


routes = [
    Route("/sys/healthcheck", healthcheck, methods=["GET"]),
    Route("/v2/functions", list_workspaces, methods=["GET"]),
    Route("/v2/functions/{workspace}", get_workspace, methods=["GET"]),
    Route("/v2/functions/{workspace}", put_workspace, methods=["POST", "PUT"]),
    Route("/v2/functions/{workspace}", delete_workspace, methods=["DELETE"]),
    Route("/v2/functions/{workspace}/run/{function}", run_function, methods=["POST"]),
    Route("/openapi.json", openapi, methods=["GET"], include_in_schema=False),
    Route("/docs", docs, methods=["GET"], include_in_schema=False),
]
