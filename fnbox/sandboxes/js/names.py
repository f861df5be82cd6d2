"""Names a JavaScript function or parameter of a workspace may not take.

A function becomes a global of the sandbox's context, so it may not be a keyword, nor
shadow a standard global (a function called `Date` would break `new Date()` in every
other function of the workspace), nor one of the globals the sandbox itself defines.
"""

from __future__ import annotations

import re

__all__ = [
    "IDENTIFIER",
    "KNOWN_MODULES",
    "NODE_MODULES",
    "PARAMS",
    "RESERVED_NAMES",
    "is_local_parameter",
    "is_valid_name",
    "module_base",
    "unavailable_requires",
]

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
    cache console setTimeout clearTimeout setInterval clearInterval $fnbox $fnbox_gc
    require process Buffer URL URLSearchParams TextEncoder TextDecoder atob btoa structuredClone
    queueMicrotask Event EventTarget AbortController AbortSignal DOMException performance
    setImmediate clearImmediate Blob crypto CryptoKey fetch Request Response Headers FormData File
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


#: Node's modules a function may `require` unless NODE_BUILTIN_MODULES says otherwise.
NODE_MODULES: tuple[str, ...] = (
    "buffer",
    "crypto",
    "url",
    "querystring",
    "util",
    "zlib",
    "events",
    "string_decoder",
    "assert",
    "path",
    "timers",
    "stream",
    "http",
    "https",
    "dns",
)
#: Every module fnbox can provide (NODE_BUILTIN_MODULES may only pick among them).
KNOWN_MODULES: frozenset[str] = frozenset(NODE_MODULES)
_SUBMODULES = {
    "timers/promises": "timers",
    "stream/promises": "stream",
    "util/types": "util",
    "assert/strict": "assert",
    "path/posix": "path",
    "dns/promises": "dns",
}
_LITERAL_REQUIRE = re.compile(r"""(?<![\w$.])require\s*\(\s*(['"`])([^'"`\\\n]{1,200})\1\s*\)""")


def module_base(name: str) -> str:
    """The module a `require` name is part of: `timers/promises` is in `timers`."""
    name = name.removeprefix("node:")
    return _SUBMODULES.get(name, name)


def unavailable_requires(code: str, available: tuple[str, ...]) -> list[tuple[str, int]]:
    """Modules a body requires by a literal name that are not available, with their lines."""
    found = []
    for match in _LITERAL_REQUIRE.finditer(code):
        name = match[2].removeprefix("node:")
        if module_base(name) not in available:
            found.append((name, code.count("\n", 0, match.start()) + 1))
    return found
