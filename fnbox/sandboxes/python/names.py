"""Names in a Python sandbox: the builtins it offers, those it refuses, and those a function may not take.

Plain data with no import of RestrictedPython, so that checking a document's names loads
no engine (the namespace and the compile-time policy import these lists).
"""

from __future__ import annotations

import keyword

#: Builtins whose direct call is refused at save time (RestrictedPython refuses eval and
#: exec itself). None is provided at run time: an indirect use raises a NameError saying so.
FORBIDDEN_CALLS = {
    "compile": "compile() is not allowed: functions run the code they were saved with",
    "open": "open() is not allowed: functions have no file access",
    "input": "input() is not allowed: a function receives its input as parameters",
    "breakpoint": "breakpoint() is not allowed: there is no debugger; use print() or log.info()",
    "globals": "globals() is not allowed (it would hand out the sandbox's namespace): use a dict",
    "locals": "locals() is not allowed (it would hand out the sandbox's namespace): use a dict or params",
    "vars": "vars() is not allowed (it would hand out private state): read the attributes",
    "dir": "dir() is not allowed (it lists private names): use hasattr()",
    "help": "help() is not allowed: see the README's Python section",
    "type": "type() is not allowed (classes hand out their internals): use isinstance()",
    "id": "id() is not allowed (it reveals memory addresses): compare with `is`",
    "memoryview": "memoryview() is not allowed: use bytes or bytearray",
    "setattr": "setattr() is not allowed: assign the attribute",
    "delattr": "delattr() is not allowed: use del obj.attr",
    "exit": "exit() is not allowed: use return",
    "quit": "quit() is not allowed: use return",
}

PLAIN_BUILTINS = (
    "abs all any ascii bin bool callable chr complex dict divmod enumerate filter float frozenset hash hex "
    "isinstance issubclass len list map max min next object oct ord repr reversed round set slice sorted str "
    "tuple zip None True False Ellipsis NotImplemented super classmethod staticmethod property"
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
#: The mapping of all the parameters a run was given, declared or not; a local of every
#: function, unless a declared parameter takes the name.
PARAMS = "params"

#: Special methods a class may define: Python calls them as usual (operators, `with`,
#: `for`, `len()`...). They run as user code, with its guards and deadline checks.
DUNDER_METHODS = frozenset(
    (
        "__init__ __new__ __post_init__ __repr__ __str__ __format__ __bytes__ __hash__ __bool__ "
        "__eq__ __ne__ __lt__ __le__ __gt__ __ge__ "
        "__len__ __iter__ __next__ __reversed__ __contains__ __getitem__ __setitem__ __delitem__ __missing__ "
        "__enter__ __exit__ __call__ __int__ __float__ __complex__ __round__ __trunc__ __floor__ __ceil__ "
        "__neg__ __pos__ __abs__ __invert__ "
        + " ".join(
            f"__{p}{op}__"
            for op in [
                "add",
                "sub",
                "mul",
                "matmul",
                "truediv",
                "floordiv",
                "mod",
                "divmod",
                "pow",
                "lshift",
                "rshift",
                "and",
                "xor",
                "or",
            ]
            for p in ("", "r", "i")
            if not (p == "i" and op == "divmod")
        )
    ).split()
)
#: Special methods a class may not define, and why: Python or the standard library calls
#: them on their own, outside what the guards see.
REFUSED_DUNDER_METHODS = {
    "__reduce__": "copy and deepcopy would write the state it returns onto any object",
    "__reduce_ex__": "copy and deepcopy would write the state it returns onto any object",
    "__getstate__": "copy and deepcopy would write the state it returns onto any object",
    "__setstate__": "copy and deepcopy call it with state they build",
    "__copy__": "copy.copy() would hand back whatever it returns; define a copy() method",
    "__deepcopy__": "copy.deepcopy() would hand it its internal memo; define a copy() method",
    "__getattr__": "host code looking up special names would get its answers; use properties",
    "__getattribute__": "host code looking up special names would get its answers; use properties",
    "__setattr__": "it would need object.__setattr__, which is not reachable; use properties",
    "__delattr__": "it would need object.__delattr__, which is not reachable",
    "__del__": "it runs when the object is collected, after the run and outside its deadline",
    "__index__": "C code would take its result as a size without the size guards; define __int__",
    "__length_hint__": "C code would take its result as a size to allocate",
    "__init_subclass__": "it runs inside class creation, with the class statement's keywords",
    "__class_getitem__": "an implicit class method; write a plain method",
    "__set_name__": "it runs inside class creation on the class being made",
    "__get__": "descriptors run on attribute lookups the guards made; use property",
    "__set__": "descriptors run on attribute writes the guards allowed; use property",
    "__delete__": "descriptors run on attribute deletes the guards allowed; use property",
    "__instancecheck__": "it would change what isinstance() answers to the guards",
    "__subclasscheck__": "it would change what issubclass() answers to the guards",
    "__mro_entries__": "it would choose the bases of another class",
    "__prepare__": "it would choose the namespace of another class",
    "__dir__": "dir() is not available",
    "__sizeof__": "it would change the sizes the guards read",
}
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
#: Names a declared parameter cannot take as a local variable (it is read through `params`):
#: the keywords and the names RestrictedPython refuses to bind. A parameter named like a builtin (`id`, `type`, `list`)
#: shadows it inside its function only; one named `cache` or `log` shadows the workspace's
#: cache or log there (both stay reachable from other functions).
RESERVED_PARAMETER_NAMES: frozenset[str] = frozenset([*keyword.kwlist, *RESTRICTED, "print", "breakpoint"])
