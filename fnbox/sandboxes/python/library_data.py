"""Vetted members of the standard-library modules for data: records, types, containers, files in memory.

Each builder returns a module's members for one sandbox. A member that writes to what it
is given is limited to what user code may write itself (its own classes and functions);
one that sizes its result by an argument checks the size first. What is left out, and
why, is in LEFT_OUT (the README and the tests read it from there).
"""

from __future__ import annotations

import bisect
import calendar
import copy
import csv
import dataclasses
import enum
import functools
import heapq
import hmac
import importlib.resources
import io
import operator
import re
import secrets
import types
import typing
import zoneinfo
from collections.abc import Callable
from typing import Any

from fnbox.sandboxes.python.guards import Guards
from fnbox.sandboxes.python.sizes import MAX_INT_BITS, too_big

#: Entries a functools cache may hold: `cache` and `lru_cache(maxsize=None)` get this bound.
MAX_CACHE_ENTRIES = 65_536

_OPERATOR_PLAIN = (
    "abs add and_ concat contains countOf eq floordiv ge getitem gt iadd iand iconcat ifloordiv index indexOf "
    "inv invert ior irshift is_ is_not isub itemgetter itruediv ixor le length_hint lt matmul ne neg not_ or_ "
    "pos rshift sub truediv truth xor"
)
_TYPING = (
    "Annotated Any AnyStr Callable ClassVar Collection Concatenate Container DefaultDict Deque Dict Final "
    "FrozenSet Generator Generic Hashable ItemsView Iterable Iterator KeysView List Literal LiteralString "
    "Mapping MappingView MutableMapping MutableSequence MutableSet NamedTuple Never NewType NoReturn "
    "NotRequired Optional OrderedDict ParamSpec Protocol Required Reversible Self Sequence Set Sized "
    "SupportsAbs SupportsFloat SupportsIndex SupportsInt SupportsRound Text Tuple Type TypeAlias TypeGuard "
    "TypeVar TypedDict Union Unpack ValuesView TYPE_CHECKING assert_never assert_type cast get_args get_origin"
)
_ENUM = "Enum IntEnum StrEnum Flag IntFlag auto unique member nonmember EnumCheck FlagBoundary"
_DATACLASSES = "field fields asdict astuple replace is_dataclass FrozenInstanceError InitVar MISSING KW_ONLY"
_CSV = (
    "reader writer DictReader DictWriter Dialect excel excel_tab unix_dialect Error get_dialect list_dialects "
    "QUOTE_ALL QUOTE_MINIMAL QUOTE_NONE QUOTE_NONNUMERIC"
)
_CALENDAR = (
    "isleap leapdays weekday monthrange monthcalendar timegm Calendar IllegalMonthError IllegalWeekdayError "
    "MONDAY TUESDAY WEDNESDAY THURSDAY FRIDAY SATURDAY SUNDAY"
)
_ZONE_KEY = re.compile(r"^[A-Za-z0-9_+-]+(?:/[A-Za-z0-9_+-]+){0,2}$")

