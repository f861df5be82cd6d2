"""The modules a function may import, each as a read-only proxy of vetted members.

A real module object is never handed out: most stdlib modules hold others (`uuid.os`,
`random._os`, `json.decoder`, `base64.binascii`), and `from pkg import name` falls back
to `sys.modules["pkg.name"]` when the module has a `__name__`. A proxy has neither: it
answers its vetted members and nothing else (no `__name__`, no `__dict__`, no writes).

Members that allocate or loop by an argument (`random.choices(k=...)`, `math.factorial`,
`itertools.count`, `time.sleep`...) are wrapped with a size or deadline check.
`inspect`, `gc`, `importlib`, `pickle`, `os`, `sys`... are not vetted: each is a known
way out (attribute walks, frames, code objects, files). The modules for data and text
are built in library_data.py and library_text.py; what each leaves out is in LEFT_OUT.
"""

from __future__ import annotations

import base64
import collections
import contextlib
import datetime
import decimal
import hashlib
import importlib
import itertools
import json
import math
import os
import random
import re
import statistics
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterable
from fractions import Fraction
from typing import Any

from fnbox.sandboxes.python import library_data, library_http, library_text, turns
from fnbox.sandboxes.python.guards import Deadline, Guards
from fnbox.sandboxes.python.sizes import MAX_INT_BITS, GuardedType, decimal_context, int_bits, too_big

#: Digits of precision a decimal.localcontext() may ask for.
MAX_DECIMAL_PRECISION = 1000

#: Every module fnbox has vetted; the default allow-list. A name outside it cannot be
#: allowed by configuration.
ALLOWED_MODULES: tuple[str, ...] = (
    "base64",
    "bisect",
    "calendar",
    "collections",
    "copy",
    "csv",
    "dataclasses",
    "datetime",
    "decimal",
    "difflib",
    "enum",
    "fractions",
    "functools",
    "hashlib",
    "heapq",
    "hmac",
    "html",
    "io",
    "itertools",
    "json",
    "math",
    "operator",
    "pprint",
    "random",
    "re",
    "requests",
    "secrets",
    "statistics",
    "string",
    "textwrap",
    "time",
    "typing",
    "unicodedata",
    "urllib.error",
    "urllib.parse",
    "urllib.request",
    "uuid",
    "zoneinfo",
)
#: Modules host C code imports through the importing frame's `__import__` (datetime.strptime
#: imports `_strptime`, datetime.timetuple() `time`): they get the real module, and user code
#: never sees it (its own imports are checked when it is saved).
HOST_IMPORTS = frozenset({"_strptime", "time"})
_BUILDERS = {**library_data.BUILDERS, **library_text.BUILDERS, **library_http.BUILDERS}

#: Members of the older vetted modules that are left out, and why each is dangerous.
LEFT_OUT: dict[str, dict[str, str]] = {
    "random": {"SystemRandom": "its choices()/sample() size their result without the sandbox's checks"},
    "decimal": {
        "getcontext": "the thread's context: setting its precision or exponent range lifts the size limits",
        "setcontext": "the thread's context: setting its precision or exponent range lifts the size limits",
        "Context": "a context sets precision and exponent range past the size limits; use localcontext(prec=...)",
    },
    "hashlib": {
        "shake_128": "hexdigest(length) allocates any size",
        "shake_256": "hexdigest(length) allocates any size",
    },
    "uuid": {"uuid1": "reads the MAC address, possibly by running ifconfig"},
    "datetime": {},
    "json": {"JSONDecoder": "cls= hooks are not vetted", "JSONEncoder": "cls= hooks are not vetted"},
    **library_data.LEFT_OUT,
    **library_text.LEFT_OUT,
    **library_http.LEFT_OUT,
}
#: Seconds of one slice of `time.sleep` in user code.
SLEEP_SLICE = 0.05

