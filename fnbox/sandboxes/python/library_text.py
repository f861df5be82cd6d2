"""Vetted members of the standard-library modules for text: templates, wrapping, diffs, pretty printing.

Their outputs can outgrow their inputs (an indent on every line, a template field used a
million times, a normalization that expands a character eighteenfold), so the members
that can are checked against the run's budget before the work is done or while it is.
What is left out, and why, is in LEFT_OUT.
"""

from __future__ import annotations

import difflib
import html
import pprint
import string
import textwrap
import unicodedata
from collections import ChainMap
from collections.abc import Callable, Mapping
from typing import Any

from fnbox.sandboxes.python.guards import Guards
from fnbox.sandboxes.python.sizes import too_big

#: Largest indent pprint.pformat() takes.
MAX_PPRINT_INDENT = 64

_STRING = "ascii_letters ascii_lowercase ascii_uppercase digits hexdigits octdigits printable punctuation whitespace"
_UNICODEDATA = (
    "bidirectional category combining decimal decomposition digit east_asian_width is_normalized lookup "
    "mirrored name numeric unidata_version"
)

LEFT_OUT: dict[str, dict[str, str]] = {
    "string": {
        "Formatter": "its get_field() walks attributes and indexes of arguments by name ('{0.__class__}')",
    },
    "textwrap": {},
    "html": {},
    "difflib": {
        "HtmlDiff": "sizes its output by tab size and wrap column arguments; not vetted",
        "diff_bytes": "decodes and re-encodes with any codec name; not vetted",
    },
    "pprint": {
        "PrettyPrinter": "writes to any stream, the worker's stdout included; use pformat() or pprint()",
    },
    "unicodedata": {"ucd_3_2_0": "an old Unicode database object with its own unchecked normalize()"},
}


def _pick(module: Any, names: str) -> dict[str, Any]:
    return {name: getattr(module, name) for name in names.split() if hasattr(module, name)}


class _Counted(Mapping[str, Any]):
    """The mapping a Template substitutes from, counting the characters it hands out."""

    def __init__(self, mapping: Mapping[str, Any], limit: int) -> None:
        self._mapping = mapping
        self._limit = limit
        self._total = 0

    def __getitem__(self, key: str) -> Any:
        value = self._mapping[key]
        self._total += len(str(value))
        if self._total > self._limit:
            raise too_big("this Template substitution", self._total, self._limit, "characters")
        return value

    def __iter__(self) -> Any:
        return iter(self._mapping)

    def __len__(self) -> int:
        return len(self._mapping)


def build_string(guards: Guards) -> dict[str, Any]:
    items = guards.budget
    missing = object()

    def counted(template: string.Template, mapping: Any, kws: dict[str, Any]) -> _Counted:
        if mapping is missing:
            merged: Mapping[str, Any] = kws
        elif kws:
            merged = ChainMap(kws, mapping)
        else:
            merged = mapping
        return _Counted(merged, max(items.items - len(template.template), 0))

    class Template(string.Template):
        """string.Template whose substitutions are counted against the run's budget."""

        def substitute(self, mapping: Any = missing, /, **kws: Any) -> str:
            return super().substitute(counted(self, mapping, kws))

        def safe_substitute(self, mapping: Any = missing, /, **kws: Any) -> str:
            return super().safe_substitute(counted(self, mapping, kws))

    Template.__module__ = "string"
    members = _pick(string, _STRING)
    members.update(capwords=string.capwords, Template=Template)
    return members