#: Members of the modules here that fnbox leaves out, and why each is dangerous.
LEFT_OUT: dict[str, dict[str, str]] = {
    "operator": {
        "attrgetter": "walks attributes by name past the attribute guard ('__class__.__subclasses__')",
        "methodcaller": "calls any method by name past the attribute guard",
        "setitem": "replaced: a write that checks the target as `obj[k] = v` does",
        "delitem": "replaced: a delete that checks the target as `del obj[k]` does",
    },
    "functools": {
        "update_wrapper": "it writes attributes onto the wrapper, which may be a function every workspace shares; use wraps()",
        "singledispatch": "dispatches on a class's MRO walked outside the guards; not vetted",
    },
    "typing": {
        "get_type_hints": "evaluates string annotations with eval()",
        "final": "writes an attribute onto whatever it is given, host functions included",
        "overload": "fills a registry every workspace of the process shares",
        "runtime_checkable": "writes an attribute onto the class it is given",
        "no_type_check": "writes attributes onto whatever it is given",
        "dataclass_transform": "writes an attribute onto whatever it is given",
        "reveal_type": "writes to the worker's stderr",
    },
    "enum": {
        "global_enum": "writes the members into the defining module's globals through sys.modules",
        "EnumType": "a metaclass: classes made with it are not seen by the write guard",
    },
    "dataclasses": {
        "make_dataclass": "makes classes the write guard does not know; write a class statement instead",
    },
    "copy": {},
    "csv": {
        "field_size_limit": "sets a limit every workspace of the process shares",
        "register_dialect": "fills a registry every workspace of the process shares",
        "unregister_dialect": "empties a registry every workspace of the process shares",
        "Sniffer": "runs regular expressions built from the sample; not vetted",
    },
    "io": {
        "open": "opens files",
        "FileIO": "opens files",
        "TextIOWrapper": "wraps file descriptors",
        "BytesIO.getbuffer": "a memoryview, which fnbox functions do not get; use getvalue()",
    },
    "calendar": {
        "setfirstweekday": "sets the first weekday every workspace of the process shares",
        "month": "text calendars size their output by width arguments; use monthcalendar",
        "TextCalendar": "text calendars size their output by width arguments; use monthcalendar",
        "HTMLCalendar": "text calendars size their output by width arguments; use monthcalendar",
    },
    "zoneinfo": {
        "reset_tzpath": "changes where every workspace's time zones are read from",
        "TZPATH": "paths of the worker's file system",
    },
    "secrets": {"SystemRandom": "its choices()/sample() size their result without the sandbox's checks"},
    "hmac": {},
    "heapq": {},
    "bisect": {},
}


def _pick(module: Any, names: str) -> dict[str, Any]:
    return {name: getattr(module, name) for name in names.split() if hasattr(module, name)}


def _user_class(guards: Guards, cls: Any, what: str) -> None:
    if not (isinstance(cls, type) and cls in guards.user_classes):
        raise TypeError(f"{what} applies only to classes defined in fnbox functions")


def _user_function(guards: Guards, function: Any, what: str) -> None:
    if not (isinstance(function, types.FunctionType) and function.__globals__ is guards.ns):
        raise TypeError(f"{what} applies only to functions defined in fnbox functions")


def build_operator(guards: Guards) -> dict[str, Any]:
    sizes = guards.sizes
    members = _pick(operator, _OPERATOR_PLAIN)

    def setitem(obj: Any, key: Any, value: Any) -> None:
        guards.write(obj)[key] = value

    def delitem(obj: Any, key: Any) -> None:
        del guards.write(obj)[key]

    members.update(
        mul=sizes.mul,
        imul=sizes.imul,
        pow=sizes.pow,
        ipow=sizes.pow,
        lshift=sizes.lshift,
        ilshift=sizes.lshift,
        mod=sizes.mod,
        imod=sizes.mod,
        setitem=setitem,
        delitem=delitem,
    )
    return members


def build_functools(guards: Guards) -> dict[str, Any]:
    def lru_cache(maxsize: Any = 128, typed: bool = False) -> Any:
        if callable(maxsize) and not isinstance(maxsize, bool):  # @lru_cache without arguments
            return functools.lru_cache(maxsize=128)(maxsize)
        if maxsize is None or (isinstance(maxsize, int) and maxsize > MAX_CACHE_ENTRIES):
            maxsize = MAX_CACHE_ENTRIES
        return functools.lru_cache(maxsize=maxsize, typed=typed)

    def cache(function: Callable[..., Any]) -> Any:
        return functools.lru_cache(maxsize=MAX_CACHE_ENTRIES)(function)

    def wraps(wrapped: Any, assigned: Any = functools.WRAPPER_ASSIGNMENTS, updated: Any = ()) -> Any:
        def decorate(wrapper: Any) -> Any:
            _user_function(guards, wrapper, "functools.wraps()")
            return functools.update_wrapper(wrapper, wrapped, assigned, ())

        return decorate

    def total_ordering(cls: Any) -> Any:
        _user_class(guards, cls, "functools.total_ordering()")
        return functools.total_ordering(cls)

    members = _pick(functools, "reduce partial partialmethod cmp_to_key cached_property")
    members.update(lru_cache=lru_cache, cache=cache, wraps=wraps, total_ordering=total_ordering)
    return members


