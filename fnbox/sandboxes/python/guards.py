"""Access guards: what transformed user code calls instead of attribute access, writes
and iteration, and the deadline stop.

They keep user code to public attributes of what it was given (no `_` names, no frame or
code objects, no `str.format` field walks, no `.obj` of an AttributeError), let it modify
only containers and objects of its own classes, and stop it when its deadline passes.
"""

from __future__ import annotations

import operator
import weakref
from abc import ABCMeta
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal
from fractions import Fraction
from time import perf_counter
from typing import Any

from RestrictedPython.transformer import INSPECT_ATTRIBUTES

from fnbox.sandboxes.python import formatting
from fnbox.sandboxes.python.sizes import SIZED_METHODS, Budget, GuardedType, LongRange, Sizes


class Deadline(BaseException):
    """The run passed its deadline.

    A BaseException that user code cannot name: `except Exception:` lets it through and
    bare `except:` is compiled as `except Exception:`. The check that raises it keeps
    firing after the deadline, so a handler that swallows it stops at its next loop.
    """


#: Attribute names that get a closer look; every other name costs one set lookup.
_SPECIAL = (
    INSPECT_ATTRIBUTES
    | SIZED_METHODS
    | {
        "mro",
        "format",
        "format_map",
        "obj",
        "elements",
        "from_bytes",
        "register",
    }
)
_WRITABLE_TYPES = frozenset({dict, list, bytearray, deque, Counter})
#: Library classes whose instances are made for one run and belong to it (a requests
#: Session, its headers), which user code may modify as its own objects: never the classes.
LIBRARY_INSTANCE_TYPES: set[type] = set()
_WRITABLE_BASES = (dict, list, bytearray, deque)


class Guards:
    """The access guards of one sandbox, bound to its namespace (where its deadline is)."""

    # copy.deepcopy() of a bound guard (`copy.deepcopy(getattr)`) must not clone the sandbox's state.
    def __copy__(self) -> Any:
        return self

    def __deepcopy__(self, memo: Any) -> Any:
        return self

    def __init__(self, namespace: dict[str, Any], budget: Budget) -> None:
        self.ns = namespace
        self.budget = budget
        self.sizes = Sizes(budget, self.check_deadline)
        self.user_classes: weakref.WeakSet[type] = weakref.WeakSet()
        #: The metaclass of every `class` statement of user code.
        self.metaclass = ClassMaker(self.user_classes)

    # Deadline.

    def check_deadline(self) -> None:
        if perf_counter() > self.ns["_deadline_"]:
            raise Deadline

    def ticking(self, iterable: Iterable[Any]) -> Iterator[Any]:
        """Iterate with a deadline check per item: for infinite or huge C iterators
        (itertools.count, product...), so C code consuming them comes back to Python."""
        ns = self.ns
        for item in iterable:
            if perf_counter() > ns["_deadline_"]:
                raise Deadline
            yield item

    # Attribute access, writes, iteration.

    def guarded_getattr(self, obj: Any, name: str) -> Any:
        """`obj.name` in user code (the name is always a literal str there)."""
        if name.startswith("_"):
            raise AttributeError(f'"{name}" is an invalid attribute name because it starts with "_"')
        if name in _SPECIAL:
            return self._special_attribute(obj, name)
        return getattr(obj, name)

    def getattr_builtin(self, obj: Any, name: str, *default: Any) -> Any:
        """getattr() for user code: the same checks as `obj.name`."""
        if type(name) is not str:  # a str subclass could fake startswith()
            raise TypeError("attribute name must be a str")
        try:
            return self.guarded_getattr(obj, name)
        except AttributeError:
            if default:
                return default[0]
            raise

    def hasattr_builtin(self, obj: Any, name: str) -> bool:
        if type(name) is not str:
            raise TypeError("attribute name must be a str")
        try:
            self.guarded_getattr(obj, name)
        except AttributeError:
            return False
        return True

    def _special_attribute(self, obj: Any, name: str) -> Any:
        if type(obj) is GuardedType:
            obj = obj._main_type
        if name in INSPECT_ATTRIBUTES:
            raise AttributeError(f'"{name}" is a restricted name, that is forbidden to access in RestrictedPython.')
        if name == "mro":
            raise AttributeError('"mro" is not available in fnbox functions')
        if name in ("format", "format_map") and _is_or_subclasses(obj, str):
            # CPython's would walk `{0.__class__}` fields past the guards: fnbox's reads positions and keys only.
            if isinstance(obj, str):
                return formatting.bound(self.sizes, obj, name)
            return formatting.unbound(self.sizes, name)
        if name == "register":  # ABCMeta.register() of a host class changes isinstance() for every workspace
            owner = getattr(getattr(obj, name, None), "__self__", None)
            if isinstance(owner, ABCMeta) and owner not in self.user_classes:
                raise AttributeError("register() of a class fnbox functions did not define is not available")
        if name == "obj" and isinstance(obj, BaseException):
            raise AttributeError('"obj" of an exception is not available in fnbox functions')
        if name == "elements" and _is_or_subclasses(obj, Counter):
            raise AttributeError("Counter.elements() is not available in fnbox functions")
        value = getattr(obj, name)
        if name in SIZED_METHODS or name == "from_bytes":
            return self.sizes.sized_attribute(obj, name, value)
        return value

    def write(self, obj: Any) -> Any:
        """Target of `obj[k] = v`, `obj.a = v`, `del ...`: containers and user objects only.

        Host objects (functions, classes, module proxies) are shared by every sandbox of
        the process: a write there would leak into other workspaces.
        """
        kind = type(obj)
        if (
            kind in _WRITABLE_TYPES
            or kind in self.user_classes
            or isinstance(obj, _WRITABLE_BASES)
            or kind in LIBRARY_INSTANCE_TYPES
        ):
            return obj
        if isinstance(obj, type) and obj in self.user_classes:
            return obj
        raise TypeError(f"fnbox functions cannot modify {kind.__name__} objects")

    def augitem(self, obj: Any, key: Any, op: Callable[[Any, Any], Any], value: Any) -> None:
        self.write(obj)[key] = op(obj[key], value)

    def augattr(self, obj: Any, name: str, op: Callable[[Any, Any], Any], value: Any) -> None:
        setattr(self.write(obj), name, op(self.guarded_getattr(obj, name), value))

    def super_builtin(self, cls: Any, *obj: Any) -> Any:
        """`super(Class, obj)`: for classes of user code only.

        fnbox's own subclasses of host classes (io.StringIO, string.Template, random.Random)
        add size checks in their methods; super() past them would reach the unchecked ones.
        """
        if not (isinstance(cls, type) and cls in self.user_classes):
            raise TypeError("super(Class, obj) takes a class defined in fnbox functions: use super() in its methods")
        return super(cls, *obj)

    @staticmethod
    def getiter(obj: Any) -> Iterator[Any]:
        if type(obj) is LongRange:
            return iter(obj._range)  # a for-loop or comprehension: it checks the deadline itself
        return iter(obj)

    def iter_builtin(self, obj: Any, *sentinel: Any) -> Iterator[Any]:
        if sentinel:  # iter(callable, sentinel) may call a C function forever
            return self.ticking(iter(obj, *sentinel))
        return iter(obj)


