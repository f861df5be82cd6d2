"""The frames between the supervisor and a worker process.

A frame is a 4-byte big-endian length and a UTF-8 JSON object. Only JSON crosses: a
worker runs hostile code, so nothing it sends may be able to run code in the server
(which rules out pickle).
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Sequence
from typing import Any

from fnbox import jsonfast
from fnbox.sandboxes.base import MAX_KEPT_LIMITS, FunctionSource, Limits, Parameter, RunResult

#: Largest frame either side accepts; a bigger result is refused inside the worker.
MAX_FRAME = 64 * 1024 * 1024
#: The exit status of a worker that ended itself to be replaced (see sandboxes.worker).
RECYCLED = 75

_LENGTH = struct.Struct(">I")


class ProtocolError(Exception):
    """A frame that breaks the protocol; the peer is not to be trusted any more."""


def encode(message: dict[str, Any]) -> bytes:
    body = jsonfast.dumps(message)
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
        message = jsonfast.loads(await reader.readexactly(length))
    except (asyncio.IncompleteReadError, ValueError, RecursionError) as exc:
        raise ProtocolError(f"a broken frame: {exc}") from exc
    if not isinstance(message, dict):
        raise ProtocolError("a frame that is not a JSON object")
    return message


class FrameParser:
    """Frames cut out of the chunks a pipe gives, for a reader fed by callbacks (see sandboxes.answers).

    `feed` returns the frames a chunk completes, in order; a partial frame waits for the
    next chunks, which are kept in a list and joined once, when its last byte is in (a big
    frame costs no quadratic copying). A frame's length is checked against MAX_FRAME as
    soon as its header is in, before its body is waited for.
    """

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self._size = 0
        self._need = _LENGTH.size  # bytes the kept chunks must reach before a frame can be cut

    def feed(self, chunk: bytes) -> list[dict[str, Any]]:
        if self._chunks:
            self._chunks.append(chunk)
            self._size += len(chunk)
            if self._size < self._need:
                return []
            data = b"".join(self._chunks)
            self._chunks, self._size = [], 0
        else:
            data = chunk
        messages: list[dict[str, Any]] = []
        offset, size = 0, len(data)
        need = _LENGTH.size
        while size - offset >= _LENGTH.size:
            (length,) = _LENGTH.unpack_from(data, offset)
            if length > MAX_FRAME:
                raise ProtocolError(f"a frame of {length} bytes is over the {MAX_FRAME} bytes allowed")
            end = offset + _LENGTH.size + length
            if end > size:
                need = _LENGTH.size + length
                break
            try:
                message = jsonfast.loads(data[offset + _LENGTH.size : end])
            except (ValueError, RecursionError) as exc:
                raise ProtocolError(f"a broken frame: {exc}") from exc
            if not isinstance(message, dict):
                raise ProtocolError("a frame that is not a JSON object")
            messages.append(message)
            offset = end
        if offset < size:
            rest = data[offset:] if offset else data
            self._chunks, self._size, self._need = [rest], len(rest), need
        return messages

    def end(self) -> None:
        """The pipe closed: raise ProtocolError if it did in the middle of a frame."""
        if self._size >= _LENGTH.size:
            raise ProtocolError("a broken frame: the pipe closed in the middle of it")


class FrameWriter:
    """Frames queued in one event-loop turn leave in one write: one system call for many calls.

    With `at_most`, they leave as soon as that many are queued too, so that the reader starts
    on the first frames of a long turn while the rest are made.

    Order is kept (a cancel frame never overtakes the run it cancels); a frame written after
    the pipe broke is dropped, and the reader of the other side sees the peer end.
    """

    #: Queued bytes past which `drain` writes at once and waits for the pipe.
    DRAIN_AT = 64 * 1024

    def __init__(self, writer: asyncio.StreamWriter, *, at_most: int | None = None) -> None:
        self.writer = writer
        self._transport = writer.transport  # written to straight: a call less per write
        self._loop = asyncio.get_running_loop()
        self._frames: list[bytes] = []
        self._size = 0
        self._at_most = at_most

    def write(self, frame: bytes) -> None:
        if not self._frames:
            self._loop.call_soon(self.flush)
        self._frames.append(frame)
        self._size += len(frame)
        if self._at_most is not None and len(self._frames) >= self._at_most:
            self.flush()

    def flush(self) -> None:
        if not self._frames:
            return
        frames, self._frames, self._size = self._frames, [], 0
        try:
            self._transport.write(frames[0] if len(frames) == 1 else b"".join(frames))
        except (BrokenPipeError, ConnectionResetError):
            pass  # the peer is gone: its reader ends, and what waits on it with it

    def is_closing(self) -> bool:
        return self.writer.is_closing()

    def backlogged(self) -> bool:
        """Whether so much is queued that a writer should wait for the pipe (`drain`) before more."""
        return self._size >= self.DRAIN_AT or self._transport.get_write_buffer_size() >= self.DRAIN_AT

    async def drain(self) -> None:
        """Wait for the pipe only when much is queued: small frames leave at the end of the turn."""
        if not self.backlogged():
            return
        self.flush()
        await self.writer.drain()


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
    """A run's limits, made once per pair of values (see MAX_KEPT_LIMITS)."""
    key = (data[0], data[1])
    limits = _LIMITS.get(key)
    if limits is None:
        limits = Limits(timeout=float(data[0]), memory=int(data[1]))
        if len(_LIMITS) < MAX_KEPT_LIMITS:
            _LIMITS[key] = limits
    return limits


_LIMITS: dict[tuple[float, float], Limits] = {}


def result_to_json(result: RunResult) -> dict[str, Any]:
    return {"result": result.result, "logs": result.logs, "duration": result.duration}


def result_from_json(data: dict[str, Any]) -> RunResult:
    return RunResult(data["result"], data["logs"], float(data["duration"]))
