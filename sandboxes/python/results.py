"""What crosses back out of a run: the result as plain JSON data, an error as text and lines.

The result is copied into plain dicts, lists, strs, ints, floats, bools and None inside the
timed run, so nothing the user code made (a subclass, a generator, a huge shared list)
reaches the caller, and a result too big to serialise stops at the deadline.
"""

from __future__ import annotations

import math
from types import TracebackType
from typing import Any, Callable, Mapping

#: Nesting depth of a result; deeper is almost always a cycle.
MAX_RESULT_DEPTH = 200
#: Characters of an error message kept.
MAX_ERROR_MESSAGE = 2000
#: CPython refuses str() of ints over 4,300 digits, so JSON encoding would fail later.
MAX_RESULT_INT_BITS = 14_000


class NotJSON(ValueError):
    """The result holds something JSON cannot carry; `path` says where."""

    def __init__(self, reason: str, path: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.path = path

    def __str__(self) -> str:
        where = f" at result{self.path}" if self.path else ""
        return f"the result is not JSON-serialisable{where}: {self.reason}"


def to_json(value: Any, max_items: int, check_deadline: Callable[[], None]) -> Any:
    """A plain-data copy of `value`, or NotJSON / MemoryError."""
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return value
    if kind is int and value.bit_length() <= MAX_RESULT_INT_BITS:
        return value
    counter = [0]
    return _copy(value, 0, counter, max_items, check_deadline)


def _copy(value: Any, depth: int, counter: list[int], max_items: int, check_deadline: Callable[[], None]) -> Any:
    if value is None or isinstance(value, bool):
        return bool(value) if value is not None else None
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        if value.bit_length() > MAX_RESULT_INT_BITS:
            raise NotJSON("an integer with more than 4,300 digits")
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise NotJSON(f"{value!r} is not a JSON number")
        return float(value)
    if depth >= MAX_RESULT_DEPTH:
        raise NotJSON(f"it is nested more than {MAX_RESULT_DEPTH} levels deep (a cycle?)")
    counter[0] += 1
    if counter[0] & 0xFFF == 0:
        check_deadline()
        if counter[0] > max_items:
            raise MemoryError(f"the result has more than {max_items:,} items")
    if isinstance(value, (list, tuple)):
        copied = []
        for index, item in enumerate(value):
            try:
                copied.append(_copy(item, depth + 1, counter, max_items, check_deadline))
            except NotJSON as exc:
                exc.path = f"[{index}]{exc.path}"
                raise
        counter[0] += len(copied)
        return copied
    if isinstance(value, dict):
        result = {}
        for key, item in value.items():
            name = _key(key)
            try:
                result[name] = _copy(item, depth + 1, counter, max_items, check_deadline)
            except NotJSON as exc:
                exc.path = f"[{name!r}]{exc.path}"
                raise
        counter[0] += len(result)
        return result
    hint = ""
    if hasattr(type(value), "isoformat"):
        hint = " (convert it with .isoformat())"
    raise NotJSON(f"a {type(value).__name__} value{hint}")


def _key(key: Any) -> str:
    """Dict keys as json.dumps makes them."""
    if isinstance(key, str):
        return str(key)
    if key is None:
        return "null"
    if isinstance(key, bool):
        return "true" if key else "false"
    if isinstance(key, int) and key.bit_length() <= MAX_RESULT_INT_BITS:
        return str(int(key))
    if isinstance(key, float) and math.isfinite(key):
        return repr(float(key))
    raise NotJSON(f"a dict key of type {type(key).__name__}")


def error_message(exc: BaseException) -> str:
    """`"ZeroDivisionError: division by zero"`, cut to a sane length."""
    name = type(exc).__name__
    try:
        text = str(exc)
    except Exception:  # a broken __str__ must not hide the error itself
        text = ""
    message = f"{name}: {text}" if text else name
    if len(message) > MAX_ERROR_MESSAGE:
        message = message[:MAX_ERROR_MESSAGE] + "… (truncated)"
    return message


Frame = tuple[str, str, int, str]


def user_frames(tb: TracebackType | None, sources: Mapping[str, tuple[str, list[str]]]) -> list[Frame]:
    """The traceback's frames in user code: (workspace function, code name, line, source line).

    `sources` maps a compiled function's file name to its workspace name and body lines;
    frames of the host (guards, stdlib) are left out, and with them any host path.
    """
    frames = []
    while tb is not None:
        code = tb.tb_frame.f_code
        source = sources.get(code.co_filename)
        if source is not None:
            function, lines = source
            line = tb.tb_lineno
            text = lines[line - 1].strip() if 0 < line <= len(lines) else ""
            frames.append((function, code.co_name, line, text))
        tb = tb.tb_next
    return frames


def format_stack(frames: list[Frame], message: str) -> str:
    """A Python-style traceback of user frames only."""
    out = ["Traceback (most recent call last):"]
    for function, name, line, text in frames:
        out.append(f'  File "{function}", line {line}, in {name}')
        if text:
            out.append(f"    {text}")
    out.append(message)
    return "\n".join(out)
