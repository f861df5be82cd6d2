"""Python payloads from the public record, run against a real `fnbox serve` (see conftest.py).

Each payload must be contained with a precise answer: escapes are refused with a message
that names what was refused (CompilationError at save, FunctionError at run), hangs and
bombs answer TimeoutExceeded or MemoryLimitExceeded, and the service goes on. Where the
sandbox can refuse a payload itself, the neighbours' warm caches must survive it
(`keeps_neighbours_warm`); the rest may cost a worker restart.

Sources: RestrictedPython advisories CVE-2023-37271, CVE-2023-41039, CVE-2024-47532,
CVE-2025-22153; the classic Python jail escapes (`__subclasses__` walks, `__builtins__`,
`sys.modules` via `help`/`license`); CPython's own crashers (C recursion in hash, nested
iterators); and the usual resource bombs.
"""

from __future__ import annotations

import time

import pytest

from tests.hostile.conftest import TIMEOUT_MS

pytestmark = pytest.mark.slow  # a real server, worker processes or a subprocess


@pytest.fixture(autouse=True)
def _neighbours_counted_afresh(service):
    """Each payload's warm check measures that payload only, whatever ran before it."""
    service.check_healthy()


# Escapes refused when the workspace is saved.

SAVE_ESCAPES = [
    # CVE-2023-37271: a generator's frame walked back to the sandbox's globals and builtins.
    (
        "g = (x for x in [1])\nreturn g.gi_frame.f_back.f_back.f_globals",
        "is a restricted name",
        "CVE-2023-37271-gi_frame",
    ),
    ("def g():\n    yield 1\nreturn g().gi_code", "is a restricted name", "CVE-2023-37271-gi_code"),
    (
        "try:\n    1 / 0\nexcept Exception as e:\n    return e.__traceback__.tb_frame",
        '"__traceback__"',
        "traceback-tb_frame",
    ),
    # CVE-2025-22153: try/except* type confusion.
    (
        "try:\n    pass\nexcept* ValueError:\n    pass",
        "TryStar statements are not allowed",
        "CVE-2025-22153-except-star",
    ),
    # Guard shadowing: user code rebinding the names transformed code calls.
    ("_getattr_ = lambda obj, name: obj\nreturn 1", '"_getattr_" is an invalid variable name', "shadow-assign"),
    ("global _getiter_\n_getiter_ = list", '"_getiter_" is an invalid variable name', "shadow-global"),
    ("def _write_(obj):\n    return obj", '"_write_" is an invalid variable name', "shadow-def"),
    ("def g(_getattr_=None):\n    return 1", '"_getattr_" is an invalid variable name', "shadow-parameter"),
    ("return [1 for _getiter_ in [1]]", '"_getiter_" is an invalid variable name', "shadow-comprehension"),
    ("return (_getattr_ := 1)", '"_getattr_" is an invalid variable name', "shadow-walrus"),
    ("import math as _write_", '"_write_" is an invalid variable name', "shadow-import-as"),
    ("f = lambda _apply_: 1", '"_apply_" is an invalid variable name', "shadow-lambda"),
    (
        "try:\n    pass\nexcept Exception as _getattr_:\n    pass",
        '"_getattr_" is an invalid variable name',
        "shadow-except-as",
    ),
    ("class A:\n    _getattr_ = 1", '"_getattr_" is an invalid variable name', "shadow-class-attribute"),
    ("(_deadline_ := 10**9)", '"_deadline_" is an invalid variable name', "shadow-deadline"),
    # The classic jail escapes: class hierarchy walks, builtins, introspection.
    (
        "return ().__class__.__mro__[1].__subclasses__()",
        '"__class__" is an invalid attribute name',
        "mro-subclasses-walk",
    ),
    ("return type.__subclasses__(object)", '"__subclasses__" is an invalid attribute name', "type-subclasses"),
    ("return __builtins__['__import__']('os')", '"__builtins__" is an invalid variable name', "builtins-dict"),
    ("return __import__('os').system('id')", '"__import__" is an invalid variable name', "dunder-import"),
    ("return vars()", "vars() is not allowed", "vars"),
    ("return globals()['cache']", "globals() is not allowed", "globals"),
    ("return locals()", "locals() is not allowed", "locals"),
    ("return dir()", "dir() is not allowed", "dir"),
    ("exec('import os')", "Exec calls are not allowed", "exec"),
    ("return eval('1')", "Eval calls are not allowed", "eval"),
    ("return compile('1', 'x', 'eval')", "compile() is not allowed", "compile"),
    ("return open('/etc/passwd').read()", "open() is not allowed", "open-etc-passwd"),
    ("help()", "help() is not allowed", "help-sys-modules"),
    (
        "class M(dict):\n    pass\nclass A(metaclass=M):\n    pass",
        'keyword argument "metaclass" is not allowed',
        "metaclass",
    ),
    (
        "class A:\n    def __init_subclass__(cls):\n        pass",
        '"__init_subclass__" is an invalid variable name',
        "init_subclass",
    ),
    ("class A:\n    def __getattribute__(self, name):\n        return 1", '"__getattribute__"', "getattribute"),
    (
        "def deco(f):\n    return f.__globals__\n@deco\ndef g():\n    pass",
        '"__globals__" is an invalid attribute name',
        "decorator-globals",
    ),
    # Modules that are ways out.
    ("import os\nreturn os.system('id')", 'Import of "os" is not allowed', "import-os"),
    ("import sys\nsys.setrecursionlimit(10**6)", 'Import of "sys" is not allowed', "huge-recursion-limit"),
    ("from subprocess import run", 'Import of "subprocess" is not allowed', "import-subprocess"),
    ("import importlib", 'Import of "importlib" is not allowed', "import-importlib"),
    ("import collections.abc", 'Import of "collections.abc" is not allowed', "import-collections-abc"),
    ("import json.decoder", 'Import of "json.decoder" is not allowed', "import-json-decoder"),
    ("from . import x", "Relative imports are not allowed", "relative-import"),
    ("import random\nreturn random._os", '"_os" is an invalid attribute name', "random-_os"),
    # Python 3.10+ class patterns read attributes without a getattr: refused wholesale.
    (
        "match 'x':\n    case str(format=f):\n        return f('{0.__class__}', 1)",
        "Match statements are not allowed",
        "match-class-pattern",
    ),
    # NFKC: the parser folds fullwidth letters, so they name the same builtins.
    ("return ｅｖａｌ('1')", "Eval calls are not allowed", "unicode-nfkc-eval"),
    ("return (1).__ｃｌａｓｓ__", '"__class__" is an invalid attribute name', "unicode-nfkc-dunder"),
    ("async def g():\n    pass", "AsyncFunctionDef statements are not allowed", "async-def"),
    # Swallowing the deadline stop.
    (
        "while True:\n    try:\n        pass\n    except BaseException:\n        pass",
        'Catching "BaseException" is not allowed',
        "catch-baseexception",
    ),
    (
        "while True:\n    try:\n        pass\n    finally:\n        continue",
        '"continue" inside "finally"',
        "finally-continue",
    ),
]


