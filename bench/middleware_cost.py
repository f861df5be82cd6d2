"""Per-request cost of the outermost middlewares: request id + HTTP metrics (Observe) and access control.

    python bench/middleware_cost.py            # ~10 s

Drives the ASGI chain directly (no socket, no server) around an app that answers 200 at
once, so the figures are the middlewares' own cost: bare app, Observe alone, Observe with
access control off, and on with the admin token and with an API token (SHA-256 and two
constant-time compares per request). Prints microseconds per request, best of 5 rounds.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from typing import Any

from fnbox.server.access import AccessControl
from fnbox.server.observe import Observe
from fnbox.server.tokens import TokenStore

ADMIN = "bench-admin-token-0123456789"
ROUNDS, REQUESTS = 5, 20_000


async def bare(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


async def measure(app: Any, token: str | None) -> float:
    headers = [(b"authorization", f"Bearer {token}".encode())] if token else []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        pass

    best = float("inf")
    for _ in range(ROUNDS):
        started = time.perf_counter()
        for _ in range(REQUESTS):
            scope = {
                "type": "http",
                "method": "POST",
                "path": "/v2/functions/billing/run/total",
                "headers": headers,
                "client": ("127.0.0.1", 5000),
            }
            await app(scope, receive, send)
        best = min(best, (time.perf_counter() - started) / REQUESTS)
    return best * 1e6


async def main() -> None:
    with tempfile.TemporaryDirectory() as open_dir, tempfile.TemporaryDirectory() as guarded_dir:
        open_tokens = TokenStore(open_dir)
        guarded = TokenStore(guarded_dir, admin_token=ADMIN)
        made = guarded.create({"scopes": ["run"], "workspaces": ["billing", "team-a-*"]})["token"]
        cases = [
            ("bare app", bare, None),
            ("Observe (request id, HTTP metrics)", Observe(bare), None),
            ("Observe + access control off", Observe(AccessControl(bare, tokens=open_tokens)), None),
            ("Observe + access control, admin token", Observe(AccessControl(bare, tokens=guarded)), ADMIN),
            ("Observe + access control, API token", Observe(AccessControl(bare, tokens=guarded)), made),
        ]
        base = None
        for name, app, token in cases:
            micros = await measure(app, token)
            base = micros if base is None else base
            print(f"{name:42s} {micros:7.2f} µs/request  (+{micros - base:5.2f})")


if __name__ == "__main__":
    asyncio.run(main())
