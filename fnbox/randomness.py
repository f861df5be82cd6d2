"""Random bytes for ids, drawn from the operating system a few kilobytes at a time.

Every request gets a random id, and every recorded run another. `os.urandom` per id is a
`getrandom` system call each time, which costs a busy server (on a virtual machine most
of all) several microseconds per call; drawing 4 KB at once and handing it out in slices
gives bytes of the same source and quality at a tenth of that. No byte is handed out
twice, and a forked child drops what its parent drew, so the two never share bytes.
"""

from __future__ import annotations

import os
import threading

__all__ = ["random_bytes", "random_hex"]

#: Bytes drawn from the operating system at once.
DRAW = 4096

_lock = threading.Lock()
_drawn = b""
_used = 0


def random_bytes(size: int) -> bytes:
    """`size` bytes from `os.urandom`, never handed out before."""
    global _drawn, _used
    with _lock:
        if _used + size > len(_drawn):
            _drawn, _used = os.urandom(max(DRAW, size)), 0
        start = _used
        _used += size
        return _drawn[start:_used]


def random_hex(size: int) -> str:
    """`size` random bytes as 2 × `size` hexadecimal digits."""
    return random_bytes(size).hex()


def _forget() -> None:
    global _drawn, _used
    _drawn, _used = b"", 0


os.register_at_fork(after_in_child=_forget)