def build_copy(guards: Guards) -> dict[str, Any]:
    # User classes cannot define __reduce_ex__, __deepcopy__ and the like (policy.py): the
    # copy protocol's state would be written onto any object they return.
    return {"copy": copy.copy, "deepcopy": copy.deepcopy, "Error": copy.Error}


def build_heapq(guards: Guards) -> dict[str, Any]:
    return _pick(heapq, "heappush heappop heapify heapreplace heappushpop nlargest nsmallest merge")


def build_bisect(guards: Guards) -> dict[str, Any]:
    return _pick(bisect, "bisect bisect_left bisect_right insort insort_left insort_right")


def build_typing(guards: Guards) -> dict[str, Any]:
    return _pick(typing, _TYPING)


def build_enum(guards: Guards) -> dict[str, Any]:
    return _pick(enum, _ENUM)


def build_dataclasses(guards: Guards) -> dict[str, Any]:
    def dataclass(cls: Any = None, /, **kwargs: Any) -> Any:
        def wrap(cls: Any) -> Any:
            _user_class(guards, cls, "@dataclass")
            quoted = [name for name, kind in vars(cls).get("__annotations__", {}).items() if isinstance(kind, str)]
            if quoted:  # dataclasses would look them up in the module the class comes from, which has none
                raise TypeError(
                    f"@dataclass field {quoted[0]!r} has a quoted annotation: write the type itself (x: int, not x: 'int')"
                )
            made = dataclasses.dataclass(cls, **kwargs)
            guards.user_classes.add(made)  # slots=True makes a new class
            return made

        return wrap if cls is None else wrap(cls)

    members = _pick(dataclasses, _DATACLASSES)
    members["dataclass"] = dataclass
    return members


def build_hmac(guards: Guards) -> dict[str, Any]:
    return _pick(hmac, "new compare_digest digest HMAC")


def build_secrets(guards: Guards) -> dict[str, Any]:
    items = guards.budget

    def token_bytes(nbytes: Any = None) -> bytes:
        if isinstance(nbytes, int) and nbytes > items.items:
            raise too_big("secrets.token_bytes()", nbytes, items.items)
        return secrets.token_bytes(nbytes)

    def token_hex(nbytes: Any = None) -> str:
        return token_bytes(nbytes).hex()

    def token_urlsafe(nbytes: Any = None) -> str:
        if isinstance(nbytes, int) and nbytes > items.items:
            raise too_big("secrets.token_urlsafe()", nbytes, items.items)
        return secrets.token_urlsafe(nbytes)

    def randbits(k: int) -> int:
        if isinstance(k, int) and k > MAX_INT_BITS:
            raise too_big("secrets.randbits()", k, MAX_INT_BITS, "bits")
        return secrets.randbits(k)

    def randbelow(n: int) -> int:
        if isinstance(n, int) and n.bit_length() > MAX_INT_BITS:
            raise too_big("secrets.randbelow()", n.bit_length(), MAX_INT_BITS, "bits")
        return secrets.randbelow(n)

    return {
        "token_bytes": token_bytes,
        "token_hex": token_hex,
        "token_urlsafe": token_urlsafe,
        "randbits": randbits,
        "randbelow": randbelow,
        "choice": secrets.choice,
        "compare_digest": secrets.compare_digest,
    }