@pytest.mark.parametrize("code, message", [p[:2] for p in SAVE_ESCAPES], ids=[p[2] for p in SAVE_ESCAPES])
def test_escape_refused_at_save(service, code, message):
    outcome = service.attack("python", code, expect=("CompilationError",), keeps_neighbours_warm=True)
    assert message in outcome.body["message"] + str(outcome.body["details"].get("errors", ""))
    assert outcome.body["details"]["function"] == "f"


# Escapes refused when the function runs.

RUN_ESCAPES = [
    ("g = (x for x in [1])\nreturn getattr(g, 'gi_fr' + 'ame')", "is a restricted name", "CVE-2023-37271-getattr"),
    # CVE-2023-41039: str.format fields walk attributes ("{0.__class__.__base__}"); fnbox's reads
    # positions and keys only.
    (
        "return '{0.__class__.__base__.__subclasses__}'.format(1)",
        "reads an attribute or an item",
        "CVE-2023-41039-format",
    ),
    ("return '{x.__class__}'.format_map({'x': 1})", "reads an attribute or an item", "CVE-2023-41039-format_map"),
    ("s = '{0.__class__.__base__}'\nreturn s.format(1)", "reads an attribute or an item", "CVE-2023-41039-variable"),
    (
        "s = '{0.__class__}'\nreturn s.format_map([1])",
        "reads an attribute or an item",
        "CVE-2023-41039-format_map-variable",
    ),
    (
        "f = str.format\nreturn f('{0.__init__.__globals__}', log)",
        "reads an attribute or an item",
        "CVE-2023-41039-unbound",
    ),
    (
        "class S(str):\n    pass\nreturn S('{0.__class__}').format(1)",
        "reads an attribute or an item",
        "CVE-2023-41039-subclass",
    ),
    ("return '{0[__builtins__]}'.format(log)", "reads an attribute or an item", "format-index-walk"),
    ("return '{:{0.__class__}}'.format(1)", "reads an attribute or an item", "format-nested-spec-walk"),
    # The string.Formatter escapes walk the same fields in Python: Formatter is left out.
    ("import string\nreturn string.Formatter().format('{0.__class__}', 1)", "has no member 'Formatter'", "Formatter"),
    (
        "try:\n    log.nothing\nexcept AttributeError as e:\n    return e.obj",
        '"obj" of an exception',
        "CVE-2024-47532-obj",
    ),
    (
        "try:\n    cache.nothing\nexcept AttributeError as e:\n    return getattr(e, 'obj')",
        '"obj" of an exception',
        "CVE-2024-47532-getattr",
    ),
    ("return getattr((), '__cla' + 'ss__')", '"__class__" is an invalid attribute name', "getattr-concatenated"),
    (
        "class S(str):\n    def startswith(self, prefix):\n        return False\nreturn getattr((), S('__class__'))",
        "attribute name must be a str",
        "getattr-str-subclass",
    ),
    ("import uuid\nreturn uuid.os.system('id')", "has no member 'os'", "uuid-os"),
    ("import datetime\nreturn datetime.sys.modules", "has no member 'sys'", "datetime-sys"),
    ("import json\nreturn json.decoder", "has no member 'decoder'", "json-decoder"),
    ("from json import decoder", "cannot import name 'decoder' from 'json'", "from-json-import-decoder"),
    ("import collections\nreturn collections.abc", "has no member 'abc'", "collections-abc"),
    ("import base64\nreturn base64.binascii", "has no member 'binascii'", "base64-binascii"),
    ("return int.mro()[1]", '"mro" is not available', "mro-method"),
    ("t = type\nreturn t(1)", "type() is not available", "type-indirect"),
    ("e = [eval][0]\nreturn e('1')", "eval() is not available", "eval-indirect"),
    ("o = open\nreturn o('/etc/passwd').read()", "open() is not available", "open-indirect"),
    ("@eval\ndef g():\n    pass", "eval() is not available", "decorator-eval"),
    (
        "def deco(f):\n    return getattr(f, '__glo' + 'bals__')\n@deco\ndef g():\n    pass",
        '"__globals__" is an invalid attribute name',
        "decorator-getattr-globals",
    ),
    ("return license()", "name 'license' is not defined", "license-sys-modules"),
    ("return copyright", "name 'copyright' is not defined", "copyright"),
    # Writes to host objects every workspace of the worker shares.
    ("import math\nmath.pi = 3", "cannot modify", "monkeypatch-module"),
    ("log.info = print", "cannot modify", "monkeypatch-log"),
    ("int.x = 1", "cannot modify", "monkeypatch-builtin-type"),
    # The HTTP clients: shared classes and modules stay read-only, no way to their transport.
    ("import requests\nrequests.get = print", "cannot modify", "monkeypatch-requests"),
    ("import requests\nrequests.Session.request = print", "cannot modify", "monkeypatch-requests-session-class"),
    (
        "import requests\nrequests.structures.CaseInsensitiveDict.get = print",
        "cannot modify",
        "monkeypatch-headers-class",
    ),
    ("import requests\nrequests.exceptions.HTTPError.x = 1", "cannot modify", "monkeypatch-requests-exception"),
    ("import urllib.request\nurllib.request.urlopen = print", "cannot modify", "monkeypatch-urlopen"),
    ("import requests\nreturn requests.adapters", "transport adapters open their own connections", "requests-adapters"),
    ("import requests\nreturn requests.packages.urllib3", "has no member 'packages'", "requests-packages"),
    ("import urllib.request\nreturn urllib.request.build_opener()", "has no member 'build_opener'", "urllib-opener"),
    (
        "import urllib.request\nreturn urllib.request.urlopen('file:///etc/passwd').read()",
        "http and https",
        "urlopen-file",
    ),
    ("import requests\nreturn requests.get('http://x.test/', verify=False)", "verify=False", "requests-no-verify"),
    (
        "import requests\nreturn requests.get('http://x.test/', proxies={'http': 'http://10.0.0.1'})",
        "proxies=",
        "proxies",
    ),
    ("import requests\nreturn requests.get('http://169.254.169.254/latest/')", "egress", "requests-metadata"),
    ("import requests\nreturn requests.get('http://x.test/', headers={'X': 'a\\r\\nHost: y'})", "line break", "crlf"),
]


