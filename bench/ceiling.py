"""The ceiling: a bare Starlette app on uvicorn that answers fnbox's routes without running anything.

    python bench/ceiling.py --port 4300 [--hop]

It reads and parses the body like fnbox does, then answers the run route with the JSON a
warm hello answers; the save route answers 200 with the document. uvicorn runs with the
options of `fnbox serve` (log level info; access log only with ACCESS_LOG=yes, fnbox's
default being no; uvloop and httptools when installed), so fnbox ÷ ceiling is what fnbox's
own work costs over Starlette and uvicorn.

`--hop` adds the least that a call crossing to a worker process costs: the run route sends
the request's body to one child process over a pipe (length-prefixed frames, those of one
turn of the event loop in one write, read in chunks), and the child answers the hello from
its `data_received`, with no task, sandbox, validation or record. No service that runs its
sandboxes outside the HTTP process, as fnbox does, answers faster than this on uvicorn.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import struct
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

#: A frame's head: the length of its body and the call's id.
HEAD = struct.Struct("<II")


def hello(body: bytes) -> dict[str, object]:
    parameters = json.loads(body or b"{}").get("parameters") or {}
    return {"result": f"Hello {parameters.get('name', 'world')}", "logs": [], "duration": 0.0}


class Frames(asyncio.Protocol):
    """Splits what a pipe brings into frames and hands each to `on_frame(call_id, body)`."""

    def __init__(self, on_frame: Callable[[int, bytes], None]) -> None:
        self.on_frame = on_frame
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer + data
        at = 0
        while len(buffer) - at >= HEAD.size:
            size, call_id = HEAD.unpack_from(buffer, at)
            if len(buffer) - at - HEAD.size < size:
                break
            self.on_frame(call_id, buffer[at + HEAD.size : at + HEAD.size + size])
            at += HEAD.size + size
        self.buffer = buffer[at:]


class Batch:
    """Frames written once per turn of the event loop."""

    def __init__(self, write: Callable[[bytes], None]) -> None:
        self.write = write
        self.frames: list[bytes] = []

    def add(self, call_id: int, body: bytes) -> None:
        if not self.frames:
            asyncio.get_running_loop().call_soon(self.flush)
        self.frames += (HEAD.pack(len(body), call_id), body)

    def flush(self) -> None:
        self.write(b"".join(self.frames))
        self.frames.clear()


class Hop:
    """The child process and the calls waiting for its answers."""

    def __init__(self) -> None:
        self.ids = itertools.count()
        self.waiting: dict[int, asyncio.Future[bytes]] = {}

    async def start(self) -> None:
        frames = Frames(self.answered)

        class Child(asyncio.SubprocessProtocol):
            def pipe_data_received(self, fd: int, data: bytes) -> None:
                frames.data_received(data)

        pipe = asyncio.subprocess.PIPE
        self.transport, _ = await asyncio.get_running_loop().subprocess_exec(
            Child, sys.executable, __file__, "--child", stdin=pipe, stdout=pipe, stderr=None
        )
        stdin: Any = self.transport.get_pipe_transport(0)  # uvloop's pipes are not asyncio's classes
        self.batch = Batch(stdin.write)

    def answered(self, call_id: int, body: bytes) -> None:
        self.waiting.pop(call_id).set_result(body)

    async def call(self, body: bytes) -> bytes:
        call_id = next(self.ids)
        future = self.waiting[call_id] = asyncio.get_running_loop().create_future()
        self.batch.add(call_id, body)
        return await future


async def child() -> None:
    """The child's side: answer each frame as it comes, write the answers once per turn."""
    loop = asyncio.get_running_loop()
    writer, _ = await loop.connect_write_pipe(asyncio.Protocol, os.fdopen(1, "wb", buffering=0))
    batch = Batch(writer.write)
    ended = loop.create_future()

    class Requests(Frames):
        def connection_lost(self, exc: Exception | None) -> None:
            ended.set_result(None)

    await loop.connect_read_pipe(
        lambda: Requests(lambda call_id, body: batch.add(call_id, json.dumps(hello(body)).encode())),
        os.fdopen(0, "rb", buffering=0),
    )
    await ended


hop: Hop | None = None


async def healthcheck(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def save(request: Request) -> Response:
    return JSONResponse(json.loads(await request.body() or b"{}"))


async def run(request: Request) -> Response:
    body = await request.body()
    if hop is not None:
        return Response(await hop.call(body), media_type="application/json")
    return JSONResponse(hello(body))


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    if hop is not None:
        await hop.start()
    yield


app = Starlette(
    routes=[
        Route("/sys/healthcheck", healthcheck, methods=["GET"]),
        Route("/v2/functions/{workspace}", save, methods=["POST", "PUT"]),
        Route("/v2/functions/{workspace}/run/{function}", run, methods=["POST"]),
    ],
    lifespan=lifespan,
)

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=4300)
    parser.add_argument("--hop", action="store_true", help="answer the run route through a child process")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        import uvloop

        uvloop.run(child())
        sys.exit(0)
    if args.hop:
        hop = Hop()
    access_log = os.environ.get("ACCESS_LOG", "no").lower() in ("yes", "true", "1")
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="info", access_log=access_log)
