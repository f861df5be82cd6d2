"""The one module namespace all Python functions of a workspace share.

It holds the workspace's functions, `cache`, `log`, the guards the transformed code calls
(names starting with `_`, which user code cannot bind or read) and a builtins dict of
vetted builtins. Builtins that would open a way out are replaced by stubs that say so.
"""

from __future__ import annotations

import builtins
import operator
from collections.abc import Callable
from time import perf_counter
from types import MappingProxyType
from typing import Any

from fnbox.sandboxes.python.guards import PLAIN_INPLACE, Deadline, Guards
from fnbox.sandboxes.python.modules import Modules
from fnbox.sandboxes.python.names import EXCEPTIONS, FORBIDDEN_CALLS, PLAIN_BUILTINS, UNAVAILABLE
from fnbox.sandboxes.python.output import Output
from fnbox.sandboxes.python.sizes import GuardedType, LongRange

#: Default of a parameter whose declared default is a dict or list: the function body
#: builds a fresh copy on each call (see source.py).
MISSING = type("Missing", (), {"__repr__": lambda self: "<missing>", "__slots__": ()})()


def build_namespace(guards: Guards, modules: Modules, output: Output) -> dict[str, Any]:
    """Fills `guards.ns`, the namespace the guards already watch, and returns it."""
    sizes = guards.sizes
    safe = {name: getattr(builtins, name) for name in PLAIN_BUILTINS.split() + EXCEPTIONS.split()}
    safe.update(
        range=GuardedType((range, LongRange), sizes.range_builtin, "range"),
        int=GuardedType(int, sizes.int_builtin, "int"),
        bytes=GuardedType(bytes, sizes.bytes_builtin, "bytes"),
        bytearray=GuardedType(bytearray, sizes.bytearray_builtin, "bytearray"),
        pow=sizes.pow,
        format=sizes.format_builtin,
        sum=sizes.sum_builtin,
        iter=guards.iter_builtin,
        getattr=guards.getattr_builtin,
        hasattr=guards.hasattr_builtin,
        print=output.make_print(),
        __build_class__=builtins.__build_class__,
        __import__=modules.import_,
    )
    for name in UNAVAILABLE:
        safe[name] = _unavailable(name)

    ns = guards.ns
    ns.update(PLAIN_INPLACE)
    ns.update(
        {
            "__builtins__": safe,
            "__name__": "workspace",
            "__metaclass__": guards.metaclass,
            "_getattr_": guards.guarded_getattr,
            "_getitem_": operator.getitem,
            "_getiter_": guards.getiter,
            "_write_": guards.write,
            "_apply_": _apply,
            "_mul_": sizes.mul,
            "_pow_": sizes.pow,
            "_lshift_": sizes.lshift,
            "_mod_": sizes.mod,
            "_format_": sizes.format_builtin,
            "_imul_": sizes.imul,
            "_ipow_": sizes.pow,
            "_ilshift_": sizes.lshift,
            "_imod_": sizes.mod,
            "_augitem_": guards.augitem,
            "_augattr_": guards.augattr,
            "_clock_": perf_counter,
            "_deadline_": 0.0,
            "_timeout_": _timeout,
            "_missing_": MISSING,
            "_params_": _params,
            "_super_": guards.super_builtin,
            "cache": {},
            "env": MappingProxyType({}),  # the workspace's secrets, set for each run
            "log": output.make_log(),
        }
    )
    return ns


def _apply(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """`f(*args, **kwargs)` in user code."""
    return function(*args, **kwargs)


def _params(
    given: dict[str, Any], local: dict[str, Any], defaults: dict[str, Any], optional: tuple[str, ...]
) -> dict[str, Any]:
    """A function's `params`: its declared parameters' values, then every other one it was given."""
    merged = {**local, **given}
    for key in optional:
        if merged[key] is None:  # not given (null means not given)
            del merged[key]
    for key, value in defaults.items():
        merged.setdefault(key, value)
    return merged


def _timeout() -> None:
    raise Deadline


def _unavailable(name: str) -> Callable[..., Any]:
    why = FORBIDDEN_CALLS.get(name, "").removeprefix(f"{name}() is not allowed")
    message = f"{name}() is not available in fnbox functions{why}"

    def unavailable(*args: Any, **kwargs: Any) -> Any:
        raise NameError(message)

    unavailable.__name__ = name
    return unavailable
