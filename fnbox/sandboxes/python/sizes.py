"""Size guards: refuse, before allocating, what one C-level step would make too big.

One C-level operation (`'x' * 10**10`, `10**10**8`, `sum(range(10**12))`, `int(hexdigits, 16)`
followed by a division) holds the GIL for seconds to hours, and no deadline check can run
meanwhile. So the operators and builtins that size their result by an argument are
checked first. A refusal is a `TooBig`, a MemoryError (user code may catch it, as it may
catch CPython's own); the sandbox reports an uncaught one as MemoryLimitExceeded. Unlike a
real MemoryError, it allocated nothing, so the sandbox stays warm.
"""

from __future__ import annotations

import math
import operator
import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from decimal import Context, Decimal, DivisionByZero, InvalidOperation, Overflow
from fractions import Fraction
from statistics import NormalDist
from typing import Any

#: Bits an int made by `*`, `**`, `<<`, `int(text, base)`... may have (~79,000 digits):
#: past that one CPython division holds the GIL for a noticeable time.
MAX_INT_BITS = 1 << 18
#: Largest exponent of a Decimal or Fraction literal (int(Decimal('1e999999')) takes ~30 s).
MAX_DECIMAL_EXPONENT = 75_000
#: Work allowed to one pow(base, exp, mod), in digit operations: about 0.15 s (RSA-4096 fits).
MAX_POWMOD_COST = 12_000_000


