"""The frames between the supervisor and a worker process.

A frame is a 4-byte big-endian length and a UTF-8 JSON object. Only JSON crosses: a
worker runs hostile code, so nothing it sends may be able to run code in the server
(which rules out pickle).
"""

from __future__ import annotations

import asyncio
import json
import struct
from collections.abc import Sequence
from typing import Any

from fnbox.sandboxes.base import FunctionSource, Limits, Parameter, RunResult

#: Largest frame either side accepts; a bigger result is refused inside the worker.
MAX_FRAME = 64 * 1024 * 1024
#: The exit status of a worker that ended itself to be replaced (see sandboxes.worker).
RECYCLED = 75

_LENGTH = struct.Struct(">I")


class ProtocolError(Exception):
    """A frame that breaks the protocol; the peer is not to be trusted any more."""


def encode(message: dict[str, Any]) -> bytes:
    body = json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode()
    if len(body) > MAX_FRAME:
        raise ProtocolError(f"a frame of {len(body)} bytes is over the {MAX_FRAME} bytes allowed")
    return _LENGTH.pack(len(body)) + body


async def read(reader: asyncio.StreamReader) -> dict[str, Any] | None:
    """The next message, or None when the peer has closed the pipe."""
    try:
        header = await reader.readexactly(_LENGTH.size)
    except asyncio.IncompleteReadError:
        return None
    (length,) = _LENGTH.unpack(header)
    if length > MAX_FRAME:
        raise ProtocolError(f"a frame of {length} bytes is over the {MAX_FRAME} bytes allowed")
    try:
        message = json.loads(await reader.readexactly(length))
    except (asyncio.IncompleteReadError, ValueError, RecursionError) as exc:
        raise ProtocolError(f"a broken frame: {exc}") from exc
    if not isinstance(message, dict):
        raise ProtocolError("a frame that is not a JSON object")
    return message


def sources_to_json(sources: Sequence[FunctionSource]) -> list[dict[str, Any]]:
    return [
        {
            "name": source.name,
            "code": source.code,
            "parameters": [[p.name, p.type, p.default, p.has_default] for p in source.parameters],
        }
        for source in sources
    ]


def sources_from_json(data: list[dict[str, Any]]) -> list[FunctionSource]:
    return [
        FunctionSource(
            name=item["name"],
            code=item["code"],
            parameters=tuple(
                Parameter(name, ptype, default, has_default) for name, ptype, default, has_default in item["parameters"]
            ),
        )
        for item in data
    ]


def limits_to_json(limits: Limits) -> list[float]:
    return [limits.timeout, limits.memory]


def limits_from_json(data: list[float]) -> Limits:
    return Limits(timeout=float(data[0]), memory=int(data[1]))


def result_to_json(result: RunResult) -> dict[str, Any]:
    return {"result": result.result, "logs": result.logs, "duration": result.duration}


def result_from_json(data: dict[str, Any]) -> RunResult:
    return RunResult(result=data["result"], logs=data["logs"], duration=float(data["duration"]))