@pytest.mark.parametrize("code, message", [p[:2] for p in RUN_ESCAPES], ids=[p[2] for p in RUN_ESCAPES])
def test_escape_refused_at_run(service, code, message):
    outcome = service.attack("python", code, expect=("FunctionError",), keeps_neighbours_warm=True)
    assert message in outcome.body["message"]


def test_functions_named_like_guards_are_refused(service):
    for name in ("_getattr_", "__import__", "print", "cache"):
        document = {"functions": {name: {"language": "python", "code": "return 1"}}}
        answer = service.client.put("/v2/functions/shadow", json=document)
        assert answer.status_code == 400 and "reserved" in answer.json()["message"]
    service.check_healthy(warm=True)


# Hangs: a deadline check in every loop stops Python code cheaply; C code holding the
# GIL is stopped by the supervisor killing the worker.

HANGS = [
    ("while True:\n    pass", "while-true"),
    ("while True:\n    try:\n        while True:\n            pass\n    except:\n        pass", "swallow-the-stop"),
    ("def g():\n    while True:\n        yield 1\nreturn len(list(g()))", "infinite-generator-list"),
    ("import itertools\nreturn sum(itertools.count())", "itertools-count-sum"),
    ("import time\ntime.sleep(100)", "time-sleep"),
    (
        "def g():\n    try:\n        yield 1\n    finally:\n        while True:\n            pass\nx = g()\nnext(x)\nreturn 1",
        "generator-finally-loop",
    ),
    ("import itertools\nreturn len(list(x for x in itertools.repeat(1)))", "generator-bomb"),
    # RestrictedPython lets classes define __eq__ and __contains__: C code calling them runs their checks.
    (
        "class A:\n    def __eq__(self, other):\n        while True:\n            pass\nreturn [A()].count(A())",
        "hostile-eq",
    ),
    (
        "class A:\n    def __contains__(self, x):\n        while True:\n            pass\nreturn 1 in A()",
        "hostile-contains",
    ),
]


