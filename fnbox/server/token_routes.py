"""The routes of API tokens: make, list and revoke them (admin only, see server.access)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from fnbox.server.inputs import read_json
from fnbox.server.tokens import TokenStore

__all__ = ["token_routes", "tokens_of"]

T = TypeVar("T")


def tokens_of(request: Request) -> TokenStore:
    tokens: TokenStore = request.app.state.tokens
    return tokens


async def create_token(request: Request) -> Response:
    """
    ---
    summary: Make a token (admin only); the answer is the only time its secret is shown
    requestBody:
      content:
        application/json:
          example: {"scopes": ["run"], "workspaces": ["billing", "team-a-*"], "expires_in": 86400}
    responses:
      201: {description: '{"id", "token", "scopes", "workspaces", "created", "expires"}'}
      400: {description: 'InvalidRequest (an unknown scope, a bad pattern or expiry)'}
      401: {description: 'Unauthorized'}
      403: {description: 'Forbidden (not an admin token)'}
    """
    tokens = tokens_of(request)
    created = await _blocking(tokens, tokens.create, await read_json(request, empty={}))
    await tokens.publish()  # a shared database: this change is applied in order, as a save is
    return JSONResponse(created, status_code=201, headers={"Cache-Control": "no-store"})


async def list_tokens(request: Request) -> Response:
    """
    ---
    summary: The tokens (admin only), without their secret part
    responses:
      200: {description: '[{"id", "scopes", "workspaces", "created", "expires"}, ...]'}
    """
    tokens = tokens_of(request)
    await tokens.refresh()
    return JSONResponse(tokens.list())


async def revoke_token(request: Request) -> Response:
    """
    ---
    summary: Revoke a token (admin only); the next request with it is refused
    responses:
      204: {description: 'Revoked'}
      404: {description: 'NotFound'}
    """
    tokens = tokens_of(request)
    await _blocking(tokens, tokens.revoke, request.path_params["id"])
    await tokens.publish()
    return Response(status_code=204)


async def _blocking(tokens: TokenStore, call: Callable[[Any], T], argument: Any) -> T:
    """A write of a shared store queries the database: off the event loop. A file is written in place, as before."""
    if tokens.shared:
        return await asyncio.to_thread(call, argument)
    return call(argument)


token_routes = [
    Route("/v2/tokens", create_token, methods=["POST"]),
    Route("/v2/tokens", list_tokens, methods=["GET"]),
    Route("/v2/tokens/{id}", revoke_token, methods=["DELETE"]),
]
