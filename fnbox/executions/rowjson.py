"""The JSON texts of a record's row: what `json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode`
gives, character for character, without its per-call set-up.

`JSONEncoder.encode` builds the standard library's C encoder anew on every call, in Python;
for a record's small values (a run's parameters, its result, its logs) that set-up costs more
than the encoding. Here the C encoder is made with the same arguments, once per thread (a call
that fails leaves the next one a fresh encoder), and a text is quoted by the same C function
`encode` uses; without the C accelerator, `encode` itself is used.
"""

from __future__ import annotations

import json
import threading
from json import encoder as _encoder
from typing import Any

__all__ = ["dumps"]

_STANDARD = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
# Both are C functions where the accelerator is built (CPython's `_json`); typeshed leaves the first out.
_make: Any = getattr(_encoder, "c_make_encoder", None)
_quote = _encoder.encode_basestring


def dumps(value: Any) -> str:
    """`value` as compact JSON, non-ASCII characters kept and NaN written as NaN (as `json.dumps` does)."""
    if type(value) is str:
        return _quote(value)
    if _make is None:
        return _STANDARD.encode(value)
    try:
        encode = _local.encode
    except AttributeError:
        encode = _local.encode = _new_encoder()
    try:
        return "".join(encode(value, 0))
    except BaseException:
        # A refused value may leave its containers in the encoder's marker dict: the next call
        # gets a fresh encoder, as `encode` makes one per call.
        del _local.encode
        raise


def _new_encoder() -> Any:
    # The marker dict, which finds circular references, is empty again after each call that succeeds.
    return _make(
        {}, _STANDARD.default, _quote, None, _STANDARD.key_separator, _STANDARD.item_separator, False, False, True
    )


#: One encoder per thread: its marker dict is shared by the calls it makes.
_local = threading.local()
