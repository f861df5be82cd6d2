"""Host calls of the URL globals: WHATWG URL parsing (with IDNA) by the `ada-url` package."""

from __future__ import annotations

from typing import Any

import ada_url

from fnbox.sandboxes.js.host import HostError, Op
from fnbox.sandboxes.js.hostops import text

__all__ = ["OPS"]

PARTS = ("href", "protocol", "username", "password", "host", "hostname", "port", "pathname", "search", "hash", "origin")
_SETTABLE = frozenset(PARTS) - {"origin"}
#: Characters of a URL: far more than any real one, and the budget of a call anyway.
MAX_URL = 1 << 20


def _parts(url: Any) -> list[str]:
    return [getattr(url, part) for part in PARTS]


def _checked(value: str, name: str) -> str:
    if len(value) > MAX_URL:
        raise HostError(f"the {name} is over {MAX_URL} characters", "RangeError")
    return value


def parse(args: list[Any], budget: int) -> list[str] | None:
    """The parts of a URL, or None if it does not parse (JS throws the TypeError)."""
    url = _checked(text(args, 0, "url"), "URL")
    base = args[1] if len(args) > 1 else None
    try:
        if isinstance(base, str):
            return _parts(ada_url.URL(url, base=_checked(base, "base")))
        return _parts(ada_url.URL(url))
    except ValueError:
        return None


def assign(args: list[Any], budget: int) -> list[str]:
    """The parts after setting one of them: an invalid value changes nothing, as in browsers."""
    url = ada_url.URL(_checked(text(args, 0, "url"), "URL"))
    part = text(args, 1, "part")
    if part not in _SETTABLE:
        raise HostError(f"URL has no settable part {part!r}", "TypeError")
    try:
        setattr(url, part, _checked(text(args, 2, "value"), part))
    except ValueError:
        if part == "href":
            raise HostError(f"Invalid URL: {args[2]}", "TypeError", "ERR_INVALID_URL") from None
    return _parts(url)


def domain(args: list[Any], budget: int) -> str:
    name = _checked(text(args, 0, "domain"), "domain")
    ascii_form = args[1] if len(args) > 1 else True
    try:
        result = ada_url.idna_to_ascii(name) if ascii_form else ada_url.idna_to_unicode(name)
    except (ValueError, UnicodeError):
        return ""
    return result if isinstance(result, str) else result.decode("utf-8", "replace")


OPS: dict[str, Op] = {"urlParse": parse, "urlSet": assign, "domain": domain}