@pytest.mark.parametrize("code", [p[0] for p in HANGS], ids=[p[1] for p in HANGS])
def test_hang_stops_at_the_deadline_cheaply(service, code):
    outcome = service.attack("python", code, expect=("TimeoutExceeded",), keeps_neighbours_warm=True)
    assert outcome.elapsed >= TIMEOUT_MS / 1000


# Hangs that fill a list from C code as fast as memory allows: on a fast machine the memory cap
# comes before the deadline, on a slow one after it. Either ends the run alone and cheaply.
GROWING_HANGS = [
    ("import itertools\nreturn len(list(itertools.count()))", "itertools-count-list"),
    ("return len(list(iter(int, 1)))", "iter-callable-sentinel"),
]


@pytest.mark.parametrize("code", [p[0] for p in GROWING_HANGS], ids=[p[1] for p in GROWING_HANGS])
def test_growing_hang_stops_at_the_first_cap_cheaply(service, code):
    service.attack("python", code, expect=("TimeoutExceeded", "MemoryLimitExceeded"), keeps_neighbours_warm=True)


def test_catastrophic_regex_is_stopped_by_the_supervisor(service):
    """ReDoS: `(a+)+$` backtracks in C holding the GIL; only killing the worker stops it."""
    code = "import re\nreturn bool(re.match(r'(a+)+$', 'a' * 40 + 'b'))"
    outcome = service.attack("python", code, expect=("TimeoutExceeded",))
    assert "worker was stopped" in outcome.body["message"]


