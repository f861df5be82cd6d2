"""Per-request cost of the HTTP layer of a warm run: the lean path against Starlette's middleware and routing.

    python bench/run_path.py            # ~20 s

Builds the app twice in this process, `create_app(lean_run=False)` and with the lean path
(the default), with sandboxes in the process (FUNCTIONS_WORKERS=0) and runs not recorded,
and drives `POST /v2/functions/bench/run/hello` as bare ASGI (no socket, no server), so the
difference is the HTTP layer's own cost. Prints microseconds per request, best of 5 rounds,
with access control off and with an API token.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from typing import Any

from starlette.applications import Starlette

from fnbox.server.app import create_app
from fnbox.server.settings import load_settings

ADMIN = "bench-admin-token-0123456789"
ROUNDS, REQUESTS = 5, 5_000
HELLO = {
    "functions": {
        "hello": {"language": "python", "code": "return 'Hello ' + name", "parameters": {"name": {"type": "string"}}}
    }
}
BODY = b'{"parameters": {"name": "world"}}'


async def call(app: Starlette, method: str, path: str, body: bytes, headers: list[tuple[bytes, bytes]]) -> int:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"content-type", b"application/json"), *headers],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
    }
    await app(scope, receive, send)
    return int(sent[0]["status"])


async def measure(app: Starlette, headers: list[tuple[bytes, bytes]]) -> float:
    """One round: µs per request."""
    started = time.perf_counter()
    for _ in range(REQUESTS):
        await call(app, "POST", "/v2/functions/bench/run/hello", BODY, headers)
    return (time.perf_counter() - started) / REQUESTS * 1e6


async def serve(environ: dict[str, str], *, lean: bool, guarded: bool) -> tuple[Starlette, list[tuple[bytes, bytes]]]:
    """A started app holding the hello workspace, and the headers a run request needs."""
    app = create_app(load_settings(environ=environ), lean_run=lean)
    await app.state.runtime.start()
    admin = [(b"authorization", f"Bearer {ADMIN}".encode())] if guarded else []
    assert await call(app, "PUT", "/v2/functions/bench", json.dumps(HELLO).encode(), admin) == 200
    headers: list[tuple[bytes, bytes]] = []
    if guarded:
        made = app.state.tokens.create({"scopes": ["run"], "workspaces": ["bench"]})["token"]
        headers = [(b"authorization", f"Bearer {made}".encode())]
    assert await call(app, "POST", "/v2/functions/bench/run/hello", BODY, headers) == 200
    return app, headers


async def main() -> None:
    for guarded in (False, True):
        with tempfile.TemporaryDirectory() as general_dir, tempfile.TemporaryDirectory() as lean_dir:
            apps = {}
            for lean, data_dir in ((False, general_dir), (True, lean_dir)):
                environ = {
                    "FUNCTIONS_STORAGE_FILESYSTEM_DIRPATH": data_dir,
                    "FUNCTIONS_WORKERS": "0",
                    "EXECUTIONS_RECORD_RUNS": "no",
                    **({"FNBOX_ADMIN_TOKEN": ADMIN} if guarded else {}),
                }
                apps[lean] = await serve(environ, lean=lean, guarded=guarded)
            try:
                best = {False: float("inf"), True: float("inf")}
                for _ in range(ROUNDS):  # alternating, so that a noisy moment hits both
                    for lean, (app, headers) in apps.items():
                        best[lean] = min(best[lean], await measure(app, headers))
            finally:
                for app, _ in apps.values():
                    await app.state.runtime.close()
            label = "API token" if guarded else "access control off"
            print(
                f"{label:20s} general {best[False]:6.1f} µs/request, lean {best[True]:6.1f}"
                f"  (-{best[False] - best[True]:.1f})"
            )


if __name__ == "__main__":
    asyncio.run(main())