def build_io(guards: Guards) -> dict[str, Any]:
    """In-memory files; seeking past the budget is refused (a write there would fill the gap)."""
    items = guards.budget

    def check(what: str, position: Any) -> None:
        if isinstance(position, int) and position > items.items:
            raise too_big(what, position, items.items)

    class StringIO(io.StringIO):
        def seek(self, pos: int, whence: int = 0, /) -> int:
            check("StringIO.seek()", pos)
            return super().seek(pos, whence)

        def write(self, text: str, /) -> int:
            # csv's writerows() writes from C, row after row, with no deadline check between.
            if isinstance(text, str):
                check("this StringIO", self.tell() + len(text))
            return super().write(text)

    class BytesIO(io.BytesIO):
        def seek(self, pos: int, whence: int = 0, /) -> int:
            check("BytesIO.seek()", pos)
            return super().seek(pos, whence)

        def write(self, data: Any, /) -> int:
            if isinstance(data, (bytes, bytearray)):
                check("this BytesIO", self.tell() + len(data))
            return super().write(data)

        def truncate(self, size: Any = None, /) -> int:
            check("BytesIO.truncate()", size)
            return super().truncate(size)

        def getbuffer(self) -> memoryview:
            raise TypeError("BytesIO.getbuffer() is not available in fnbox functions: use getvalue()")

    StringIO.__module__ = BytesIO.__module__ = "io"
    return {"StringIO": StringIO, "BytesIO": BytesIO, "SEEK_SET": 0, "SEEK_CUR": 1, "SEEK_END": 2}


def build_csv(guards: Guards) -> dict[str, Any]:
    # Fields are capped by csv's own field_size_limit (131,072 characters), which user code cannot change.
    return _pick(csv, _CSV)


def build_calendar(guards: Guards) -> dict[str, Any]:
    members = _pick(calendar, _CALENDAR)
    members.update(
        day_name=list(calendar.day_name),
        day_abbr=list(calendar.day_abbr),
        month_name=list(calendar.month_name),
        month_abbr=list(calendar.month_abbr),
    )
    return members


@functools.cache
def zone_keys() -> frozenset[str]:
    """The time zones of the tzdata package: the same on every machine."""
    return frozenset(importlib.resources.files("tzdata").joinpath("zones").read_text().split())


def check_zone_key(key: Any) -> str:
    if not isinstance(key, str):
        raise TypeError("a time zone key must be a str such as 'Europe/Paris'")
    if not _ZONE_KEY.match(key) or key not in zone_keys():
        shown = key if len(key) <= 64 else key[:64] + "..."
        raise zoneinfo.ZoneInfoNotFoundError(f"no time zone {shown!r}: use an IANA key such as 'Europe/Paris' or 'UTC'")
    return key


def build_zoneinfo(guards: Guards) -> dict[str, Any]:
    from fnbox.sandboxes.python.sizes import GuardedType

    def make(key: Any) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(check_zone_key(key))

    def available_timezones() -> set[str]:
        return set(zone_keys())

    return {
        # No class methods reach user code: from_file, no_cache and clear_cache are the class's.
        "ZoneInfo": GuardedType(zoneinfo.ZoneInfo, make, "zoneinfo.ZoneInfo", members=()),
        "ZoneInfoNotFoundError": zoneinfo.ZoneInfoNotFoundError,
        "available_timezones": available_timezones,
    }


#: The builders of this module, by module name.
BUILDERS: dict[str, Callable[[Guards], dict[str, Any]]] = {
    "bisect": build_bisect,
    "calendar": build_calendar,
    "copy": build_copy,
    "csv": build_csv,
    "dataclasses": build_dataclasses,
    "enum": build_enum,
    "functools": build_functools,
    "heapq": build_heapq,
    "hmac": build_hmac,
    "io": build_io,
    "operator": build_operator,
    "secrets": build_secrets,
    "typing": build_typing,
    "zoneinfo": build_zoneinfo,
}