class ClassMaker:
    """The metaclass of every `class` statement: it remembers the class, so its instances may be written.

    It makes the class with the metaclass its bases call for (Enum's, NamedTuple's,
    TypedDict's...), asking that metaclass for the namespace first, as `class` does.
    """

    __slots__ = ("user_classes",)

    def __init__(self, user_classes: weakref.WeakSet[type]) -> None:
        self.user_classes = user_classes

    def __prepare__(self, name: str, bases: tuple[Any, ...], **kwargs: Any) -> Any:
        return _metaclass_of(bases).__prepare__(name, bases, **kwargs)

    def __call__(self, name: str, bases: tuple[Any, ...], namespace: Any, **kwargs: Any) -> type:
        cls = _metaclass_of(bases)(name, bases, namespace, **kwargs)
        if issubclass(cls, _VALUE_TYPES):
            for klass in cls.__mro__:
                if klass is cls or klass in self.user_classes:
                    redefined = _SIZE_READ_METHODS.intersection(vars(klass))
                    if redefined:
                        raise TypeError(
                            f"class {name!r} subclasses a built-in type and redefines {', '.join(sorted(redefined))}, "
                            "which the size checks read: wrap the value in an attribute instead of subclassing"
                        )
        self.user_classes.add(cls)
        return cls


#: Built-in types the size checks measure (length, bits, comparisons) before C code uses them.
_VALUE_TYPES = (int, float, complex, str, bytes, bytearray, list, tuple, deque, Decimal, Fraction)
#: What a subclass of one of them may not redefine: the checks would read the lie, C the real value.
_SIZE_READ_METHODS = frozenset(
    [
        "__len__",
        "__index__",
        "__int__",
        "__float__",
        "__mul__",
        "__rmul__",
        "__imul__",
        "__pow__",
        "__rpow__",
        "__ipow__",
        "__lshift__",
        "__rlshift__",
        "__ilshift__",
        "__mod__",
        "__rmod__",
        "__imod__",
        "__lt__",
        "__le__",
        "__gt__",
        "__ge__",
        "__eq__",
        "__ne__",
        "__add__",
        "__radd__",
        "__iadd__",
        "__bool__",
        "__abs__",
        "__neg__",
        "bit_length",
        "count",
        "find",
        "index",
    ]
)


def _metaclass_of(bases: tuple[Any, ...]) -> type:
    winner: type = type
    for base in bases:
        kind = type(base)
        if issubclass(winner, kind):
            continue
        if issubclass(kind, winner):
            winner = kind
            continue
        raise TypeError("metaclass conflict: the bases of this class have unrelated metaclasses")
    return winner


def _is_or_subclasses(obj: Any, types: type | tuple[type, ...]) -> bool:
    return isinstance(obj, types) or (isinstance(obj, type) and issubclass(obj, types))


#: The in-place operators `x op= y` compiles to (see policy.INPLACE_GUARDS); the guarded
#: ones are bound per sandbox.
PLAIN_INPLACE = {
    "_iadd_": operator.iadd,
    "_isub_": operator.isub,
    "_itruediv_": operator.itruediv,
    "_ifloordiv_": operator.ifloordiv,
    "_irshift_": operator.irshift,
    "_ior_": operator.ior,
    "_ixor_": operator.ixor,
    "_iand_": operator.iand,
    "_imatmul_": operator.imatmul,
}
