"""Names in a Python sandbox: the builtins it offers, those it refuses, and those a function may not take.

Plain data with no import of RestrictedPython, so that checking a document's names loads
no engine (the namespace and the compile-time policy import these lists).
"""

from __future__ import annotations

import keyword

#: Builtins whose direct call is refused at save time (RestrictedPython refuses eval and
#: exec itself). None is provided at run time: an indirect use raises a NameError saying so.
FORBIDDEN_CALLS = {
    "compile": "compile() is not allowed",
    "open": "open() is not allowed: functions have no file access",
    "input": "input() is not allowed",
    "breakpoint": "breakpoint() is not allowed",
    "globals": "globals() is not allowed",
    "locals": "locals() is not allowed",
    "vars": "vars() is not allowed",
    "dir": "dir() is not allowed",
    "help": "help() is not allowed",
    "type": "type() is not allowed: use isinstance()",
    "super": "super() is not allowed",
    "id": "id() is not allowed",
    "memoryview": "memoryview() is not allowed",
    "setattr": "setattr() is not allowed: assign the attribute",
    "delattr": "delattr() is not allowed",
    "classmethod": "classmethod() is not allowed",
    "staticmethod": "staticmethod() is not allowed",
    "property": "property() is not allowed",
    "exit": "exit() is not allowed: use return",
    "quit": "quit() is not allowed: use return",
}

PLAIN_BUILTINS = (
    "abs all any ascii bin bool callable chr complex dict divmod enumerate filter float frozenset hash hex "
    "isinstance issubclass len list map max min next object oct ord repr reversed round set slice sorted str "
    "tuple zip None True False Ellipsis NotImplemented"
)
EXCEPTIONS = (
    "ArithmeticError AssertionError AttributeError EOFError Exception FloatingPointError ImportError "
    "IndexError KeyError LookupError MemoryError ModuleNotFoundError NameError NotImplementedError "
    "OverflowError RecursionError RuntimeError StopIteration TimeoutError TypeError UnboundLocalError "
    "UnicodeDecodeError UnicodeEncodeError UnicodeError ValueError ZeroDivisionError"
)
#: Builtins fnbox provides in a checked form.
GUARDED_BUILTINS = [
    "range",
    "int",
    "bytes",
    "bytearray",
    "pow",
    "format",
    "sum",
    "iter",
    "getattr",
    "hasattr",
    "print",
]
#: Builtins that are stubs raising NameError.
UNAVAILABLE = (*FORBIDDEN_CALLS, "eval", "exec")
#: Names the sandbox defines in the shared namespace, besides the functions.
GLOBALS = ("cache", "env", "log")
#: RestrictedPython's own reserved names (its print collector).
RESTRICTED = ("printed", "builtins")

#: Names a function may not have: keywords and every name the sandbox defines. Any name
#: starting with "_" is refused too (source.py): the guards transformed code calls live there.
RESERVED_NAMES: frozenset[str] = frozenset(
    list(keyword.kwlist)
    + PLAIN_BUILTINS.split()
    + EXCEPTIONS.split()
    + GUARDED_BUILTINS
    + list(UNAVAILABLE)
    + list(GLOBALS)
    + list(RESTRICTED)
)
