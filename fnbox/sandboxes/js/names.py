"""Names a JavaScript function or parameter of a workspace may not take.

A function becomes a global of the sandbox's context, so it may not be a keyword, nor
shadow a standard global (a function called `Date` would break `new Date()` in every
other function of the workspace), nor one of the globals the sandbox itself defines.
"""

from __future__ import annotations

import re

__all__ = ["IDENTIFIER", "PARAMS", "RESERVED_NAMES", "is_local_parameter", "is_valid_name"]

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

_KEYWORDS = """
    await break case catch class const continue debugger default delete do else enum export
    extends false finally for function if import in instanceof new null return super switch
    this throw true try typeof var void while with yield
    let static implements interface package private protected public
    arguments eval
"""

#: Own properties of a bare V8 context's global object (V8 13/14), plus `__proto__`.
_STANDARD_GLOBALS = """
    globalThis undefined NaN Infinity __proto__
    Object Function Array Number Boolean String Symbol BigInt Date Promise RegExp JSON Math
    Intl Reflect Proxy Atomics Iterator Temporal WebAssembly console
    Error AggregateError EvalError RangeError ReferenceError SyntaxError TypeError URIError
    SuppressedError DisposableStack AsyncDisposableStack
    ArrayBuffer SharedArrayBuffer DataView Uint8Array Int8Array Uint16Array Int16Array
    Uint32Array Int32Array BigUint64Array BigInt64Array Uint8ClampedArray Float16Array
    Float32Array Float64Array Map Set WeakMap WeakSet WeakRef FinalizationRegistry
    parseFloat parseInt isFinite isNaN decodeURI decodeURIComponent encodeURI
    encodeURIComponent escape unescape
"""

#: Globals the sandbox defines (see runtime.js and engine.py's V8 flags); names with `$`
#: cannot match IDENTIFIER anyway.
SANDBOX_GLOBALS = """
    cache console setTimeout clearTimeout setInterval clearInterval process $fnbox $fnbox_gc
"""

RESERVED_NAMES: frozenset[str] = frozenset((_KEYWORDS + _STANDARD_GLOBALS + SANDBOX_GLOBALS).split())
#: The object of every parameter a run was given, declared or not: a local of every function,
#: unless a declared parameter takes the name.
PARAMS = "params"
#: Parameter names that cannot be local variables (reserved words; `__proto__` would read
#: the prototype when not given): such a parameter is reachable as params.NAME only.
_NOT_LOCAL: frozenset[str] = frozenset(_KEYWORDS.split()) | {"__proto__"}


def is_local_parameter(name: str) -> bool:
    """A declared parameter that becomes a local variable: it shadows a global of the same name there."""
    return bool(IDENTIFIER.match(name)) and name not in _NOT_LOCAL


def is_valid_name(name: str) -> bool:
    """A name usable as a function or parameter name in the sandbox."""
    return bool(IDENTIFIER.match(name)) and name not in RESERVED_NAMES