# Bombs refused by size checks before they allocate: cheap.

SIZE_BOMBS = [
    ("return 10**10**8", "power-tower"),
    ("return pow(10, 10**8)", "pow"),
    ("x = 3\nx **= 10**9", "inplace-power"),
    ("x = 10\nfor i in range(40):\n    x = x * x", "repeated-squaring"),
    ("return 1 << 10**10", "shift"),
    ("return sorted(range(10**8))", "sorted-range"),
    ("return sum(range(10**12))", "sum-range"),
    ("return 'x' * 10**10", "str-repeat"),
    ("return [0] * 10**9", "list-repeat"),
    ("return bytearray(10**10)", "bytearray"),
    ("return b'x' * 2**40", "bytes-repeat"),
    ("return ''.join(['x' * 10**6] * 1000)", "join"),
    ("return 'x'.ljust(10**10)", "ljust"),
    ("return f'{1:>10000000000}'", "format-width"),
    ("import re\nreturn re.match('.*', 'x' * 10**4).expand('\\\\g<0>' * 10**5)", "match-expand"),
    ("return 'x' * (100 * 2**20)", "100MB-str-result"),
    ("return ['x' * 2**20] * 100", "100MB-list-result"),
    ("return list(range(4 * 10**6))", "32MB-result"),
]


@pytest.mark.parametrize("code", [p[0] for p in SIZE_BOMBS], ids=[p[1] for p in SIZE_BOMBS])
def test_size_bomb_is_refused_before_allocating(service, code):
    outcome = service.attack("python", code, expect=("MemoryLimitExceeded",), keeps_neighbours_warm=True)
    message = outcome.body["message"]
    assert message.startswith("MemoryError:") and ("limit" in message or "MB of JSON" in message)


# Bombs that do allocate until the worker's RLIMIT_AS: the MemoryError is caught in the
# sandbox, whose frames and globals are freed; the worker and its neighbours go on.

MEMORY_BOMBS = [
    ("a = [1]\nwhile True:\n    a += a", "list-doubling"),
    ("a = 'x'\nwhile True:\n    a = a + a", "str-doubling"),
    ("d = {}\ni = 0\nwhile True:\n    d[i] = [i] * 10**5\n    i += 1", "dict-growth"),
    ("a = []\nwhile True:\n    a.extend(range(10**6))", "extend-to-the-brink"),
    ("return [bytearray(10**7) for _ in range(100)]", "comprehension"),
]


@pytest.mark.parametrize("code", [p[0] for p in MEMORY_BOMBS], ids=[p[1] for p in MEMORY_BOMBS])
def test_memory_bomb_is_caught_in_the_sandbox(memory_service, code):
    outcome = memory_service.attack("python", code, expect=("MemoryLimitExceeded",), keeps_neighbours_warm=True)
    assert "ran out of memory" in outcome.body["message"]