_MATH = (
    "acos acosh asin asinh atan atan2 atanh cbrt ceil copysign cos cosh degrees dist e erf erfc exp exp2 "
    "expm1 fabs floor fmod frexp fsum gamma gcd hypot inf isclose isfinite isinf isnan isqrt ldexp lgamma "
    "log log10 log1p log2 modf nan nextafter pi pow radians remainder sin sinh sqrt tan tanh tau trunc ulp"
)
_RE = (
    "compile search match fullmatch split findall finditer escape error Pattern Match "
    "A ASCII I IGNORECASE L LOCALE M MULTILINE NOFLAG S DOTALL U UNICODE X VERBOSE"
)
_DATETIME = "date time datetime timedelta timezone tzinfo MINYEAR MAXYEAR UTC"
_TIME = (
    "time time_ns monotonic monotonic_ns perf_counter perf_counter_ns process_time process_time_ns "
    "gmtime localtime mktime strftime strptime asctime ctime struct_time timezone altzone daylight tzname"
)
_RANDOM = (
    "random uniform triangular randint randrange choice shuffle seed gauss normalvariate lognormvariate "
    "expovariate vonmisesvariate gammavariate betavariate paretovariate weibullvariate"
)
_HASHES = "md5 sha1 sha224 sha256 sha384 sha512 sha3_224 sha3_256 sha3_384 sha3_512 blake2b blake2s"
_BASE64 = (
    "b64encode b64decode standard_b64encode standard_b64decode urlsafe_b64encode urlsafe_b64decode "
    "b32encode b32decode b32hexencode b32hexdecode b16encode b16decode a85encode a85decode "
    "b85encode b85decode encodebytes decodebytes"
)
_ITERTOOLS_PLAIN = (
    "accumulate chain compress dropwhile filterfalse groupby islice pairwise starmap takewhile tee zip_longest"
)
#: itertools members that can run forever or explode combinatorially inside C.
_ITERTOOLS_TICKING = "count cycle repeat product permutations combinations combinations_with_replacement"
#: Decimal itself is a GuardedType; contexts (which set precision and exponent range) are left out.
_DECIMAL = (
    "ROUND_05UP ROUND_CEILING ROUND_DOWN ROUND_FLOOR ROUND_HALF_DOWN ROUND_HALF_EVEN ROUND_HALF_UP ROUND_UP "
    "Clamped DecimalException DivisionByZero FloatOperation Inexact InvalidOperation Overflow Rounded "
    "Subnormal Underflow"
)
_COLLECTIONS = "Counter OrderedDict defaultdict deque ChainMap"
_STATISTICS = (
    "mean fmean geometric_mean harmonic_mean median median_low median_high median_grouped mode multimode "
    "pstdev pvariance stdev variance correlation covariance linear_regression NormalDist StatisticsError"
)
_URLLIB_PARSE = (
    "quote quote_plus quote_from_bytes unquote unquote_plus unquote_to_bytes urlencode urlparse urlunparse "
    "urlsplit urlunsplit urljoin urldefrag parse_qs parse_qsl"
)


def _pick(module: Any, names: str) -> dict[str, Any]:
    return {name: getattr(module, name) for name in names.split() if hasattr(module, name)}


def make_proxy(
    name: str, members: dict[str, Any], description: str = "", left_out: dict[str, str] | None = None
) -> Any:
    """A read-only object answering `members` and nothing else; `left_out` says why a member is not there."""
    members = dict(members)
    description = description or f"<module {name!r}>"
    reasons = dict(left_out or {})

    class Module:
        __slots__ = ()

        def __getattr__(self, attr: str) -> Any:
            try:
                return members[attr]
            except KeyError:
                why = reasons.get(attr)
                message = f"module {name!r} has no member {attr!r} in fnbox functions"
                raise AttributeError(message + (f": {why}" if why else "")) from None

        def __copy__(self) -> Any:
            return self

        def __deepcopy__(self, memo: Any) -> Any:
            return self

        def __repr__(self) -> str:
            return description

        def __dir__(self) -> list[str]:
            return sorted(members)

    Module.__name__ = Module.__qualname__ = f"{name} module"
    return Module()


