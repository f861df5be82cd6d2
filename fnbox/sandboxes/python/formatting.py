"""str.format() and str.format_map() for user code: fields name a position or a key, nothing more.

CPython's own str.format resolves `{0.__class__.__base__}` and `{0[key]}` by walking
attributes and items of its arguments in C, past every guard (CVE-2023-41039; the
string.Formatter escapes are the same walk in Python). Here the template is parsed, each
field must be empty (automatic numbering), a position or a key, and its format spec goes
through the same size check as f-strings; the result is counted against the run's budget.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Mapping
from typing import Any

from fnbox.sandboxes.python.sizes import Sizes, too_big

#: Nesting of format specs CPython allows ("{0:{1}}" has one level).
_MAX_SPEC_DEPTH = 2
_PARSER = string.Formatter()
_CONVERSIONS = {None: -1, "s": 115, "r": 114, "a": 97}


class _Numbering:
    """Automatic (`{}`) or manual (`{0}`) field numbering; a template may not mix them."""

    __slots__ = ("next",)

    def __init__(self) -> None:
        self.next: int | None = 0  # None once a manual number was used

    def position(self, field: str) -> int:
        if field == "":
            if self.next is None:
                raise ValueError("cannot switch from manual field specification to automatic field numbering")
            number, self.next = self.next, self.next + 1
            return number
        if self.next not in (0, None):
            raise ValueError("cannot switch from automatic field numbering to manual field specification")
        self.next = None
        return int(field)


def render(sizes: Sizes, template: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> str:
    """`template.format(*args, **kwargs)` with the fnbox field rules."""
    if not isinstance(template, str):
        raise TypeError("format() needs a str template")
    return _render(sizes, template, args, kwargs, _Numbering(), _MAX_SPEC_DEPTH)


def _render(
    sizes: Sizes, template: str, args: tuple[Any, ...], kwargs: Mapping[str, Any], numbering: _Numbering, depth: int
) -> str:
    if depth < 0:
        raise ValueError("Max string recursion exceeded")
    limit = sizes.budget.items
    parts: list[str] = []
    total = 0
    for count, (literal, field, spec, conversion) in enumerate(_PARSER.parse(template)):
        if not count % 1024:  # a template may hold millions of fields
            sizes.check_deadline()
        parts.append(literal)
        total += len(literal)
        if field is None:
            continue
        if "." in field or "[" in field:
            raise ValueError(
                f"format field {{{field}}} reads an attribute or an item, which fnbox functions do not allow "
                "in str.format(): pass the value itself ({0} or {name}) or use an f-string"
            )
        if field == "" or field.isdigit():
            index = numbering.position(field)
            if index >= len(args):
                raise IndexError(f"Replacement index {index} out of range for positional args tuple")
            value = args[index]
        else:
            value = kwargs[field]
        if spec and "{" in spec:
            spec = _render(sizes, spec, args, kwargs, numbering, depth - 1)
        text = sizes.format_builtin(value, spec or "", _CONVERSIONS[conversion])
        total += len(text)
        if total > limit:
            raise too_big("this str.format()", total, limit, "characters")
        parts.append(text)
    return "".join(parts)


def bound(sizes: Sizes, template: str, name: str) -> Callable[..., str]:
    """`template.format` / `template.format_map` as user code gets them."""
    if name == "format_map":

        def format_map(mapping: Mapping[str, Any]) -> str:
            return render(sizes, template, (), mapping)

        return format_map

    def format(*args: Any, **kwargs: Any) -> str:
        return render(sizes, template, args, kwargs)

    return format


def unbound(sizes: Sizes, name: str) -> Callable[..., str]:
    """`str.format` / `str.format_map` taken from the type: the template comes first."""

    def method(template: str, *args: Any, **kwargs: Any) -> str:
        if not isinstance(template, str):
            raise TypeError(f"descriptor '{name}' for 'str' objects doesn't apply to a '{type(template).__name__}'")
        return bound(sizes, template, name)(*args, **kwargs)

    method.__name__ = name
    return method