def test_memory_kept_in_the_cache_is_freed_with_the_sandbox(memory_service):
    """The bomb grows the cache, which outlives the run: dropping the sandbox frees it."""
    code = (
        "if bomb:\n    cache['a'] = [1]\n    while True:\n        cache['a'] += cache['a']\n"
        "return len(cache.get('a', []))"
    )
    function = {"language": "python", "code": code, "parameters": {"bomb": {"type": "boolean"}}}
    assert memory_service.client.put("/v2/functions/hoarder", json={"functions": {"f": function}}).status_code == 200
    started = time.monotonic()
    bomb = memory_service.client.post("/v2/functions/hoarder/run/f", json={"parameters": {"bomb": True}}).json()
    assert bomb["error"] == "MemoryLimitExceeded" and "sandbox is dropped" in bomb["message"]
    assert time.monotonic() - started < memory_service.timeout_ms / 1000 + 1
    assert (
        memory_service.client.post("/v2/functions/hoarder/run/f", json={"parameters": {"bomb": False}}).json()["result"]
        == 0
    )
    memory_service.check_healthy(warm=True)


def test_billion_laughs_through_shared_references(service):
    """A thousand references to a thousand references: str() of it is a billion items in C."""
    code = "a = ['x' * 1000] * 1000\nb = [a] * 1000\nreturn len(str(b))"
    service.attack("python", code, expect=("MemoryLimitExceeded", "TimeoutExceeded"))


def test_comparing_billion_item_structures_is_stopped_by_the_supervisor(service):
    """Shared references make three lists of 12,000 slots ten billion items to `==`, which runs in C
    holding the GIL: no size check applies, only the supervisor's kill stops it."""
    code = "def cube():\n    a = [0] * 1000\n    return [[a] * 1000] * 10000\nreturn cube() == cube()"
    outcome = service.attack("python", code, expect=("TimeoutExceeded",))
    assert "worker was stopped" in outcome.body["message"]


# Recursion.


def test_deep_recursion_is_a_function_error(service):
    code = "def f():\n    return f()\nreturn f()"
    outcome = service.attack("python", code, expect=("FunctionError",), keeps_neighbours_warm=True)
    assert "RecursionError" in outcome.body["message"]


def test_mutual_recursion_between_workspace_functions(service):
    document = {
        "functions": {
            "ping": {"language": "python", "code": "return pong()"},
            "pong": {"language": "python", "code": "return ping()"},
        }
    }
    assert service.client.put("/v2/functions/pingpong", json=document).status_code == 200
    answer = service.client.post("/v2/functions/pingpong/run/ping", json={})
    assert answer.json()["error"] == "FunctionError" and "RecursionError" in answer.json()["message"]
    service.check_healthy(warm=True)


@pytest.mark.parametrize(
    "code",
    [
        "x = []\nfor i in range(10**5):\n    x = [x]\nreturn str(x)",
        "import json\nreturn json.loads('[' * 10**5 + ']' * 10**5)",
    ],
    ids=["repr-of-deep-list", "json-loads-deep"],
)
def test_deep_c_recursion_is_a_function_error(service, code):
    outcome = service.attack("python", code, expect=("FunctionError",), keeps_neighbours_warm=True)
    assert "RecursionError" in outcome.body["message"]


def test_cpython_c_recursion_crasher_costs_only_a_worker(service):
    """hash() of a deeply nested tuple recurses in C without a depth check and overflows
    the thread's stack (CPython 3.11): the worker dies, the service goes on."""
    code = "t = ()\nfor i in range(3 * 10**5):\n    t = (t,)\nreturn hash(t)"
    outcome = service.attack("python", code, expect=("SandboxCrashed",))
    assert "the service goes on" in outcome.body["message"]


# Results that are not JSON, or too big.

