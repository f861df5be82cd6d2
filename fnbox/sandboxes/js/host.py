"""Synchronous calls from a run's JavaScript into Python: the host region of the mailbox.

What JavaScript cannot do well or safely on its own (hashes, HMAC, ciphers, signatures,
zlib and brotli, WHATWG URL parsing with IDNA, randomness, the library's own source) is a
host call: runtime.js writes `[op, args]` as JSON into the region after the mailbox's text,
in pieces, calling `host` for each while its thread waits; the last piece runs the op, and
JS reads the answer's JSON back in pieces. Only plain data crosses, both ways: every op
checks its arguments' types and sizes itself, and answers strings, numbers, lists.

Bounds: a request over MAX_HOST_TEXT UTF-16 units or half the run's memory limit, an
answer over MAX_HOST_TEXT, binary data over a quarter of the memory limit, are refused with
an error the run sees as a memory failure (so Python holds a few times what the run
could); an op whose cost is known beforehand (pbkdf2, scrypt, slow brotli) is refused if it
would outlast the run. A call runs on the isolate's thread inside the run, so its time
counts against the run's timeout.
"""

from __future__ import annotations

import ctypes
import json
import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from fnbox.sandboxes.js.engine import SharedMemory

__all__ = [
    "CURRENT_NETWORK",
    "HOST_CAPACITY",
    "HOST_HEADER",
    "MAX_HOST_TEXT",
    "REMAINING",
    "HostChannel",
    "HostError",
    "Op",
]

#: UTF-16 units of one piece (the host region's text: 64 KiB).
HOST_CAPACITY = 32 * 1024
#: int32 slots of the host region's header (see runtime.js's hostCall).
HOST_HEADER = 8
#: UTF-16 units of a request's or answer's JSON: 6 MiB of binary data in base64, and some.
MAX_HOST_TEXT = 8 * 2**20
#: Bytes of a request or answer past which the worker's C heap is trimmed after the call:
#: glibc keeps big freed blocks otherwise, and the worker's RSS watch counts them.
_TRIM_AFTER = 1 << 20
_libc: Any = None

#: Seconds left to the run making the current call, for ops whose cost is known beforehand
#: (pbkdf2, scrypt) to refuse work that would run past it: the isolate's thread cannot be
#: stopped while Python works, and a worker whose run overruns is killed.
REMAINING: ContextVar[float] = ContextVar("REMAINING", default=float("inf"))
#: The outbound requests of the run making the current call (see hostnet.py).
CURRENT_NETWORK: ContextVar[Any] = ContextVar("CURRENT_NETWORK", default=None)
_COMMAND, _LENGTH, _MORE, _TOTAL, _OFFSET = range(5)


class HostError(Exception):
    """An op's failure, thrown in JS as `kind` (TypeError, RangeError, Error, or memory)."""

    def __init__(self, message: str, kind: str = "Error", code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.code = code


#: An op: the call's arguments (JSON values, checked by the op) and the run's byte budget.
Op = Callable[[list[Any], int], Any]


class HostChannel:
    """Python's side of the host region, called on the isolate's thread while JS waits."""

    def __init__(self, memory: SharedMemory, offset: int, memory_limit: Callable[[], int]) -> None:
        if memory.size < offset + HOST_HEADER * 4 + HOST_CAPACITY * 2:
            raise ValueError("the mailbox has no room for host calls")
        self._memory = memory  # keeps the buffer alive
        self._header = (ctypes.c_int32 * HOST_HEADER).from_address(memory.address + offset)
        self._text = memory.address + offset + HOST_HEADER * 4
        self._memory_limit = memory_limit
        self._request = bytearray()
        self._overflow = False
        self._answer = b""
        self.calls = 0
        #: When the current run's timeout passes (time.perf_counter()); set as it starts.
        self.deadline = float("inf")
        #: The current run's outbound requests (a hostnet.JsNetwork), if it may make any.
        self.network: Any = None

    def on_call(self) -> None:
        header = self._header
        length = min(max(header[_LENGTH], 0), HOST_CAPACITY)
        if header[_COMMAND] == 1:
            self._write(min(max(header[_OFFSET], 0), len(self._answer) // 2))
            return
        if header[_COMMAND] == 0:  # a new call's first piece: nothing of an interrupted one stays
            self._request.clear()
            self._overflow = False
        cap = min(2 * MAX_HOST_TEXT, max(self._memory_limit() // 2, 4 * HOST_CAPACITY))
        if self._overflow or len(self._request) + 2 * length > cap:
            self._overflow = True  # the rest is dropped, and the call answered as too big
            self._request.clear()
        else:
            self._request += ctypes.string_at(self._text, 2 * length)
        if header[_MORE]:
            return
        request = b"\0" if self._overflow else bytes(self._request)
        self._request, self._overflow = bytearray(), False
        self.calls += 1
        self._answer = self._answer_for(request).encode("utf-16-le", "surrogatepass")
        header[_TOTAL] = len(self._answer) // 2
        self._write(0)
        if len(request) > _TRIM_AFTER or len(self._answer) > _TRIM_AFTER:
            del request
            _trim()

    def _write(self, start: int) -> None:
        piece = self._answer[2 * start : 2 * (start + HOST_CAPACITY)]
        ctypes.memmove(self._text, piece, len(piece))
        self._header[_LENGTH] = len(piece) // 2

    def _answer_for(self, request: bytes) -> str:
        budget = max(min(self._memory_limit() // 4, MAX_HOST_TEXT), 1024)
        REMAINING.set(self.deadline - time.perf_counter())
        CURRENT_NETWORK.set(self.network)
        try:
            op, args = _parse(request)
            value = op(args, budget)
            answer = json.dumps({"v": value}, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
            if len(answer) > MAX_HOST_TEXT:
                raise HostError(f"the answer is over the {MAX_HOST_TEXT} characters a host call may carry", "memory")
            return answer
        except HostError as exc:
            return json.dumps({"e": exc.message, "t": exc.kind, "c": exc.code})
        except (ValueError, TypeError, OverflowError, MemoryError) as exc:
            return json.dumps({"e": f"invalid arguments: {exc}", "t": "TypeError", "c": "ERR_INVALID_ARG_VALUE"})
        except Exception as exc:  # an op's bug must still answer this call, never a stale answer
            return json.dumps({"e": f"the host operation failed: {type(exc).__name__}", "t": "Error", "c": None})


def _trim() -> None:
    """Hand the C heap's free memory back to the system (glibc only; elsewhere a no-op)."""
    global _libc
    if _libc is None:
        try:
            _libc = ctypes.CDLL("libc.so.6")
            _libc.malloc_trim.argtypes = [ctypes.c_size_t]
        except (OSError, AttributeError):
            _libc = False
    if _libc:
        _libc.malloc_trim(0)


def _parse(request: bytes) -> tuple[Op, list[Any]]:
    from fnbox.sandboxes.js.hostops import op_named

    if request == b"\0":
        raise HostError(
            "the arguments are more than a host call may carry (half the memory limit, at most 12 Mi characters)",
            "memory",
        )
    try:
        call = json.loads(request.decode("utf-16-le", "surrogatepass"))
    except (ValueError, RecursionError) as exc:
        raise HostError("a host call's arguments are not JSON", "TypeError") from exc
    if not (isinstance(call, list) and len(call) == 2 and isinstance(call[0], str) and isinstance(call[1], list)):
        raise HostError("a host call is [op, args]", "TypeError")
    op = op_named(call[0])
    if op is None:
        raise HostError(f"no host operation {call[0]!r}", "TypeError")
    return op, call[1]
