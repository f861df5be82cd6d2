"""The Python side of the mailbox: a SharedArrayBuffer used in place (see runtime.js).

Using it needs no call into the isolate: a run's request is written before its eval is
posted; its outcome is read while JS waits in `notify`, and a live run's log entries while
it waits in `live`; and the log entries of a run that timed out, still spinning maybe, can
be read all the same.
"""

from __future__ import annotations

import ctypes
import struct
from collections.abc import Callable
from dataclasses import dataclass

from fnbox.sandboxes.js.engine import SharedMemory

__all__ = ["CAPACITY", "HELD", "HOST_OFFSET", "MAX_BATCH", "READY", "Mail", "Mailbox"]

#: UTF-16 units of text (64 KiB, per sandbox): a bigger request goes in the eval's text, a
#: bigger outcome through `$fnbox.take()`, and log entries past it with the outcome.
CAPACITY = 32 * 1024
# int32 slots: run id, state, stream end, outcome start, outcome length, function, request
# length, the id of the last run JS picked up, the run's memory limit in KiB, whether the
# run hands its log entries over live, the length of a live piece and whether more follows;
# spare ones
_HEADER = 16
#: Where the region of host calls starts (see host.py), after the header and the text.
HOST_OFFSET = _HEADER * 4 + CAPACITY * 2
RUNNING, READY, HELD = 0, 1, 2
#: Runs one batch may hold (see runtime.js's goBatch), and its table's int32 slots per run:
#: id, function, request length, state (QUEUED, TAKEN by JS, WITHDRAWN by Python).
MAX_BATCH = 16
_ENTRY = 4
QUEUED, TAKEN, WITHDRAWN = 0, 1, 2
#: A state's word holds the low bits of its run's id above the state (see _tag).
_TAG_MASK = 0x1FFFFFFF
_H_BATCH = 12
_FIRST_SLOTS = struct.Struct("<5i")
_RUN_ID = struct.Struct("<i")  # slot 0
_REQUEST = struct.Struct("<2i")  # slots 5 and 6: the function and the request's length


@dataclass(slots=True)
class Mail:
    """A run's mail as read once. Not frozen, though never changed: see RunResult."""

    run_id: int
    state: int  # READY: `outcome` is here; HELD: ask $fnbox.take()
    stream: str  # log entries, each JSON followed by ","
    outcome: str | None

    @classmethod
    def from_copy(cls, copy: bytes) -> Mail:
        """What `Mailbox.read` would have read, from a copy made while JS waited (handoff.py):
        the header, then as much of the text as the stream and a ready outcome take."""
        run_id, state, stream_end, start, length = _FIRST_SLOTS.unpack_from(copy)
        outcome = _slice(copy, start, length) if state == READY else None
        return cls(run_id, state, _slice(copy, 0, stream_end), outcome)


def _slice(copy: bytes, start: int, length: int) -> str:
    """Units [start, start + length) of the text after a copy's header, within the copy."""
    if length <= 0:
        return ""
    units = (len(copy) - _HEADER * 4) // 2
    start = min(max(start, 0), units)
    length = min(length, units - start)
    offset = _HEADER * 4 + 2 * start
    return copy[offset : offset + 2 * length].decode("utf-16-le", "replace")