class Modules:
    """Builds one sandbox's module proxies on first import and serves `import` statements."""

    # copy.deepcopy() of a bound guard (`copy.deepcopy(getattr)`) must not clone the sandbox's state.
    def __copy__(self) -> Any:
        return self

    def __deepcopy__(self, memo: Any) -> Any:
        return self

    def __init__(self, guards: Guards, allowed: frozenset[str]) -> None:
        self.guards = guards
        self.allowed = allowed
        self.importable = allowed | {name.rpartition(".")[0] for name in allowed if "." in name}
        self._proxies: dict[str, Any] = {}

    def import_(self, name: str, globals: Any = None, locals: Any = None, fromlist: Any = (), level: int = 0) -> Any:
        """`__import__` of the sandbox: proxies of allowed modules only."""
        if level != 0:
            raise ImportError("relative imports are not allowed in fnbox functions")
        if name in HOST_IMPORTS and name not in self.importable:
            return importlib.import_module(name)
        if name not in self.importable:
            allowed = ", ".join(sorted(self.allowed)) or "none"
            raise ImportError(f"import of {name!r} is not allowed (allowed modules: {allowed})")
        if fromlist:
            proxy = self.proxy(name)
            for member in fromlist:
                if member != "*" and not hasattr(proxy, member):  # else Python says "from '<unknown module name>'"
                    raise ImportError(f"cannot import name {member!r} from {name!r} in fnbox functions")
            return proxy
        return self.proxy(name.partition(".")[0])  # `import urllib.parse` binds `urllib`

    def proxy(self, name: str) -> Any:
        proxy = self._proxies.get(name)
        if proxy is None:
            if name in _BUILDERS and name in self.allowed:
                members = _BUILDERS[name](self.guards)
            elif name in self.allowed:
                members = getattr(self, "_" + name.replace(".", "_"))()
            else:  # a package of allowed modules, such as urllib
                prefix = name + "."
                members = {n[len(prefix) :]: self.proxy(n) for n in self.allowed if n.startswith(prefix)}
            proxy = self._proxies[name] = make_proxy(name, members, left_out=LEFT_OUT.get(name))
        return proxy

    # One builder per vetted module.

    def _math(self) -> dict[str, Any]:
        members = _pick(math, _MATH)
        members.update(factorial=self._factorial, comb=self._comb, perm=self._perm, prod=self._prod, lcm=self._lcm)
        return members

    def _json(self) -> dict[str, Any]:
        return {"dumps": self._json_dumps, "loads": self._json_loads, "JSONDecodeError": json.JSONDecodeError}

    def _re(self) -> dict[str, Any]:
        members = _pick(re, _RE)
        members.update(sub=self.guards.sizes.module_sub(re.sub), subn=self.guards.sizes.module_sub(re.subn))
        return members

    def _datetime(self) -> dict[str, Any]:
        return _pick(datetime, _DATETIME)

    def _time(self) -> dict[str, Any]:
        members = _pick(time, _TIME)
        members["sleep"] = self._sleep
        return members

    def _random(self) -> dict[str, Any]:
        # Its own generator: seeding it must not touch other workspaces' random numbers.
        rng = random.Random(os.urandom(32))
        members = _pick(rng, _RANDOM)
        items = self.guards.budget

        def choices(population: Any, weights: Any = None, *, cum_weights: Any = None, k: int = 1) -> list[Any]:
            if k > items.items:
                raise too_big("random.choices()", k, items.items)
            return rng.choices(population, weights, cum_weights=cum_weights, k=k)

        def sample(population: Any, k: int, *, counts: Any = None) -> list[Any]:
            if k > items.items:
                raise too_big("random.sample()", k, items.items)
            return rng.sample(population, k, counts=counts)

        def getrandbits(k: int) -> int:
            if k > MAX_INT_BITS:
                raise too_big("random.getrandbits()", k, MAX_INT_BITS, "bits")
            return rng.getrandbits(k)

        def randbytes(n: int) -> bytes:
            if n > items.items:
                raise too_big("random.randbytes()", n, items.items)
            return rng.randbytes(n)

        members.update(choices=choices, sample=sample, getrandbits=getrandbits, randbytes=randbytes)
        members["Random"] = self._random_class()
        return members

    def _random_class(self) -> type:
        """random.Random for seeded generators, with the module's size checks."""
        items = self.guards.budget

        class Random(random.Random):
            def choices(self, population: Any, weights: Any = None, *, cum_weights: Any = None, k: int = 1) -> Any:
                if k > items.items:
                    raise too_big("Random.choices()", k, items.items)
                return super().choices(population, weights, cum_weights=cum_weights, k=k)

            def sample(self, population: Any, k: int, *, counts: Any = None) -> list[Any]:
                if k > items.items:
                    raise too_big("Random.sample()", k, items.items)
                return super().sample(population, k, counts=counts)

            def getrandbits(self, k: int) -> int:
                if k > MAX_INT_BITS:
                    raise too_big("Random.getrandbits()", k, MAX_INT_BITS, "bits")
                return super().getrandbits(k)

            def randbytes(self, n: int) -> bytes:
                if n > items.items:
                    raise too_big("Random.randbytes()", n, items.items)
                return super().randbytes(n)

        Random.__module__ = "random"
        return Random

    def _hashlib(self) -> dict[str, Any]:
        members = _pick(hashlib, _HASHES)
        # shake_* are left out: their hexdigest(length) would allocate any size.

        def new(name: str, data: bytes = b"", **kwargs: Any) -> Any:
            if name not in members:
                raise ValueError(f"unsupported hash type {name!r} in fnbox functions")
            return members[name](data, **kwargs)

        members.update(new=new, algorithms_guaranteed=frozenset(n for n in members if n != "new"))
        return members

    def _base64(self) -> dict[str, Any]:
        return _pick(base64, _BASE64)

    def _itertools(self) -> dict[str, Any]:
        members = _pick(itertools, _ITERTOOLS_PLAIN)
        ticking = self.guards.ticking
        for name in _ITERTOOLS_TICKING.split():
            members[name] = _ticking_factory(getattr(itertools, name), ticking)
        return members

    def _collections(self) -> dict[str, Any]:
        members = _pick(collections, _COLLECTIONS)

        def namedtuple(typename: str, field_names: Any, **kwargs: Any) -> type:
            fields = field_names.replace(",", " ").split() if isinstance(field_names, str) else list(field_names)
            if len(fields) > 1000:
                raise too_big("namedtuple()", len(fields), 1000, "fields")
            return collections.namedtuple(typename, fields, **kwargs)

        members["namedtuple"] = namedtuple
        return members

    def _statistics(self) -> dict[str, Any]:
        members = _pick(statistics, _STATISTICS)
        items = self.guards.budget

        def quantiles(data: Iterable[Any], *, n: int = 4, method: Any = "exclusive") -> list[float]:
            if n > items.items:
                raise too_big("statistics.quantiles()", n, items.items)
            return statistics.quantiles(data, n=n, method=method)

        members["quantiles"] = quantiles
        return members

    def _decimal(self) -> dict[str, Any]:
        members = _pick(decimal, _DECIMAL)
        members["Decimal"] = GuardedType(decimal.Decimal, self.guards.sizes.decimal_builtin, "decimal.Decimal")
        members["localcontext"] = localcontext
        return members

    def _fractions(self) -> dict[str, Any]:
        return {"Fraction": GuardedType(Fraction, self.guards.sizes.fraction_builtin, "fractions.Fraction")}

    def _uuid(self) -> dict[str, Any]:
        # uuid1 is left out: it reads the MAC address, possibly by running ifconfig.
        return _pick(uuid, "uuid3 uuid4 uuid5 UUID NAMESPACE_DNS NAMESPACE_URL NAMESPACE_OID NAMESPACE_X500")

    def _urllib_parse(self) -> dict[str, Any]:
        return _pick(urllib.parse, _URLLIB_PARSE)

    # Wrapped members.

    def _sleep(self, seconds: float) -> None:
        """Sleeps at most until the deadline, then stops the run.

        In slices, reading the deadline after each: a cancelled run's deadline moves to now.
        """
        if not isinstance(seconds, (int, float)) or not seconds >= 0:
            time.sleep(seconds)  # refused as time.sleep refuses it
        run = turns.current()
        if run is None or not run.has_turn or seconds == 0:  # sleep(0) yields nothing worth a turn
            ns = self.guards.ns
            _sleep_until(time.perf_counter() + min(seconds, 1e9), lambda: ns["_deadline_"])
            return
        with run.waiting():  # the other runs of the sandbox go on meanwhile
            _sleep_until(time.perf_counter() + min(seconds, 1e9), lambda: run.deadline)

    def _check_bits(self, what: str, bits: float) -> None:
        if bits > MAX_INT_BITS:
            raise too_big(what, int(bits), MAX_INT_BITS, "bits")

    def _factorial(self, n: int) -> int:
        if isinstance(n, int) and n > 2:
            self._check_bits("math.factorial()", n * math.log2(n))
        return math.factorial(n)

    def _comb(self, n: int, k: int) -> int:
        if isinstance(n, int) and isinstance(k, int) and 0 < k < n:
            self._check_bits("math.comb()", min(k, n - k) * math.log2(n))
        return math.comb(n, k)

    def _perm(self, n: int, k: int | None = None) -> int:
        if isinstance(n, int) and n > 2:
            self._check_bits("math.perm()", (n if k is None else min(k, n)) * math.log2(n))
        return math.perm(n, k)

    def _prod(self, iterable: Iterable[Any], *, start: Any = 1) -> Any:
        values = list(iterable)
        self._check_bits("math.prod()", int_bits(start) + sum(int_bits(v) for v in values))
        return math.prod(values, start=start)

    def _lcm(self, *integers: int) -> int:
        self._check_bits("math.lcm()", sum(abs(i).bit_length() for i in integers if isinstance(i, int)))
        return math.lcm(*integers)

    def _json_dumps(self, obj: Any, **kwargs: Any) -> str:
        if "cls" in kwargs:
            raise TypeError("json.dumps(cls=...) is not available in fnbox functions")
        indent = kwargs.get("indent")
        if (isinstance(indent, int) and indent > 64) or (isinstance(indent, str) and len(indent) > 64):
            raise ValueError("json.dumps() indent is limited to 64 in fnbox functions")
        separators = kwargs.get("separators")
        if separators is not None and any(len(s) > 16 for s in separators):
            raise ValueError("json.dumps() separators are limited to 16 characters in fnbox functions")
        return json.dumps(obj, **kwargs)

    def _json_loads(self, text: Any, **kwargs: Any) -> Any:
        if "cls" in kwargs:
            raise TypeError("json.loads(cls=...) is not available in fnbox functions")
        return json.loads(text, **kwargs)