def build_textwrap(guards: Guards) -> dict[str, Any]:
    items = guards.budget

    def check(what: str, text: Any, *indents: Any, once: Any = "") -> None:
        """Every line may get an indent, and there are at most as many lines as characters."""
        if isinstance(text, str):
            widest = max((len(i) for i in indents if isinstance(i, str)), default=0)
            size = len(text) + widest * (len(text) + 1) + (len(once) if isinstance(once, str) else 0)
            if size > items.items:
                raise too_big(what, size, items.items, "characters")

    def options(kwargs: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(kwargs.get(k, "") for k in ("initial_indent", "subsequent_indent"))

    class TextWrapper(textwrap.TextWrapper):
        def wrap(self, text: str) -> list[str]:
            check("textwrap", text, self.initial_indent, self.subsequent_indent, once=self.placeholder)
            return super().wrap(text)

    TextWrapper.__module__ = "textwrap"

    def wrap(text: str, width: int = 70, **kwargs: Any) -> list[str]:
        return TextWrapper(width=width, **kwargs).wrap(text)

    def fill(text: str, width: int = 70, **kwargs: Any) -> str:
        return "\n".join(wrap(text, width, **kwargs))

    def shorten(text: str, width: int, **kwargs: Any) -> str:
        check("textwrap.shorten()", text, *options(kwargs), once=kwargs.get("placeholder", ""))
        return textwrap.shorten(text, width, **kwargs)

    def indent(text: str, prefix: str, predicate: Callable[[str], bool] | None = None) -> str:
        check("textwrap.indent()", text, prefix)
        return textwrap.indent(text, prefix, predicate)

    return {
        "wrap": wrap,
        "fill": fill,
        "shorten": shorten,
        "indent": indent,
        "dedent": textwrap.dedent,
        "TextWrapper": TextWrapper,
    }


def build_html(guards: Guards) -> dict[str, Any]:
    items = guards.budget

    def escape(text: str, quote: bool = True) -> str:
        if isinstance(text, str):  # '&' becomes '&amp;', '"' '&quot;'...: the exact size, counted first
            size = len(text) + 4 * text.count("&") + 3 * (text.count("<") + text.count(">"))
            if quote:
                size += 5 * text.count('"') + 5 * text.count("'")
            if size > items.items:
                raise too_big("html.escape()", size, items.items, "characters")
        return html.escape(text, quote)

    return {"escape": escape, "unescape": html.unescape}


def build_difflib(guards: Guards) -> dict[str, Any]:
    # Pure Python: a diff of huge inputs is stopped by the run's deadline like user code.
    return _pick(
        difflib,
        "SequenceMatcher Differ Match get_close_matches unified_diff context_diff ndiff restore "
        "IS_LINE_JUNK IS_CHARACTER_JUNK",
    )


def build_pprint(guards: Guards) -> dict[str, Any]:
    def pformat(obj: Any, indent: int = 1, width: int = 80, depth: Any = None, **kwargs: Any) -> str:
        if isinstance(indent, int) and indent > MAX_PPRINT_INDENT:
            raise ValueError(f"pprint indent is limited to {MAX_PPRINT_INDENT} in fnbox functions")
        return pprint.pformat(obj, indent, width, depth, **kwargs)

    def pprint_(obj: Any, *args: Any, **kwargs: Any) -> None:
        """Prints to the run's log, as print() does."""
        kwargs.pop("stream", None)
        guards.ns["__builtins__"]["print"](pformat(obj, *args, **kwargs))

    def pp(obj: Any, *args: Any, sort_dicts: bool = False, **kwargs: Any) -> None:
        pprint_(obj, *args, sort_dicts=sort_dicts, **kwargs)

    return {
        "pformat": pformat,
        "pprint": pprint_,
        "pp": pp,
        "saferepr": pprint.saferepr,
        "isreadable": pprint.isreadable,
        "isrecursive": pprint.isrecursive,
    }


def build_unicodedata(guards: Guards) -> dict[str, Any]:
    items = guards.budget

    def normalize(form: Any, text: str) -> str:
        # NFKC/NFKD can turn one character into 18 (U+FDFA), NFC/NFD into at most 4.
        growth = 18 if isinstance(form, str) and form.startswith("NFK") else 4
        if isinstance(text, str) and len(text) * growth > items.items:
            raise too_big("unicodedata.normalize()", len(text) * growth, items.items, "characters")
        return unicodedata.normalize(form, text)

    members = _pick(unicodedata, _UNICODEDATA)
    members["normalize"] = normalize
    return members


BUILDERS: dict[str, Callable[[Guards], dict[str, Any]]] = {
    "difflib": build_difflib,
    "html": build_html,
    "pprint": build_pprint,
    "string": build_string,
    "textwrap": build_textwrap,
    "unicodedata": build_unicodedata,
}