RESULTS = [
    ("return (x for x in [1])", "a generator value", "generator"),
    ("class A:\n    def items(self):\n        while True:\n            pass\nreturn A()", "a A value", "instance"),
    ("x = []\nx.append(x)\nreturn x", "(a cycle?)", "cyclic-list"),
    ("x = []\nfor i in range(10**5):\n    x = [x]\nreturn x", "nested more than 200 levels", "nested-10**5"),
    ("return float('nan')", "nan is not a JSON number", "nan"),
    ("return {'a': [float('-inf')]}", "-inf is not a JSON number", "inf"),
    ("return 10**5000 // 3", "more than 4,300 digits", "huge-int"),
    ("return {(1, 2): 3}", "a dict key of type tuple", "tuple-key"),
]


@pytest.mark.parametrize("code, message", [p[:2] for p in RESULTS], ids=[p[2] for p in RESULTS])
def test_result_that_is_not_json(service, code, message):
    outcome = service.attack("python", code, expect=("FunctionError",), keeps_neighbours_warm=True)
    assert "not JSON-serialisable" in outcome.body["message"] and message in outcome.body["message"]


def test_lone_surrogates_cannot_break_the_answer(service):
    code = "print('\\ud800')\nreturn ['\\udc00', {'\\ud800': 1}]"
    outcome = service.attack("python", code, expect=("ok",), keeps_neighbours_warm=True)
    assert outcome.body["result"] == ["\ufffd", {"\ufffd": 1}] and outcome.body["logs"][0]["message"] == "\ufffd"


# Parameters.


def test_900kb_string_parameter(service):
    function = {"parameters": {"s": {"type": "string"}}}
    outcome = service.attack(
        "python",
        "return len(s)",
        expect=("ok",),
        parameters={"s": "x" * 900_000},
        function=function,
        keeps_neighbours_warm=True,
    )
    assert outcome.body["result"] == 900_000


@pytest.mark.parametrize("depth, expect", [(60, "ok"), (70, "InvalidRequest")])
def test_deeply_nested_parameter(service, depth, expect):
    nested: object = 1
    for _ in range(depth):
        nested = [nested]
    code = "d = 0\nwhile isinstance(p, list):\n    p = p[0]\n    d += 1\nreturn d"
    outcome = service.attack(
        "python",
        code,
        expect=(expect,),
        parameters={"p": nested},
        function={"parameters": {"p": {"type": "array"}}},
        keeps_neighbours_warm=True,
    )
    assert expect != "ok" or outcome.body["result"] == depth


def test_parameter_over_the_body_limit(service):
    service.attack(
        "python",
        "return 1",
        expect=("PayloadTooLarge",),
        parameters={"s": "x" * 1_100_000},
        function={"parameters": {"s": {"type": "string"}}},
        keeps_neighbours_warm=True,
    )


# Huge or deeply nested source code: refused at save (or run normally), quickly.

SOURCES = [
    ("return " + "(" * 200 + "1" + ")" * 200, "ok", "200-nested-parentheses"),
    ("return " + "[" * 201 + "]" * 201, "CompilationError", "201-nested-lists"),
    (
        "".join("    " * i + "if True:\n" for i in range(100)) + "    " * 100 + "pass",
        "CompilationError",
        "100-nested-ifs",
    ),
    ("x = 1; " * 130_000, "CompilationError", "900KB-body"),
    ("x = " + "+1" * 10**5, "CompilationError", "10**5-additions"),
    ("x = " + "lambda: " * 1000 + "1", "CompilationError", "1000-nested-lambdas"),
    ("return " + "not " * 10**4 + "1", "CompilationError", "10**4-nots"),
    ("x = [" + "a," * 120_000 + "]", "CompilationError", "240KB-of-nodes"),
    ("def g():\n    return 1\n" * 10_000, "CompilationError", "10**4-identical-defs"),
]


@pytest.mark.parametrize("code, expect", [p[:2] for p in SOURCES], ids=[p[2] for p in SOURCES])
def test_huge_or_deep_source(service, code, expect):
    started = time.monotonic()
    outcome = service.attack("python", code, expect=(expect,), keeps_neighbours_warm=True)
    assert time.monotonic() - started < 2
    if expect == "CompilationError":
        assert "does not compile" in outcome.body["message"]
