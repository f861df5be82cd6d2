"""The README's reference of Python functions, drawn from the policy itself so that it cannot drift.

`python -m fnbox.sandboxes.python.reference` prints it; tests/sandboxes/python/test_reference.py
checks that the README holds exactly this text.
"""

from __future__ import annotations

import keyword

from fnbox.sandboxes.python.guards import Budget, Guards
from fnbox.sandboxes.python.library_data import MAX_CACHE_ENTRIES
from fnbox.sandboxes.python.modules import ALLOWED_MODULES, LEFT_OUT, Modules
from fnbox.sandboxes.python.names import (
    DUNDER_METHODS,
    FORBIDDEN_CALLS,
    REFUSED_DUNDER_METHODS,
    RESERVED_PARAMETER_NAMES,
)


def members() -> dict[str, list[str]]:
    """Every allowed module's members, as a sandbox builds them."""
    modules = Modules(Guards({}, Budget()), frozenset(ALLOWED_MODULES))
    return {name: dir(modules.proxy(name)) for name in ALLOWED_MODULES}


def markdown() -> str:
    lines = [
        "#### Parameters (both languages)",
        "",
        "A parameter may have any name that is an identifier (letters, digits and `_`, not starting",
        "with a digit, up to 64 characters), in both languages. A declared parameter is a local",
        "variable of its function, and shadows a builtin or global of the same name there only",
        "(`id`, `type`, `list`, `filter`; in JavaScript `Date`, `Object`). One named like a global the",
        "sandbox defines (`cache`, `log`; `cache`, `console` in JavaScript) shadows it in that function",
        "only, without an error: the workspace's other functions still reach the global, so a function",
        "that needs both leaves the field undeclared and reads it as `params['cache']`.",
        "Every function also has `params`, the mapping of all the parameters of the run, declared",
        "(with their defaults) or not, whatever their names: `params['from']`, `params['_id']`,",
        "`params.default` in JavaScript. Names that cannot be variables (keywords such as `from`,",
        "`class`, `default`; in Python names starting with `_` and",
        ", ".join(f"`{n}`" for n in sorted(RESERVED_PARAMETER_NAMES - set(keyword.kwlist)))
        + ") are read there only. A declared parameter named `params` takes the name. A Python",
        "function calling another passes keywords: `other(x=1, extra=2)`, and undeclared ones",
        "reach its `params`.",
        "",
        "#### Modules",
        "",
        "`import` takes these modules (narrowed by `PYTHON_BUILTIN_MODULES`), each a proxy of",
        "vetted members; members that size their result by an argument are checked against the",
        "run's memory budget first.",
        "",
        "| module | members |",
        "|---|---|",
    ]
    for name, names in members().items():
        lines.append(f"| `{name}` | {', '.join(names)} |")
    lines += ["", "Left out, and why:", ""]
    for name in sorted(LEFT_OUT):
        for member, why in LEFT_OUT[name].items():
            lines.append(f"- `{name}.{member}`: {why}")
    lines += [
        f"- `functools.cache` and `lru_cache(maxsize=None)` keep at most {MAX_CACHE_ENTRIES:,} entries.",
        "",
        "#### Classes and refused constructs",
        "",
        "Classes may define these special methods, which Python calls as usual: "
        + ", ".join(f"`{m}`" for m in sorted(DUNDER_METHODS))
        + ". `super().__init__(...)` (zero-argument `super()`) calls the parent's; `property`,",
        "`classmethod` and `staticmethod` work. Special *attributes* (`x.__class__`, `x.__dict__`)",
        "stay refused. A subclass of a built-in value type (str, list, tuple, float...) may not",
        "redefine what the size checks read (its length, comparisons, arithmetic).",
        "",
        "Refused special methods, and why:",
        "",
    ]
    lines += [f"- `{name}`: {why}" for name, why in sorted(REFUSED_DUNDER_METHODS.items())]
    lines += [
        "",
        "Refused builtins (`eval()` and `exec()` too):",
        "",
        *(f"- `{name}()`{why.removeprefix(f'{name}() is not allowed')}" for name, why in FORBIDDEN_CALLS.items()),
        "",
        "`str.format()` and `format_map()` fields name a position (`{}`, `{0}`) or a key",
        "(`{name}`) with a conversion and format spec; attribute and index fields (`{0.x}`,",
        "`{0[1]}`) are refused, since they would walk past the guards. Names starting with `_`,",
        "`async`, `try/except*`, catching `BaseException`, and `return` inside `finally` are refused",
        "when the workspace is saved, with the line.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown(), end="")
