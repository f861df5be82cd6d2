"""JSON on the hot path (request bodies, worker frames, run answers): orjson where it gives
what the standard library gives, the standard library everywhere else.

orjson is several times faster, but it differs from `json` in ways fnbox's rules see: it
reads integers past 64 bits as floats and refuses NaN, Infinity, a byte order mark and lone
surrogate escapes; it writes NaN as null and refuses integers past 64 bits, keys that are
not strings and lone surrogates. So a text with a run of 19 digits (but not a fraction's)
is read by `json`, and anything orjson refuses goes to `json` (which accepts it or raises
its own error, as before); a value is written by `json` when orjson's text holds a null (which may have been
a NaN) or when orjson refuses it. Numbers may be spelt differently (1e-7 for 1e-07), never
valued differently.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

__all__ = ["dumps", "loads"]

#: Every digit written as 0, so that runs of digits are found by `bytes.find` (a regular
#: expression scanning digits cost more than orjson's whole parse).
_ZEROS = bytes.maketrans(b"123456789", b"000000000")
_RUN = b"0" * 19
_POINT, _ZERO = ord("."), ord("0")
#: Types orjson would write that `json` refuses are handed back to `json` instead.
_OPTIONS = orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_SUBCLASS


def loads(data: bytes) -> Any:
    """`json.loads(data)`, faster."""
    if not _long_integer(data):
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
    return json.loads(data)


def _long_integer(data: bytes) -> bool:
    """Whether `data` holds a run of 19 digits that is not a fraction's: an integer that may not fit 64 bits.

    A long fraction (a run's duration, 0.0036750006984220818) is read by orjson to the same
    float as by `json`; a run inside a string may be taken for an integer, which only costs time.
    """
    digits = data.translate(_ZEROS)
    start = digits.find(_RUN)
    while start >= 0:
        if start == 0 or digits[start - 1] != _POINT:
            return True
        end = start + len(_RUN)
        while end < len(digits) and digits[end] == _ZERO:
            end += 1
        start = digits.find(_RUN, end)
    return False


def dumps(value: Any, *, allow_nan: bool = True) -> bytes:
    """`json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=...)` in UTF-8, faster."""
    try:
        data = orjson.dumps(value, option=_OPTIONS)
    except TypeError:
        pass
    else:
        if b"null" not in data:
            return data
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=allow_nan).encode()
