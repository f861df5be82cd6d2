"""The REST routes of the model service, plus listing, reading, deleting and docs.

Handlers only translate HTTP to Runtime calls and back; every rule lives in the Runtime.
The YAML after `---` in each docstring is that route's OpenAPI fragment.
"""

from __future__ import annotations

from importlib.metadata import version

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.schemas import SchemaGenerator

from fnbox.server.access import principal_of
from fnbox.server.archives import archive_routes
from fnbox.server.docs import render_docs
from fnbox.server.executions import execution_routes
from fnbox.server.inputs import read_json, runtime_of, wants_async
from fnbox.server.metrics_route import metrics_routes
from fnbox.server.ogcapi.routes import ogcapi
from fnbox.server.running import answer_run
from fnbox.server.secret_routes import secret_routes
from fnbox.server.token_routes import token_routes


def _etag(version: str) -> str:
    return f'"{version}"'


def _if_match(request: Request) -> str | None:
    """The version an `If-Match` header asks for: a quoted ETag, `*` (any) or none."""
    given = request.headers.get("if-match")
    if given is None:
        return None
    given = given.strip().removeprefix("W/")
    return given if given == "*" else given.strip('"')


async def healthcheck(request: Request) -> Response:
    """
    ---
    summary: Liveness check
    security: []
    responses:
      200: {description: 'The service answers'}
    """
    return JSONResponse({"status": "ok"})


async def list_workspaces(request: Request) -> Response:
    """
    ---
    summary: Names of the stored workspaces
    responses:
      200: {description: 'A JSON array of workspace names'}
    """
    principal = principal_of(request)
    runtime = runtime_of(request)
    await runtime.refresh()
    return JSONResponse([name for name in runtime.list_workspaces() if principal.covers(name)])


async def get_workspace(request: Request) -> Response:
    """
    ---
    summary: A stored workspace document, with its version as ETag
    responses:
      200: {description: 'The document'}
      304: {description: 'Not modified since the ETag given in If-None-Match'}
      404: {description: 'NotFound'}
    """
    runtime = runtime_of(request)
    await runtime.refresh()
    workspace = runtime.get_workspace(request.path_params["workspace"])
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
      200: {description: 'The stored document, with its new version as ETag'}
      400: {description: 'InvalidRequest or CompilationError (details name the function and line)'}
      412: {description: 'PreconditionFailed (If-Match names a version that is no longer the stored one)'}
      413: {description: 'PayloadTooLarge'}
    """
    document = await read_json(request, empty=None)
    workspace = await runtime_of(request).put_workspace(
        request.path_params["workspace"], document, expected=_if_match(request)
    )
    return JSONResponse(workspace.document, headers={"ETag": _etag(workspace.version)})


async def delete_workspace(request: Request) -> Response:
    """
    ---
    summary: Delete a workspace and drop its warm sandboxes
    responses:
      204: {description: 'Deleted'}
      404: {description: 'NotFound'}
      412: {description: 'PreconditionFailed (If-Match names a version that is no longer the stored one)'}
    """
    await runtime_of(request).delete_workspace(request.path_params["workspace"], expected=_if_match(request))
    return Response(status_code=204)


async def run_function(request: Request) -> Response:
    """
    ---
    summary: Run a function; wait for its result, or with `Prefer respond-async` get an execution to follow
    description: >
      Synchronous by default. With the header `Prefer: respond-async` or `?async=true`, the run
      goes on in the background and the answer is 202 with the execution's id and a Location
      (see /v2/executions); the body may then give the execution's own "id". A synchronous
      run's execution id comes in the `X-Execution-Id` header when runs are recorded.
    requestBody:
      content:
        application/json:
          example: {"parameters": {"name": "world"}}
    responses:
      200: {description: '{"result": ..., "logs": [...], "duration": <ms>}'}
      202: {description: '{"id": ..., "status": "accepted"}, with Location /v2/executions/{id}'}
      400: {description: 'InvalidParameters or CompilationError'}
      404: {description: 'NotFound'}
      409: {description: 'Conflict (an execution with the id given exists)'}
      500: {description: 'FunctionError, MemoryLimitExceeded or SandboxCrashed, with logs and duration'}
      503: {description: 'Overloaded'}
      504: {description: 'TimeoutExceeded, with logs and duration'}
    """
    return await answer_run(
        runtime_of(request),
        request.path_params["workspace"],
        request.path_params["function"],
        await read_json(request, empty={}),
        respond_async=lambda: wants_async(request),
        owner=principal_of(request).id,
    )


schemas = SchemaGenerator(
    {
        "openapi": "3.0.3",
        "info": {
            "title": "fnbox",
            "version": version("fnbox"),
            "description": "Run JavaScript and Python functions of stored workspaces in warm sandboxes. "
            "With access control on, every route but /sys/healthcheck needs `Authorization: Bearer <token>`.",
        },
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
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
    *archive_routes,
    *execution_routes,
    *token_routes,
    *secret_routes,
    *metrics_routes,
    ogcapi,
    Route("/openapi.json", openapi, methods=["GET"], include_in_schema=False),
    Route("/docs", docs, methods=["GET"], include_in_schema=False),
]
