"""The ceiling: a bare Starlette app on uvicorn that answers fnbox's routes without running anything.

    python bench/ceiling.py --port 4300

It reads and parses the body like fnbox does, then answers the run route with the JSON a
warm hello answers; the save route answers 200 with the document. uvicorn runs with the
options of `fnbox serve` (log level info; access log only with ACCESS_LOG=yes, fnbox's
default being no; uvloop and httptools when installed), so fnbox ÷ ceiling is what fnbox's
own work costs over Starlette and uvicorn.
"""

from __future__ import annotations

import argparse
import json
import os

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


async def healthcheck(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def save(request: Request) -> Response:
    return JSONResponse(json.loads(await request.body() or b"{}"))


async def run(request: Request) -> Response:
    parameters = json.loads(await request.body() or b"{}").get("parameters") or {}
    return JSONResponse({"result": f"Hello {parameters.get('name', 'world')}", "logs": [], "duration": 0.0})


app = Starlette(
    routes=[
        Route("/sys/healthcheck", healthcheck, methods=["GET"]),
        Route("/v2/functions/{workspace}", save, methods=["POST", "PUT"]),
        Route("/v2/functions/{workspace}/run/{function}", run, methods=["POST"]),
    ]
)

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=4300)
    args = parser.parse_args()
    access_log = os.environ.get("ACCESS_LOG", "no").lower() in ("yes", "true", "1")
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="info", access_log=access_log)