class Budget:
    """Size limits of the current run, derived from its memory limit."""

    __slots__ = ("items", "range_items")

    def __init__(self) -> None:
        self.set_memory(64 << 20)

    def set_memory(self, memory: int) -> None:
        # A list item costs 8 bytes, a str character 1 to 4: half the budget for one object.
        self.items = min(max(memory // 16, 1 << 20), 1 << 28)
        # An int in a materialised range costs ~36 bytes.
        self.range_items = self.items // 4


class TooBig(MemoryError):
    """A size guard refused an operation before it allocated anything."""


def too_big(what: str, size: int, limit: int, unit: str = "items") -> TooBig:
    return TooBig(f"{what} would have {size:,} {unit}; the limit is {limit:,}")


def int_bits(x: Any) -> float:
    """log2 of an int or Fraction's size, 0 for anything else (floats, Decimals...)."""
    if isinstance(x, int):
        n = x.bit_length()
        return math.log2(abs(x)) if 0 < n <= 64 else float(n)
    if isinstance(x, Fraction):
        return int_bits(x.numerator) + int_bits(x.denominator)
    return 0.0


def _integral(x: Any) -> int | None:
    if isinstance(x, int):
        return int(x)
    if isinstance(x, Fraction) and x.denominator == 1:
        return x.numerator
    return None


class LongRange:
    """A range too long to materialise in one C call.

    User for-loops and comprehensions walk it (`_getiter_` hands them the real iterator:
    their bodies check the deadline); C code that would consume it whole (`list()`,
    `sum()`, `sorted()`, `[*r]`...) gets a MemoryError from `__iter__` instead of holding
    the GIL for minutes.
    """

    __slots__ = ("_limit", "_range")

    def __init__(self, range_: range, limit: int) -> None:
        self._range = range_
        self._limit = limit

    def __iter__(self) -> Iterator[int]:
        raise too_big("using this range whole", len(self), self._limit)

    def __reversed__(self) -> LongRange:
        return LongRange(self._range[::-1], self._limit)

    def __len__(self) -> int:
        return len(self._range)

    def __getitem__(self, index: Any) -> Any:
        item = self._range[index]
        if isinstance(item, range) and len(item) > self._limit:
            return LongRange(item, self._limit)
        return item

    def __contains__(self, value: Any) -> bool:
        return value in self._range

    def __eq__(self, other: Any) -> bool:
        other = other._range if isinstance(other, LongRange) else other
        return self._range == other

    def __hash__(self) -> int:
        return hash(self._range)

    def __repr__(self) -> str:
        return repr(self._range)

    @property
    def start(self) -> int:
        return self._range.start

    @property
    def stop(self) -> int:
        return self._range.stop

    @property
    def step(self) -> int:
        return self._range.step

    def count(self, value: Any) -> int:
        return self._range.count(value)

    def index(self, value: Any) -> int:
        return self._range.index(value)


class GuardedType:
    """Stands in for a host type whose constructor needs a size check.

    It still works with isinstance()/issubclass() and lends the real type's public
    attributes (`Decimal.from_float`), but it cannot be subclassed: a subclass would
    inherit the unchecked constructor.
    """

    __slots__ = ("_make", "_members", "_name", "_types")

    def __init__(
        self,
        types: type | tuple[type, ...],
        make: Callable[..., Any],
        name: str,
        *,
        members: tuple[str, ...] | None = None,
    ) -> None:
        self._types = types
        self._make = make
        self._name = name
        self._members = members  # the attributes of the type it answers; None: every public one

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._make(*args, **kwargs)

    def __instancecheck__(self, obj: Any) -> bool:
        return isinstance(obj, self._types)

    def __subclasscheck__(self, cls: Any) -> bool:
        return issubclass(cls, self._types)

    @property
    def _main_type(self) -> type:  # "_": user code must never reach the real, unchecked type
        return self._types[0] if isinstance(self._types, tuple) else self._types

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or (self._members is not None and name not in self._members):
            raise AttributeError(f"{self._name} has no attribute {name!r} in fnbox functions")
        return getattr(self._main_type, name)

    def __dir__(self) -> list[str]:
        names = dir(self._main_type) if self._members is None else self._members
        return [name for name in names if not name.startswith("_")]

    def __copy__(self) -> GuardedType:
        return self

    def __deepcopy__(self, memo: Any) -> GuardedType:
        return self

    def __mro_entries__(self, bases: tuple[Any, ...]) -> tuple[type, ...]:
        raise TypeError(f"{self._name} cannot be subclassed in fnbox functions")

    def __repr__(self) -> str:
        return f"<class '{self._name}'>"


_PERCENT_STR = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?")
_PERCENT_BYTES = re.compile(rb"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?")
_DIGITS = re.compile(r"\d+")
_EXPONENT = re.compile(r"[eE]\s*([-+]?\d+)")

#: Instance methods whose arguments set the size of what they build.
SIZED_METHODS = frozenset(
    [
        "ljust",
        "rjust",
        "center",
        "zfill",
        "expandtabs",
        "replace",
        "join",
        "translate",
        "to_bytes",
        "sub",
        "subn",
        "expand",
        "samples",
    ]
)
_TEXT = (str, bytes, bytearray)
_SEQUENCES = (str, bytes, bytearray, list, tuple, deque)


class Sizes:
    """The size guards of one sandbox, reading its current budget."""

    # copy.deepcopy() of a bound guard (`copy.deepcopy(getattr)`) must not clone the sandbox's state.
    def __copy__(self) -> Any:
        return self

    def __deepcopy__(self, memo: Any) -> Any:
        return self

    def __init__(self, budget: Budget, check_deadline: Callable[[], None]) -> None:
        self.budget = budget
        self.check_deadline = check_deadline

    def sized_attribute(self, obj: Any, name: str, value: Any) -> Any:
        """`value` (obj.name), wrapped with a size check when its arguments size its result."""
        if name == "from_bytes":
            return self._sized_call(value, self._check_from_bytes)
        if name == "to_bytes" and isinstance(obj, int):
            return self._sized_call(value, self._check_width)
        if name in ("sub", "subn") and isinstance(obj, re.Pattern):
            return self.pattern_sub(value)
        if name == "expand" and isinstance(obj, re.Match):
            return self._sized_call(value, self._expand_check(obj))
        if name == "samples" and isinstance(obj, NormalDist):
            return self._sized_call(value, self._check_width)
        if isinstance(obj, _TEXT):
            if name == "join":
                return self.join_for(obj)
            return self._sized_call(value, self._text_check(obj, name))
        if isinstance(obj, type) and name in SIZED_METHODS:

            def unbound(instance: Any, *args: Any, **kwargs: Any) -> Any:
                """`str.ljust(text, n)`, checked as `text.ljust(n)` is."""
                return self.sized_attribute(instance, name, getattr(instance, name))(*args, **kwargs)

            return unbound
        return value

    # Operators that allocate by their operands.

    def mul(self, a: Any, b: Any) -> Any:
        ta, tb = type(a), type(b)
        if ta is int and tb is int:
            if a.bit_length() + b.bit_length() > MAX_INT_BITS:
                raise too_big("this product", a.bit_length() + b.bit_length(), MAX_INT_BITS, "bits")
            return a * b
        if ta is float or tb is float:
            return a * b
        if isinstance(b, int) and isinstance(a, _SEQUENCES):
            self._check_items("repeating this sequence", len(a) * b)
        elif isinstance(a, int) and isinstance(b, _SEQUENCES):
            self._check_items("repeating this sequence", len(b) * a)
        elif int_bits(a) + int_bits(b) > MAX_INT_BITS:
            raise too_big("this product", int(int_bits(a) + int_bits(b)), MAX_INT_BITS, "bits")
        return a * b

    def imul(self, a: Any, b: Any) -> Any:
        if isinstance(a, (list, bytearray, deque)) and isinstance(b, int):
            self._check_items("repeating this sequence", len(a) * b)
            return operator.imul(a, b)  # in place, as `a *= b` on a list is
        return self.mul(a, b)

    def pow(self, base: Any, exp: Any, mod: Any = None) -> Any:
        if mod is None and type(exp) is int and type(base) in (int, float):  # the common case, cheaply
            if type(base) is float or exp < 2 or base.bit_length() * exp <= MAX_INT_BITS:
                return base**exp
        if mod is not None:
            if isinstance(exp, int) and isinstance(mod, int):
                digits = mod.bit_length() // 30 + 1
                cost = abs(exp).bit_length() * (digits * digits if digits < 70 else digits**1.585)
                if cost > MAX_POWMOD_COST:
                    raise TooBig(
                        f"pow() with a {abs(exp).bit_length():,}-bit exponent and a "
                        f"{mod.bit_length():,}-bit modulus is too expensive"
                    )
            return pow(base, exp, mod)
        power = _integral(exp)
        if power is not None and abs(power) > 1 and not (power < 0 and isinstance(base, int)):
            bits = int_bits(base) * abs(power)
            if bits > MAX_INT_BITS:
                raise too_big("this power", int(bits), MAX_INT_BITS, "bits")
        return base**exp

    def lshift(self, a: Any, b: Any) -> Any:
        if isinstance(a, int) and isinstance(b, int) and a and b > 0 and a.bit_length() + b > MAX_INT_BITS:
            raise too_big("this shift", a.bit_length() + b, MAX_INT_BITS, "bits")
        return a << b

    def mod(self, a: Any, b: Any) -> Any:
        ta = type(a)
        if ta is str or ta is bytes or ta is bytearray:
            self._check_percent(a, b)
        return a % b

    def format_builtin(self, value: Any, spec: str = "", conversion: int = -1) -> str:
        """format() and f-string fields with a spec: refuse widths and precisions past the budget."""
        if conversion == 115:
            value = str(value)
        elif conversion == 114:
            value = repr(value)
        elif conversion == 97:
            value = ascii(value)
        if spec:
            if type(spec) is not str:
                raise TypeError("format spec must be a str")
            for digits in _DIGITS.findall(spec):
                if len(digits) > 9 or int(digits) > self.budget.items:
                    raise too_big("this format spec", int(digits), self.budget.items, "characters")
        return format(value, spec)

    # Size checks.

    def _check_items(self, what: str, size: int) -> None:
        if size > self.budget.items:
            raise too_big(what, size, self.budget.items)

    def _check_percent(self, template: Any, args: Any) -> None:
        pattern = _PERCENT_STR if isinstance(template, str) else _PERCENT_BYTES
        star = False
        for match in pattern.finditer(template):
            for number in match.groups():
                if number in ("*", b"*"):
                    star = True
                elif number and (len(number) > 9 or int(number) > self.budget.items):
                    raise too_big("this % format", int(number), self.budget.items, "characters")
        if star:
            for arg in args if isinstance(args, tuple) else (args,):
                if isinstance(arg, int) and arg > self.budget.items:
                    raise too_big("this % format", arg, self.budget.items, "characters")

    def _sized_call(self, method: Callable[..., Any], check: Callable[..., None] | None) -> Callable[..., Any]:
        if check is None:
            return method

        def sized(*args: Any, **kwargs: Any) -> Any:
            check(*args, **kwargs)
            return method(*args, **kwargs)

        return sized

    def _check_width(self, width: Any = 0, *args: Any, **kwargs: Any) -> None:
        for value in (width, kwargs.get("width"), kwargs.get("length"), kwargs.get("n")):
            if isinstance(value, int) and value > self.budget.items:
                raise too_big("this call", value, self.budget.items)

    def _check_from_bytes(self, data: Any = b"", *args: Any, **kwargs: Any) -> None:
        data = kwargs.get("bytes", data)
        size = len(data) if isinstance(data, (bytes, bytearray, list, tuple)) else None
        if size is None:
            raise TypeError("int.from_bytes() needs bytes, a bytearray, a list or a tuple in fnbox functions")
        if size * 8 > MAX_INT_BITS:
            raise too_big("this int", size * 8, MAX_INT_BITS, "bits")

    def _expand_check(self, match: re.Match[Any]) -> Callable[..., None]:
        def check_expand(template: Any = "", *args: Any, **kwargs: Any) -> None:
            """Each group reference in the template adds at most the whole matched string."""
            if isinstance(template, _TEXT):
                references = template.count("\\") if isinstance(template, str) else template.count(b"\\")
                self._check_items("Match.expand()", len(template) + references * len(match.string))

        return check_expand

    def _text_check(self, text: Any, name: str) -> Callable[..., None] | None:
        if name in ("ljust", "rjust", "center", "zfill"):
            return self._check_width
        if name == "expandtabs":

            def check_tabs(tabsize: Any = 8, **kwargs: Any) -> None:
                tabsize = kwargs.get("tabsize", tabsize)
                if isinstance(tabsize, int):
                    tabs = text.count("\t" if isinstance(text, str) else b"\t")
                    self._check_items("expandtabs()", len(text) + tabs * tabsize)

            return check_tabs
        if name == "replace":

            def check_replace(old: Any = "", new: Any = "", count: Any = -1, *args: Any) -> None:
                if isinstance(old, _TEXT) and isinstance(new, _TEXT) and len(new) > len(old):
                    found = text.count(old) if old else len(text) + 1
                    if isinstance(count, int) and count >= 0:
                        found = min(found, count)
                    self._check_items("replace()", len(text) + found * (len(new) - len(old)))

            return check_replace
        if name == "translate" and isinstance(text, str):

            def check_translate(table: Any = None, *args: Any) -> None:
                values = table.values() if type(table) is dict else table if isinstance(table, (list, tuple)) else None
                if values is None and not isinstance(table, str):
                    raise TypeError("str.translate() needs a dict (see str.maketrans) in fnbox functions")
                longest = max((len(v) for v in values or () if isinstance(v, str)), default=1)
                self._check_items("translate()", len(text) * longest)

            return check_translate
        return None

    def join_for(self, separator: Any) -> Callable[[Iterable[Any]], Any]:
        def join(iterable: Iterable[Any]) -> Any:
            items = list(iterable)
            try:
                size = sum(map(len, items))
            except TypeError:
                return separator.join(items)  # raises the usual error
            self._check_items("join()", size + len(separator) * max(len(items) - 1, 0))
            return separator.join(items)

        return join

    def pattern_sub(self, method: Callable[..., Any]) -> Callable[..., Any]:
        """`pattern.sub(repl, string, count=0)` with a size check."""

        def sub(repl: Any, string: Any, *args: Any, **kwargs: Any) -> Any:
            return method(self.checked_repl(repl, string), string, *args, **kwargs)

        return sub

    def module_sub(self, function: Callable[..., Any]) -> Callable[..., Any]:
        """`re.sub(pattern, repl, string, count=0, flags=0)` with a size check."""

        def sub(pattern: Any, repl: Any, string: Any, *args: Any, **kwargs: Any) -> Any:
            return function(pattern, self.checked_repl(repl, string), string, *args, **kwargs)

        return sub

    def checked_repl(self, repl: Any, string: Any) -> Any:
        """Each match adds at most len(repl) literal characters, and each group reference
        at most len(string) in all (matches do not overlap); a function's output is counted."""
        if isinstance(repl, _TEXT) and isinstance(string, _TEXT):
            references = repl.count("\\") if isinstance(repl, str) else repl.count(b"\\")
            self._check_items("re.sub()", (len(string) + 1) * len(repl) + references * len(string))
            return repl
        if not callable(repl):
            return repl
        total = 0

        def counted(match: Any) -> Any:
            nonlocal total
            out = repl(match)
            if isinstance(out, _TEXT):
                total += len(out)
                self._check_items("re.sub()", total)
            return out

        return counted

    # Builtins that build something sized.

    def range_builtin(self, *args: Any) -> range | LongRange:
        r = range(*args)
        try:
            long = len(r) > self.budget.range_items
        except OverflowError:
            long = True
        return LongRange(r, self.budget.range_items) if long else r

    def int_builtin(self, value: Any = 0, *args: Any, **kwargs: Any) -> int:
        """int(): a text in a power-of-two base escapes CPython's 4,300-digit limit."""
        base = kwargs.get("base", args[0] if args else None)
        if base is not None and isinstance(value, _TEXT) and len(value) * 6 > MAX_INT_BITS:
            raise too_big("int(text, base)", len(value) * 6, MAX_INT_BITS, "bits")
        return int(value, *args, **kwargs)

    def bytes_builtin(self, source: Any = b"", *args: Any) -> bytes:
        if isinstance(source, int):
            self._check_items("bytes()", source)
        return bytes(source, *args)

    def bytearray_builtin(self, source: Any = b"", *args: Any) -> bytearray:
        if isinstance(source, int):
            self._check_items("bytearray()", source)
        return bytearray(source, *args)

    def decimal_builtin(self, value: Any = "0", context: Any = None) -> Decimal:
        if context is not None:
            raise TypeError("decimal contexts are not available in fnbox functions")
        if isinstance(value, str) and len(value) > MAX_DECIMAL_EXPONENT:
            raise too_big("Decimal()", len(value), MAX_DECIMAL_EXPONENT, "characters")
        number = Decimal(value)
        if number.is_finite():
            exponent = number.as_tuple().exponent
            limit = MAX_DECIMAL_EXPONENT
            if not isinstance(exponent, int) or exponent < -limit or number.adjusted() > limit:
                raise TooBig(f"Decimal exponents are limited to ±{MAX_DECIMAL_EXPONENT:,} in fnbox functions")
        return number

    def fraction_builtin(self, numerator: Any = 0, denominator: Any = None) -> Fraction:
        if isinstance(numerator, str):
            if len(numerator) > MAX_DECIMAL_EXPONENT:
                raise too_big("Fraction()", len(numerator), MAX_DECIMAL_EXPONENT, "characters")
            exponent = _EXPONENT.search(numerator)
            if exponent and abs(int(exponent.group(1))) > MAX_DECIMAL_EXPONENT:
                raise TooBig(f"Fraction exponents are limited to ±{MAX_DECIMAL_EXPONENT:,} in fnbox functions")
        if isinstance(numerator, Decimal):
            numerator = self.decimal_builtin(numerator)
        return Fraction(numerator) if denominator is None else Fraction(numerator, denominator)

    def sum_builtin(self, iterable: Iterable[Any], /, start: Any = 0) -> Any:
        if not isinstance(start, (list, tuple)):
            return sum(iterable, start)
        total = start  # concatenation: quadratic in C, so done here with checks
        for item in iterable:
            self.check_deadline()
            total = total + item
            self._check_items("sum()", len(total))
        return total


def decimal_context() -> Context:
    """Arithmetic results stay within what MAX_DECIMAL_EXPONENT allows to construct."""
    return Context(
        prec=28,
        Emax=MAX_DECIMAL_EXPONENT,
        Emin=-MAX_DECIMAL_EXPONENT,
        traps=[InvalidOperation, DivisionByZero, Overflow],
    )
