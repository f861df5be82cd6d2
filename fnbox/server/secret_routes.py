"""The routes of workspace secrets: set, list (names and times only) and delete.

No route answers a secret's value: it goes only to the workspace's runs (see workspaces.secrets).
"""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from fnbox.server.inputs import read_json, runtime_of

__all__ = ["secret_routes"]


async def list_secrets(request: Request) -> Response:
    """
    ---
    summary: The names of a workspace's secrets and when each was set; never their values
    responses:
      200: {description: '{"secrets": [{"name", "updated"}, ...]}'}
    """
    runtime = runtime_of(request)
    await runtime.refresh()  # what other instances set or deleted, with a shared database
    return JSONResponse({"secrets": runtime.secrets.list(request.path_params["workspace"])})


async def put_secret(request: Request) -> Response:
    """
    ---
    summary: Set a secret; functions read it as process.env.NAME (JavaScript) or env["NAME"] (Python) from their next run
    requestBody:
      content:
        application/json:
          example: "the value, as a JSON string"
    responses:
      200: {description: '{"name", "updated"}: the value is never answered'}
      400: {description: 'InvalidRequest (a bad name, or a body that is not a JSON string)'}
    """
    value = await read_json(request, empty=None)
    params = request.path_params
    runtime = runtime_of(request)
    saved = await asyncio.to_thread(runtime.secrets.set, params["workspace"], params["name"], value)
    await runtime.publish()  # a shared database: this change is applied in order, as a save is
    return JSONResponse(saved)


async def delete_secret(request: Request) -> Response:
    """
    ---
    summary: Delete a secret; the next run no longer sees it
    responses:
      204: {description: 'Deleted'}
      404: {description: 'NotFound'}
    """
    params = request.path_params
    runtime = runtime_of(request)
    await asyncio.to_thread(runtime.secrets.delete, params["workspace"], params["name"])
    await runtime.publish()
    return Response(status_code=204)


secret_routes = [
    Route("/v2/functions/{workspace}/secrets", list_secrets, methods=["GET"]),
    Route("/v2/functions/{workspace}/secrets/{name}", put_secret, methods=["PUT"]),
    Route("/v2/functions/{workspace}/secrets/{name}", delete_secret, methods=["DELETE"]),
]
