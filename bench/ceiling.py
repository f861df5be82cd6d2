"""The ceiling: a bare Starlette app on uvicorn that answers fnbox's routes without running anything.

    python bench/ceiling.py --port 4300 [--hop]

It reads and parses the body like fnbox does, then answers the run route with the JSON a
warm hello answers; the save route answers 200 with the document. uvicorn runs with the
options of `fnbox serve` (log level info; access log only with ACCESS_LOG=yes, fnbox's
default being no; uvloop and httptools when installed), so fnbox ÷ ceiling is what fnbox's
own work costs over Starlette and uvicorn.

`--hop` adds the least that a call crossing to a worker process costs: the run route sends
the request's body to one child process over a pipe (length-prefixed frames, those of one
turn of the event loop in one write, or sooner once fnbox's FRAMES_AT_ONCE are queued, as
fnbox's supervisor writes them; read in chunks), and the child answers the hello from
its `data_received`, with no task, sandbox, validation or record. No service that runs its
sandboxes outside the HTTP process, as fnbox does, answers faster than this on uvicorn.

`--server-work US` and `--child-work US` add that much CPU time per call, spent on the
server's event loop in the run route and on the child's per frame: stand-ins for what a
service does beyond carrying the call (bench/budget.py maps the rate they allow).
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
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from fnbox.sandboxes.supervisor import FRAMES_AT_ONCE

#: A frame's head: the length of its body and the call's id.
HEAD = struct.Struct("<II")


def burn(microseconds: float) -> None:
    """Spend `microseconds` of this thread's CPU time, as a call's own work would."""
    end = time.thread_time() + microseconds / 1e6
    while time.thread_time() < end:
        pass


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
    """Frames written once per turn of the event loop, or as soon as `at_most` wait."""

    def __init__(self, write: Callable[[bytes], None], at_most: int | None = None) -> None:
        self.write = write
        self.at_most = at_most
        self.frames: list[bytes] = []  # a head and a body each

    def add(self, call_id: int, body: bytes) -> None:
        if not self.frames:
            asyncio.get_running_loop().call_soon(self.flush)
        self.frames += (HEAD.pack(len(body), call_id), body)
        if self.at_most is not None and len(self.frames) >= 2 * self.at_most:
            self.flush()

    def flush(self) -> None:
        if self.frames:
            self.write(b"".join(self.frames))
            self.frames.clear()


class Hop:
    """The child process and the calls waiting for its answers."""

    def __init__(self, child_work: float = 0.0) -> None:
        self.child_work = child_work
        self.ids = itertools.count()
        self.waiting: dict[int, asyncio.Future[bytes]] = {}

    async def start(self) -> None:
        frames = Frames(self.answered)

        class Child(asyncio.SubprocessProtocol):
            def pipe_data_received(self, fd: int, data: bytes) -> None:
                frames.data_received(data)

        pipe = asyncio.subprocess.PIPE
        self.transport, _ = await asyncio.get_running_loop().subprocess_exec(
            Child,
            sys.executable,
            __file__,
            "--child",
            "--child-work",
            str(self.child_work),
            stdin=pipe,
            stdout=pipe,
            stderr=None,
        )
        stdin: Any = self.transport.get_pipe_transport(0)  # uvloop's pipes are not asyncio's classes
        self.batch = Batch(stdin.write, at_most=FRAMES_AT_ONCE)

    def answered(self, call_id: int, body: bytes) -> None:
        self.waiting.pop(call_id).set_result(body)

    async def call(self, body: bytes) -> bytes:
        call_id = next(self.ids)
        future = self.waiting[call_id] = asyncio.get_running_loop().create_future()
        self.batch.add(call_id, body)
        return await future


async def child(work: float) -> None:
    """The child's side: answer each frame as it comes (after `work` µs of CPU), write the answers once per turn."""
    loop = asyncio.get_running_loop()
    writer, _ = await loop.connect_write_pipe(asyncio.Protocol, os.fdopen(1, "wb", buffering=0))
    batch = Batch(writer.write)
    ended = loop.create_future()

    class Requests(Frames):
        def connection_lost(self, exc: Exception | None) -> None:
            ended.set_result(None)

    def answer(call_id: int, body: bytes) -> None:
        burn(work)
        batch.add(call_id, json.dumps(hello(body)).encode())

    await loop.connect_read_pipe(lambda: Requests(answer), os.fdopen(0, "rb", buffering=0))
    await ended


hop: Hop | None = None
server_work = 0.0


async def healthcheck(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def save(request: Request) -> Response:
    return JSONResponse(json.loads(await request.body() or b"{}"))


async def run(request: Request) -> Response:
    body = await request.body()
    burn(server_work)
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
    parser.add_argument("--server-work", type=float, default=0.0, help="µs of CPU per call in the run route")
    parser.add_argument("--child-work", type=float, default=0.0, help="µs of CPU per call in the child (with --hop)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        import uvloop

        uvloop.run(child(args.child_work))
        sys.exit(0)
    server_work = args.server_work
    if args.hop:
        hop = Hop(args.child_work)
    access_log = os.environ.get("ACCESS_LOG", "no").lower() in ("yes", "true", "1")
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="info", access_log=access_log)