def _sleep_until(end: float, deadline: Callable[[], float]) -> None:
    """Sleep until `end` (perf_counter), in slices, reading the deadline after each: a cancel moves it to now."""
    while True:
        step = min(end, deadline()) - time.perf_counter()
        if step <= SLEEP_SLICE:
            break
        time.sleep(SLEEP_SLICE)
    time.sleep(max(step, 0))
    if end >= deadline():
        raise Deadline


def localcontext(ctx: Any = None, **settings: Any) -> contextlib.AbstractContextManager[Any]:
    """decimal.localcontext(prec=..., rounding=...) within the sandbox's limits.

    Only keyword settings: a Context object is not available, and precision and exponent
    range stay within what decimal_context() allows, so no result outgrows the size guards.
    """
    if ctx is not None:
        raise TypeError("decimal.localcontext() takes keyword settings in fnbox functions: localcontext(prec=50)")
    base = decimal_context()
    prec = settings.get("prec", base.prec)
    if not isinstance(prec, int) or not 0 < prec <= MAX_DECIMAL_PRECISION:
        raise ValueError(f"decimal precision is limited to {MAX_DECIMAL_PRECISION} digits in fnbox functions")
    for key in ("Emax", "Emin"):
        value = settings.get(key)
        if value is not None and (not isinstance(value, int) or abs(value) > base.Emax):
            raise ValueError(f"decimal {key} is limited to ±{base.Emax} in fnbox functions")
    unknown = set(settings) - {"prec", "rounding", "Emax", "Emin", "capitals", "clamp"}
    if unknown:
        raise TypeError(f"decimal.localcontext() does not take {', '.join(sorted(unknown))} in fnbox functions")
    return decimal.localcontext(base, **settings)


def _ticking_factory(factory: Callable[..., Any], ticking: Callable[[Any], Any]) -> Callable[..., Any]:
    def make(*args: Any, **kwargs: Any) -> Any:
        return ticking(factory(*args, **kwargs))

    make.__name__ = factory.__name__
    return make