class Mailbox:
    def __init__(self, memory: SharedMemory, table_offset: int | None = None) -> None:
        if memory.size < _HEADER * 4 + CAPACITY * 2:
            raise ValueError("the mailbox is smaller than expected")
        #: The batch table (runtime.js puts it at the end), or None: no batches then.
        self._table: ctypes.Array[ctypes.c_int32] | None = None
        self._table_address = 0
        if table_offset is not None and memory.size >= table_offset + MAX_BATCH * _ENTRY * 4:
            self._table_address = memory.address + table_offset
            self._table = (ctypes.c_int32 * (MAX_BATCH * _ENTRY)).from_address(self._table_address)
        self._memory = memory  # keeps the buffer alive
        self._header = (ctypes.c_int32 * _HEADER).from_address(memory.address)
        self._text = memory.address + _HEADER * 4
        #: The header and the text as bytes, written in place (cheaper than ctypes calls, per run).
        self._bytes = memoryview((ctypes.c_char * (_HEADER * 4 + CAPACITY * 2)).from_address(memory.address)).cast("B")

    def post(self, run_id: int, function: int, request: str, live: bool) -> bool:
        """Write a run's request; False if it does not fit (`live` is written all the same)."""
        self._header[9] = live
        if len(request) > CAPACITY:  # UTF-16 needs at least as many units as code points
            return False
        data = request.encode("utf-16-le", "surrogatepass")  # JS strings may hold lone surrogates
        size = len(data)
        if size > 2 * CAPACITY:
            return False
        memory = self._bytes
        memory[_HEADER * 4 : _HEADER * 4 + size] = data
        _RUN_ID.pack_into(memory, 0, run_id)
        _REQUEST.pack_into(memory, 20, function, size // 2)
        return True

    @property
    def batches(self) -> bool:
        return self._table is not None

    def post_batch(self, runs: list[tuple[int, int, str]]) -> bool:
        """Write a batch's requests (run id, function, request), for runtime.js's goBatch;
        False if they do not all fit (nothing is written then)."""
        table = self._table
        if table is None or not 0 < len(runs) <= MAX_BATCH:
            return False
        parts = [request.encode("utf-16-le", "surrogatepass") for _, _, request in runs]
        if sum(len(part) for part in parts) > 2 * CAPACITY:
            return False
        memory = self._bytes
        at = _HEADER * 4
        for k, ((run_id, function, _), part) in enumerate(zip(runs, parts, strict=True)):
            memory[at : at + len(part)] = part
            at += len(part)
            table[k * _ENTRY : k * _ENTRY + _ENTRY] = [run_id, function, len(part) // 2, _tag(run_id) | QUEUED]
        header = self._header
        header[9] = 0  # not live
        header[_H_BATCH] = len(runs)
        _RUN_ID.pack_into(memory, 0, runs[0][0])
        return True

    def withdraw(self, index: int, swap: Callable[[int, int, int], int]) -> bool:
        """Take a batch's run `index` back before JS takes it: True if it never starts.
        `swap` is a compare-and-swap of an int32 (handoff's), as JS's Atomics do theirs."""
        assert self._table is not None
        tag = _tag(self._table[index * _ENTRY])
        return swap(self._table_address + (index * _ENTRY + 3) * 4, tag | QUEUED, tag | WITHDRAWN) != tag | TAKEN

    def taken(self, index: int) -> bool:
        """Whether JS took a batch's run `index` (began it)."""
        table = self._table
        return table is not None and table[index * _ENTRY + 3] == _tag(table[index * _ENTRY]) | TAKEN

    def read(self) -> Mail:
        """The whole mailbox: only while JS waits in `notify` is it sure to be complete."""
        run_id, state, stream_end, start, length = self._header[0:5]
        outcome = self._string(start, length) if state == READY else None
        return Mail(run_id, state, self._string(0, stream_end), outcome)

    def set_memory_limit(self, limit: int) -> None:
        """Bytes the run may use: its ArrayBuffers count against them in JS (runtime.js)."""
        self._header[8] = min(limit // 1024, 2**31 - 1)

    def memory_limit(self) -> int:
        """Bytes the current run may use (as set_memory_limit wrote)."""
        return int(self._header[8]) * 1024

    def piece(self) -> tuple[int, bytes, bool]:
        """A live run's log entry piece, while JS waits in `live`: run id, UTF-16 bytes, more to come."""
        header = self._header
        length = min(max(header[10], 0), CAPACITY)
        return header[0], ctypes.string_at(self._text, 2 * length), header[11] != 0

    def started(self) -> int:
        """The id of the last run whose eval JS began (set before any user code runs)."""
        return int(self._header[7])

    def stream(self) -> str:
        """The log entries streamed so far: final ones only, JS appends after them."""
        return self._string(0, self._header[2])

    def _string(self, start: int, length: int) -> str:
        start = min(max(start, 0), CAPACITY)
        length = min(max(length, 0), CAPACITY - start)
        return ctypes.string_at(self._text + 2 * start, 2 * length).decode("utf-16-le", "replace")


def _tag(run_id: int) -> int:
    """The bits of a batch entry's state word above the state: its run's id (the low bits), so
    that a late step of JS through a batch that ended cannot take an entry of the batch posted
    after it."""
    return (run_id & _TAG_MASK) << 2
