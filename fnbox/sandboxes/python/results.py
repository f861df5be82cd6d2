"""What crosses back out of a run: the result as plain JSON data, an error as text and lines.

The result is copied into plain dicts, lists, strs, ints, floats, bools and None inside the
timed run, so nothing the user code made (a subclass, a generator, a huge shared list)
reaches the caller, and a result too big to hand over stops at the deadline or at its
size limit. Every str that leaves (result, logs, error messages) is valid UTF-8: a lone
surrogate would make the worker's answer unsendable.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any

from fnbox.sandboxes.python.sizes import TooBig

#: Nesting depth of a result; deeper is almost always a cycle.
MAX_RESULT_DEPTH = 200
#: Estimated size of a result's JSON text, in bytes. The worker hands a run's answer over
#: in one frame of at most 64 MB (sandboxes.protocol.MAX_FRAME), logs included.
MAX_RESULT_SIZE = 16 << 20
#: Characters of an error message kept.
MAX_ERROR_MESSAGE = 2000
#: CPython refuses str() of ints over 4,300 digits, so JSON encoding would fail later.
MAX_RESULT_INT_BITS = 14_000
#: Items copied between two deadline and size checks.
_CHECK_EVERY = 4096
#: List items measured at once by `_plain_size`.
_CHUNK = 1 << 14
#: Typical length of a float in JSON (repr(0.1 + 0.2) has 19 characters; most have fewer).
_FLOAT_SIZE = 16

_SURROGATE = re.compile("[\ud800-\udfff]")
#: Characters JSON escapes, as `\\u0001` at worst: six bytes for one.
_ESCAPED = re.compile('[\x00-\x1f"\\\\]')


def clean_text(text: str) -> str:
    """`text` with lone surrogates replaced by U+FFFD, as a UTF-8 encoder would."""
    if text.isascii() or not _SURROGATE.search(text):
        return text
    return _SURROGATE.sub("\ufffd", text)


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
    """A plain-data copy of `value`, or NotJSON / TooBig (a MemoryError)."""
    kind = type(value)
    if kind is bool or value is None or (kind is int and value.bit_length() <= MAX_RESULT_INT_BITS):
        return value
    if kind is str and len(value) < _CHECK_EVERY:
        return clean_text(value)
    copier = _Copier(max_items, check_deadline)
    result = copier.copy(value, 0)
    copier.check()
    return result


def _plain_size(chunk: list[Any] | tuple[Any, ...]) -> int | None:
    """The JSON size of a run of items of one plain type (they need no copy), measured by
    C loops; None for anything else (mixed, nested, non-ASCII, not JSON), copied item by item."""
    kinds = set(map(type, chunk))
    if len(kinds) != 1:
        return None
    kind = kinds.pop()
    if kind is int:
        if max(map(int.bit_length, chunk)) > MAX_RESULT_INT_BITS:
            return None
        return (sum(map(int.bit_length, chunk)) * 77 >> 8) + 3 * len(chunk)  # digits: bits * log10(2)
    if kind is float:
        return _FLOAT_SIZE * len(chunk) if all(map(math.isfinite, chunk)) else None
    if kind is str:
        total = sum(map(len, chunk))
        if total > _CHUNK * 64 or not all(map(str.isascii, chunk)) or _ESCAPED.search("".join(chunk)):
            return None  # long strings (maybe one, many times) are measured one by one
        return total + 3 * len(chunk)
    if kind is bool or kind is type(None):
        return 6 * len(chunk)
    return None


class _Copier:
    """Copies a result, checking the deadline and the size so far every few thousand items.

    Runs of list items of one plain type, the common case, are measured by C loops
    (`_plain_size`): a list of a million numbers is copied in a few tens of milliseconds.
    """

    __slots__ = ("check_deadline", "count", "max_items", "next_check", "size")

    def __init__(self, max_items: int, check_deadline: Callable[[], None]) -> None:
        self.count = 0  # items copied
        self.next_check = _CHECK_EVERY
        self.size = 0  # estimated bytes of JSON
        self.max_items = max_items
        self.check_deadline = check_deadline

    def counted(self, items: int) -> None:
        self.count += items
        if self.count >= self.next_check:  # also reached by trees of small lists (shared ones: 2**60 leaves)
            self.check()

    def check(self) -> None:
        self.next_check = self.count + _CHECK_EVERY
        self.check_deadline()
        if self.size > MAX_RESULT_SIZE:
            raise TooBig(f"the result is over {MAX_RESULT_SIZE >> 20} MB of JSON")
        if self.count > self.max_items:
            raise TooBig(f"the result has more than {self.max_items:,} items")

    def copy(self, value: Any, depth: int) -> Any:
        """Any value, at `depth` in the result."""
        kind = type(value)
        if (kind is list or kind is tuple or kind is dict) and depth < MAX_RESULT_DEPTH:
            self.size += 2
            return self.items(value, depth + 1) if kind is not dict else self.mapping(value, depth + 1)
        if isinstance(value, str):
            return self.text(value)
        if value is None or isinstance(value, bool):
            self.size += 6
            return None if value is None else bool(value)
        if isinstance(value, int):
            return self.number(int(value))
        if isinstance(value, float):
            return self.number(float(value))
        if depth >= MAX_RESULT_DEPTH:
            raise NotJSON(f"it is nested more than {MAX_RESULT_DEPTH} levels deep (a cycle?)")
        self.size += 2
        if isinstance(value, (list, tuple)):
            return self.items(value, depth + 1)
        if isinstance(value, dict):
            return self.mapping(value, depth + 1)
        hint = ""
        if hasattr(type(value), "isoformat"):
            hint = " (convert it with .isoformat())"
        raise NotJSON(f"a {type(value).__name__} value{hint}")

    def items(self, value: list[Any] | tuple[Any, ...], depth: int) -> list[Any]:
        if len(value) < 64:  # too short for the C loops to pay
            copied = self.mixed(value, 0, depth)
            self.counted(len(value))
            return copied
        copied = []
        for start in range(0, len(value), _CHUNK):
            chunk = value[start : start + _CHUNK]
            size = _plain_size(chunk)
            if size is None:
                copied.extend(self.mixed(chunk, start, depth))
            else:
                copied.extend(chunk)
                self.size += size
            self.count += len(chunk)
            self.check()
        return copied

    def mapping(self, value: dict[Any, Any], depth: int) -> dict[str, Any]:
        result = {}
        for key, item in dict.items(value):  # not a method a dict subclass may redefine
            name = self.key(key)
            try:
                result[name] = self.copy(item, depth)
            except NotJSON as exc:
                exc.path = f"[{name!r}]{exc.path}"
                raise
            self.counted(1)
        return result

    def mixed(self, chunk: list[Any] | tuple[Any, ...], offset: int, depth: int) -> list[Any]:
        """Item by item; the exact plain types inline, the rest through copy()."""
        copied: list[Any] = []
        append = copied.append
        size = 0
        for index, item in enumerate(chunk, offset):
            kind = type(item)
            try:
                if kind is int and item.bit_length() <= MAX_RESULT_INT_BITS:
                    size += (item.bit_length() * 77 >> 8) + 3
                elif kind is str and len(item) < _CHECK_EVERY and item.isascii() and not _ESCAPED.search(item):
                    size += len(item) + 3
                elif kind is float and item - item == 0:  # finite
                    size += _FLOAT_SIZE
                elif item is None or kind is bool:
                    size += 6
                else:
                    item = self.copy(item, depth)
            except NotJSON as exc:
                exc.path = f"[{index}]{exc.path}"
                raise
            append(item)
            if index & 0xFFF == 0xFFF:
                self.size += size
                size = 0
                self.check()
        self.size += size
        return copied

    def number(self, value: int | float) -> int | float:
        if isinstance(value, float):
            if not math.isfinite(value):
                raise NotJSON(f"{value!r} is not a JSON number")
            self.size += _FLOAT_SIZE
        else:
            bits = value.bit_length()
            if bits > MAX_RESULT_INT_BITS:
                raise NotJSON("an integer with more than 4,300 digits")
            self.size += (bits * 77 >> 8) + 3
        return value

    def text(self, value: str) -> str:
        value = clean_text(str(value))
        # UTF-8 takes 1 to 4 bytes a character, most non-ASCII text 2 or 3; an escape up to 6.
        if _ESCAPED.search(value):
            self.size += 6 * len(value) + 3
        else:
            self.size += (len(value) if value.isascii() else 3 * len(value)) + 3
        if len(value) >= _CHECK_EVERY:
            self.check()
        return value

    def key(self, key: Any) -> str:
        """Dict keys as json.dumps makes them."""
        if isinstance(key, str):
            return self.text(key)
        self.size += 8
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
    return clean_text(message)


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
    return clean_text("\n".join(out))
