"""Payloads against what Python functions gained: more modules, special methods, str.format, any parameter name.

Run against a real `fnbox serve` (see conftest.py). Each is contained with a precise
answer, and the neighbours' warm caches survive the ones the sandbox refuses itself.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow  # a real server, worker processes or a subprocess

WALK = "reads an attribute or an item"


@pytest.fixture(autouse=True)
def _neighbours_counted_afresh(service):
    service.check_healthy()


# Special methods that Python or the standard library would call behind the guards' back.

SAVE_REFUSED = [
    (
        "class A:\n    def __reduce_ex__(self, p):\n        return (print, ('x',))\nimport copy\ncopy.deepcopy(A())",
        "__reduce_ex__",
    ),
    ("class A:\n    def __reduce__(self):\n        return (dict, (), {'__class__': 1})", "__reduce__"),
    ("class A:\n    def __deepcopy__(self, memo):\n        return memo", "__deepcopy__"),
    ("class A:\n    def __setstate__(self, state):\n        pass", "__setstate__"),
    ("class A:\n    def __getattr__(self, name):\n        return name", "__getattr__"),
    ("class A:\n    def __getattribute__(self, name):\n        return name", "__getattribute__"),
    ("class A:\n    def __del__(self):\n        while True:\n            pass", "__del__"),
    ("class A:\n    def __index__(self):\n        return 10 ** 12\nreturn 'x' * A()", "__index__"),
    ("class A:\n    def __length_hint__(self):\n        return 10 ** 12", "__length_hint__"),
    ("class A:\n    def __init_subclass__(cls, **kw):\n        pass", "__init_subclass__"),
    ("class A:\n    def __class_getitem__(cls, item):\n        return item", "__class_getitem__"),
    ("class A:\n    def __set_name__(self, owner, name):\n        pass", "__set_name__"),
    ("class A:\n    def __get__(self, obj, owner):\n        return obj", "__get__"),
    ("class A:\n    def __instancecheck__(self, obj):\n        return True", "__instancecheck__"),
    ("class A:\n    def __mro_entries__(self, bases):\n        return ()", "__mro_entries__"),
    # A special method may not reach what a plain one may not.
    ("class A:\n    def __repr__(self):\n        return self.__class__", '"__class__"'),
    ("class A:\n    def __iter__(self):\n        g = (i for i in [1])\n        return iter([g.gi_frame])", "gi_frame"),
    ("class A:\n    def __call__(self):\n        return self.__dict__", '"__dict__"'),
    ("class A(dict):\n    def keys(self):\n        return super().__class__", '"__class__"'),
    ("return super(int, 1).__init__", "invalid attribute name"),
    ("def __add__(a, b):\n    return 1", 'starts with "_"'),
    ("s = super\nreturn s(int, 1)", '"super" may only be called'),
    ("import functools\nreturn functools.partial(super, int)", '"super" may only be called'),
    # Internal modules stay out of reach: datetime imports _strptime for itself only.
    ("import _strptime", 'Import of "_strptime"'),
    ("from datetime import _strptime", "invalid"),
]


@pytest.mark.parametrize(
    "code, message", SAVE_REFUSED, ids=[p[1].strip('"_') + str(i) for i, p in enumerate(SAVE_REFUSED)]
)
def test_refused_at_save(service, code, message):
    outcome = service.attack("python", code, expect=("CompilationError",), keeps_neighbours_warm=True)
    assert message in outcome.body["message"] + str(outcome.body["details"].get("errors", ""))


# Members and constructs refused when the function runs.

RUN_REFUSED = [
    # Special methods that hand out modules or tracebacks hand out what user code already has.
    (
        "class A:\n    def __getitem__(self, k):\n        import uuid\n        return uuid\nreturn A()[0].os",
        "has no member 'os'",
        "getitem-returns-module",
    ),
    (
        "class A:\n    def __enter__(self):\n        return self\n    def __exit__(self, t, v, tb):\n"
        "        self.tb = tb\n        return True\nwith A() as a:\n    1 / 0\nreturn getattr(a.tb, 'tb_fr' + 'ame')",
        "is a restricted name",
        "exit-traceback-frame",
    ),
    (
        "class A:\n    def __exit__(self, t, v, tb):\n        return v.obj\n    def __enter__(self):\n        return self\n"
        "with A():\n    log.nothing",
        '"obj" of an exception',
        "exit-exception-obj",
    ),
    # functools.partial over guarded functions keeps their guards.
    (
        "import functools\nreturn functools.partial(getattr, (), '__class__')()",
        "invalid attribute name",
        "partial-getattr",
    ),
    ("import functools\nt = type\nreturn functools.partial(t, 1)()", "type() is not available", "partial-type"),
    ("import functools\nreturn functools.partial(open, '/etc/passwd')()", "open() is not available", "partial-open"),
    # Attribute walkers and writes past the write guard.
    ("import operator\nreturn operator.attrgetter('__class__')(1)", "has no member 'attrgetter'", "attrgetter"),
    # super(Class, obj) past fnbox's checking subclasses of host classes.
    ("import io\ns = io.StringIO()\nsuper(io.StringIO, s).seek(2 ** 40)", "takes a class defined", "super-stringio"),
    (
        "import string\nt = string.Template('$a' * 1000)\nreturn super(string.Template, t).substitute(a='x' * 10 ** 6)",
        "takes a class defined",
        "super-template",
    ),
    (
        "import random\nreturn super(random.Random, random.Random()).choices([1], k=10 ** 10)",
        "takes a class defined",
        "super-random",
    ),
    ("import operator\nreturn operator.methodcaller('__reduce__')", "has no member 'methodcaller'", "methodcaller"),
    ("import operator, math\noperator.setitem(math, 'pi', 3)", "cannot modify", "operator-setitem-module"),
    (
        "import operator, urllib.parse\noperator.setitem(urllib.parse.quote, 'x', 1)",
        "cannot modify",
        "operator-setitem-fn",
    ),
    (
        "import functools, urllib.parse\ndef g():\n    pass\nfunctools.wraps(g)(urllib.parse.quote)",
        "applies only to functions",
        "wraps-host",
    ),
    (
        "import dataclasses, collections\ndataclasses.dataclass(collections.OrderedDict)",
        "applies only to classes",
        "dataclass-host",
    ),
    (
        "import functools, fractions\nfunctools.total_ordering(fractions.Fraction)",
        "applies only to classes",
        "total-ordering-host",
    ),
    ("import typing\nclass A:\n    pass\ntyping.Mapping.register(A)", "register()", "abc-register"),
    ("import typing\nreturn typing.get_type_hints", "has no member 'get_type_hints'", "get-type-hints-eval"),
    ("import typing\nreturn typing.final(print)", "has no member 'final'", "typing-final"),
    ("import enum\nreturn enum.global_enum", "has no member 'global_enum'", "global-enum"),
    ("import csv\ncsv.field_size_limit(10 ** 9)", "has no member 'field_size_limit'", "csv-field-size-limit"),
    ("import csv\ncsv.register_dialect('x', delimiter=';')", "has no member 'register_dialect'", "csv-register"),
    ("import calendar\ncalendar.setfirstweekday(6)", "has no member 'setfirstweekday'", "calendar-global"),
    ("import pprint\nreturn pprint.PrettyPrinter", "has no member 'PrettyPrinter'", "pprint-stream"),
    (
        "import string\nreturn string.Formatter().vformat('{0.__class__}', (1,), {})",
        "has no member 'Formatter'",
        "Formatter-2026",
    ),
    ("import decimal\ndecimal.getcontext().prec = 10 ** 9", "has no member 'getcontext'", "decimal-context"),
    ("import decimal\nwith decimal.localcontext() as c:\n    c.Emax = 10 ** 18", "cannot modify", "localcontext-write"),
    # zoneinfo keys are names, never paths.
    ("import zoneinfo\nreturn str(zoneinfo.ZoneInfo('../../../../etc/passwd'))", "no time zone", "zoneinfo-dotdot"),
    ("import zoneinfo\nreturn str(zoneinfo.ZoneInfo('/etc/localtime'))", "no time zone", "zoneinfo-absolute"),
    (
        "import zoneinfo\nreturn str(zoneinfo.ZoneInfo('Europe/../../../etc/passwd'))",
        "no time zone",
        "zoneinfo-inner-dotdot",
    ),
    (
        "import zoneinfo\nreturn zoneinfo.ZoneInfo.no_cache('/etc/passwd')",
        "has no attribute 'no_cache'",
        "zoneinfo-no-cache",
    ),
    (
        "import zoneinfo, io\nreturn zoneinfo.ZoneInfo.from_file(io.BytesIO(b'TZif'))",
        "has no attribute 'from_file'",
        "zoneinfo-from-file",
    ),
    # csv's own field limit holds.
    (
        "import csv\nreturn len(list(csv.reader(['\"' + 'a' * 200000 + '\"'])))",
        "field larger than field limit",
        "csv-field-bomb",
    ),
    # Subclasses of built-in values cannot lie to the size checks.
    (
        "class L(list):\n    def __len__(self):\n        return 0\nreturn L([1]) * 10 ** 10",
        "which the size checks read",
        "lying-len",
    ),
    # str.format: positions and keys only.
    ("return '{0.__init__.__globals__[__builtins__]}'.format(log)", WALK, "format-globals"),
    ("return '{0.gi_frame.f_back}'.format((i for i in [1]))", WALK, "format-frame"),
]


@pytest.mark.parametrize("code, message", [p[:2] for p in RUN_REFUSED], ids=[p[2] for p in RUN_REFUSED])
def test_refused_at_run(service, code, message):
    outcome = service.attack("python", code, expect=("FunctionError",), keeps_neighbours_warm=True)
    assert message in outcome.body["message"]


# Bombs: refused before allocating, or stopped at the deadline.

BOMBS = [
    ("import string\nreturn string.Template('$a' * 10 ** 6).substitute(a='x' * 10 ** 6)", "template-substitution"),
    (
        "import string\nreturn string.Template('${a}${a}' * 10 ** 5).safe_substitute({'a': 'y' * 10 ** 5})",
        "template-safe",
    ),
    ("return '{:>999999999}'.format(1)", "format-width"),
    ("return '{0:{1}}'.format(1, 10 ** 9)", "format-nested-width"),
    ("return '{:.999999999f}'.format(1.5)", "format-precision"),
    ("return '{0}{0}{0}{0}'.format('x' * 10 ** 7)", "format-repeat"),
    ("import textwrap\nreturn textwrap.indent('\\n' * 10 ** 6, 'x' * 10 ** 4)", "textwrap-indent"),
    (
        "import textwrap\nreturn textwrap.fill('a ' * 10 ** 6, 2, initial_indent='y' * 10 ** 4)",
        "textwrap-indent-per-line",
    ),
    ("import io\nb = io.BytesIO()\nb.seek(2 ** 40)\nb.write(b'x')", "bytesio-seek"),
    ("import io\nb = io.BytesIO()\nb.truncate(2 ** 40)", "bytesio-truncate"),
    ("import io\ns = io.StringIO()\ns.seek(2 ** 40)\ns.write('x')", "stringio-seek"),
    ("import secrets\nreturn secrets.token_hex(2 ** 40)", "secrets-token"),
    ("import html\nreturn html.escape('\"' * 10 ** 7)", "html-escape-expansion"),
    (
        "import csv, io\nf = io.StringIO()\ncsv.writer(f, lineterminator='x' * 10 ** 6).writerows([[1]] * 10 ** 6)",
        "csv-writerows-lineterminator",
    ),
    ("import unicodedata\nreturn unicodedata.normalize('NFKD', '\\ufdfa' * 10 ** 7)", "nfkd-expansion"),
    ("import operator\nreturn operator.mul('x', 10 ** 12)", "operator-mul"),
    ("import operator\nreturn operator.pow(10, 10 ** 9)", "operator-pow"),
    ("import operator\nreturn operator.lshift(1, 10 ** 10)", "operator-lshift"),
    ("import functools, operator\nreturn functools.reduce(operator.mul, [10 ** 5000] * 1000)", "reduce-mul"),
    ("import random\nreturn random.Random(1).choices([1], k=10 ** 10)", "random-instance-choices"),
    ("import random\nreturn random.Random(1).getrandbits(10 ** 10)", "random-instance-bits"),
]


@pytest.mark.parametrize("code", [p[0] for p in BOMBS], ids=[p[1] for p in BOMBS])
def test_bomb_is_refused_before_allocating(service, code):
    outcome = service.attack("python", code, expect=("MemoryLimitExceeded",), keeps_neighbours_warm=True)
    assert outcome.body["message"].startswith("MemoryError:")


HANGS = [
    # difflib and textwrap are pure Python: a huge input runs into the deadline.
    (
        "import difflib\nreturn difflib.SequenceMatcher(None, 'ab' * 10 ** 5, 'ba' * 10 ** 5, autojunk=False).ratio()",
        "difflib-huge",
    ),
    (
        "import difflib\nreturn list(difflib.ndiff(['a%d' % i for i in range(10 ** 5)], ['b%d' % i for i in range(10 ** 5)]))",
        "ndiff-huge",
    ),
    ("import textwrap\nreturn len(textwrap.wrap('ab ' * 2 * 10 ** 6, 3))", "textwrap-huge"),
    # lru_cache grows to its bound, then evicts; the loop runs into the deadline.
    (
        "import functools\nf = functools.lru_cache(maxsize=None)(lambda i: 'x' * 100)\ni = 0\nwhile True:\n    f(i)\n    i += 1",
        "lru-cache-growth",
    ),
    # __exit__ returning True cannot swallow the deadline: calling it checks the deadline first.
    (
        "class A:\n    def __enter__(self):\n        return self\n    def __exit__(self, *exc):\n        return True\n"
        "while True:\n    with A():\n        while True:\n            pass",
        "exit-swallows-deadline",
    ),
    ("n = 2 * 10 ** 6\nt = '{}' * n\nwhile True:\n    t.format(*range(n))", "format-millions-of-fields"),
    (
        "class A:\n    def __eq__(self, other):\n        while True:\n            pass\nreturn [A()].count(A())",
        "eq-in-c-loop",
    ),
    ("class A:\n    def __hash__(self):\n        while True:\n            pass\nreturn {A(): 1}", "hash-in-dict"),
    (
        "import copy\nclass A:\n    def __init__(self):\n        self.a = self\nwhile True:\n    copy.deepcopy(A())",
        "deepcopy-loop",
    ),
]


@pytest.mark.parametrize("code", [p[0] for p in HANGS], ids=[p[1] for p in HANGS])
def test_hang_stops_at_the_deadline(service, code):
    service.attack("python", code, expect=("TimeoutExceeded",))


def test_deepcopy_of_host_objects_keeps_their_guards(service):
    code = (
        "import copy, math, decimal\nr = copy.deepcopy(range)\nD = copy.deepcopy(decimal.Decimal)\n"
        "m = copy.deepcopy(math)\nl = copy.deepcopy(log)\nl.info('copied')\n"
        "try:\n    list(r(10 ** 12))\nexcept MemoryError as e:\n    refused = str(e)\n"
        "return [m.sqrt(4), str(D('1.5')), 'limit' in refused]"
    )
    outcome = service.attack("python", code, expect=("ok",), keeps_neighbours_warm=True)
    assert outcome.body["result"] == [2.0, "1.5", True]


def test_deep_structures_in_deepcopy_and_pformat_are_function_errors(service):
    for call in ("copy.deepcopy(a)", "pprint.pformat(a)", "dataclasses.asdict(P(a))"):
        code = (
            "import copy, pprint, dataclasses\n@dataclasses.dataclass\nclass P:\n    v: list\n"
            f"a = []\nfor _ in range(100000):\n    a = [a]\nreturn len(str({call}))"
        )
        outcome = service.attack("python", code, expect=("FunctionError", "ok"), keeps_neighbours_warm=True)
        assert outcome.code == "ok" or "RecursionError" in outcome.body["message"], outcome.body


# Parameter names: a name like a guard's never reaches the guard.


def test_parameters_named_like_guards_do_not_shadow_them(service):
    names = ["_getattr_", "_getiter_", "_write_", "__builtins__", "__import__", "_deadline_", "_clock_", "print"]
    code = "return [params['_getattr_'], [x for x in [1, 2]], len(params), (1).real]"
    function = {"parameters": {name: {} for name in names}}
    given = dict.fromkeys(names, 0)
    outcome = service.attack(
        "python", code, expect=("ok",), parameters=given, function=function, keeps_neighbours_warm=True
    )
    assert outcome.body["result"] == [0, [1, 2], len(names), 1]


def test_parameters_named_like_builtins_shadow_only_their_function(service):
    code = "return [type, id, list, cache, log, params['class'], params['__proto__']]"
    names = ["type", "id", "list", "cache", "log", "class", "__proto__"]
    given = {"type": "t", "id": 1, "list": [], "cache": "c", "log": "l", "class": "k", "__proto__": {"x": 1}}
    outcome = service.attack(
        "python", code, expect=("ok",), parameters=given, function={"parameters": {n: {} for n in names}}
    )
    assert outcome.body["result"] == ["t", 1, [], "c", "l", "k", {"x": 1}]


def test_javascript_reserved_words_and_proto_stay_data(service):
    code = "return [params.default, params.class, typeof params.__proto__, ({}).polluted, typeof Object, constructor];"
    names = ["default", "class", "__proto__", "constructor", "Object"]
    given = {"default": 1, "class": 2, "__proto__": {"polluted": True}, "constructor": 3, "Object": 4}
    outcome = service.attack(
        "javascript", code, expect=("ok",), parameters=given, function={"parameters": {n: {} for n in names}}
    )
    assert outcome.body["result"] == [1, 2, "object", None, "number", 3]


def test_the_new_library_works_in_a_worker_process(service):
    """Time zones from tzdata, strptime's internal import and csv under the worker's limits."""
    code = (
        "import csv, io, datetime, zoneinfo, hmac, hashlib\n"
        "t = datetime.datetime.strptime('2024-07-01 12:00', '%Y-%m-%d %H:%M').replace(tzinfo=zoneinfo.ZoneInfo('UTC'))\n"
        "rows = list(csv.reader(io.StringIO('a,b\\n1,2\\n')))\n"
        "return [t.astimezone(zoneinfo.ZoneInfo('Australia/Sydney')).isoformat(), rows,\n"
        "        hmac.new(b'k', b'm', hashlib.sha256).hexdigest()[:8]]"
    )
    outcome = service.attack("python", code, expect=("ok",), keeps_neighbours_warm=True)
    assert outcome.body["result"] == ["2024-07-01T22:00:00+10:00", [["a", "b"], ["1", "2"]], "b60090e3"]
