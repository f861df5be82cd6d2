"""Everyday Python function bodies, as a new user writes them: (name, body, declared parameters, given).

Run on fnbox and on plain CPython by test_real_world.py; plain data, so that the same list
can be run against another checkout of fnbox to compare.
"""

from __future__ import annotations

from typing import Any

Body = tuple[str, str, tuple[str, ...], dict[str, Any]]

BODIES: list[Body] = [
    (
        "webhook_signature",
        "import hmac, hashlib\n"
        "expected = hmac.new(secret.encode(), body.encode(), hashlib.sha256).hexdigest()\n"
        "return hmac.compare_digest(expected, signature)",
        ("secret", "body", "signature"),
        {
            "secret": "whsec",
            "body": '{"a":1}',
            "signature": "0d1d41ed0ac2b8ad1f3e5b06b53e41a6fdcd1a3e1bb8f7b8f27ff6d00c4ac0f8",
        },
    ),
    (
        "timezone_conversion",
        "from datetime import datetime\nfrom zoneinfo import ZoneInfo\n"
        "t = datetime.fromisoformat(when).replace(tzinfo=ZoneInfo('UTC'))\n"
        "return t.astimezone(ZoneInfo(tz)).strftime('%Y-%m-%d %H:%M %Z')",
        ("when", "tz"),
        {"when": "2024-07-01T12:00:00", "tz": "Asia/Tokyo"},
    ),
    (
        "csv_report",
        "import csv, io\nrows = list(csv.DictReader(io.StringIO(text)))\n"
        "return {'count': len(rows), 'total': sum(float(r['amount']) for r in rows)}",
        ("text",),
        {"text": "name,amount\nann,10.5\nbob,4.5\n"},
    ),
    (
        "csv_export",
        "import csv, io\nout = io.StringIO()\nw = csv.writer(out)\nw.writerow(['id', 'name'])\n"
        "for i, n in enumerate(names):\n    w.writerow([i, n])\nreturn out.getvalue()",
        ("names",),
        {"names": ["a", "b,c"]},
    ),
    (
        "dataclass_order",
        "from dataclasses import dataclass, field, asdict\n@dataclass\nclass Line:\n    sku: str\n    qty: int\n"
        "    price: float\n    def total(self):\n        return self.qty * self.price\n"
        "@dataclass\nclass Order:\n    lines: list = field(default_factory=list)\n"
        "    def total(self):\n        return round(sum(l.total() for l in self.lines), 2)\n"
        "o = Order([Line(**l) for l in lines])\nreturn {'total': o.total(), 'first': asdict(o.lines[0])}",
        ("lines",),
        {"lines": [{"sku": "a", "qty": 2, "price": 1.25}, {"sku": "b", "qty": 1, "price": 3.0}]},
    ),
    (
        "typing_annotations",
        "from typing import Optional, List, Dict\n"
        "def summarize(values: List[float], label: Optional[str] = None) -> Dict[str, float]:\n"
        "    return {'n': len(values), 'max': max(values)}\nreturn summarize(values)",
        ("values",),
        {"values": [1.5, 3.0]},
    ),
    (
        "enum_status",
        "from enum import Enum\nclass Status(Enum):\n    OPEN = 'open'\n    CLOSED = 'closed'\n"
        "s = Status(state)\nreturn {'name': s.name, 'is_open': s is Status.OPEN}",
        ("state",),
        {"state": "open"},
    ),
    (
        "textwrap_message",
        "import textwrap\nreturn textwrap.fill(text, width=20)",
        ("text",),
        {"text": "The quick brown fox jumps over the lazy dog several times"},
    ),
    (
        "functools_memo",
        "from functools import lru_cache\n@lru_cache(maxsize=None)\ndef ways(n):\n"
        "    return 1 if n <= 1 else ways(n - 1) + ways(n - 2)\nreturn ways(n)",
        ("n",),
        {"n": 60},
    ),
    (
        "functools_reduce",
        "from functools import reduce\nimport operator\nreturn reduce(operator.mul, numbers, 1)",
        ("numbers",),
        {"numbers": [1, 2, 3, 4]},
    ),
    (
        "copy_template",
        "import copy\ntemplate = {'tags': [], 'meta': {'v': 1}}\nitems = []\nfor n in names:\n"
        "    item = copy.deepcopy(template)\n    item['tags'].append(n)\n    items.append(item)\nreturn items",
        ("names",),
        {"names": ["x", "y"]},
    ),
    (
        "strptime_age",
        "from datetime import datetime\nborn = datetime.strptime(birthday, '%d/%m/%Y')\n"
        "today = datetime(2024, 6, 1)\nreturn today.year - born.year - ((today.month, today.day) < (born.month, born.day))",
        ("birthday",),
        {"birthday": "15/08/1990"},
    ),
    (
        "vector_class",
        "class Vector:\n    def __init__(self, x, y):\n        self.x, self.y = x, y\n"
        "    def __add__(self, other):\n        return Vector(self.x + other.x, self.y + other.y)\n"
        "    def __eq__(self, other):\n        return (self.x, self.y) == (other.x, other.y)\n"
        "    def __repr__(self):\n        return f'Vector({self.x}, {self.y})'\n"
        "return repr(Vector(1, 2) + Vector(3, 4))",
        (),
        {},
    ),
    (
        "context_manager_class",
        "class Timer:\n    def __enter__(self):\n        self.steps = []\n        return self\n"
        "    def __exit__(self, *exc):\n        self.steps.append('done')\n        return False\n"
        "with Timer() as t:\n    t.steps.append('work')\nreturn t.steps",
        (),
        {},
    ),
    (
        "iterable_class",
        "class Pages:\n    def __init__(self, items, size):\n        self.items, self.size = items, size\n"
        "    def __iter__(self):\n        for i in range(0, len(self.items), self.size):\n"
        "            yield self.items[i:i + self.size]\n    def __len__(self):\n"
        "        return -(-len(self.items) // self.size)\np = Pages(items, 2)\nreturn [len(p), list(p)]",
        ("items",),
        {"items": [1, 2, 3, 4, 5]},
    ),
    (
        "str_format",
        "return 'Hello {}, you have {:d} new {}'.format(name, count, 'message' if count == 1 else 'messages')",
        ("name", "count"),
        {"name": "Ada", "count": 3},
    ),
    (
        "format_map_template",
        "return 'Dear {first} {last},'.format_map(person)",
        ("person",),
        {"person": {"first": "Grace", "last": "Hopper"}},
    ),
    (
        "seeded_random",
        "import random\nrng = random.Random(seed)\nreturn [rng.randint(1, 6) for _ in range(5)]",
        ("seed",),
        {"seed": 42},
    ),
    (
        "stripe_event",
        "if type == 'charge.succeeded':\n    return {'id': id, 'amount': object['amount']}\nreturn None",
        ("id", "type", "object"),
        {"id": "evt_1", "type": "charge.succeeded", "object": {"amount": 500}},
    ),
    (
        "builtin_named_params",
        "return {'filter': filter, 'format': format, 'list': list, 'sum': sum, 'min': min, 'max': max}",
        ("filter", "format", "list", "sum", "min", "max"),
        {"filter": "active", "format": "csv", "list": [1], "sum": 3, "min": 0, "max": 9},
    ),
    (
        "undeclared_session",
        "session = params.get('session', {})\nreturn session.get('user', 'anonymous')",
        (),
        {"session": {"user": "ada"}},
    ),
    (
        "input_next_range_params",
        "return [input.upper(), next, range]",
        ("input", "next", "range"),
        {"input": "text", "next": "cursor_2", "range": "7d"},
    ),
    (
        "statistics_summary",
        "import statistics\nreturn {'mean': statistics.mean(xs), 'median': statistics.median(xs)}",
        ("xs",),
        {"xs": [1, 2, 3, 10]},
    ),
    (
        "json_roundtrip",
        "import json\ndata = json.loads(raw)\ndata['seen'] = True\nreturn json.dumps(data, sort_keys=True)",
        ("raw",),
        {"raw": '{"b": 1, "a": 2}'},
    ),
    (
        "regex_emails",
        "import re\nreturn re.findall(r'[\\w.]+@[\\w.]+', text)",
        ("text",),
        {"text": "write to a@b.com or c.d@e.org"},
    ),
    (
        "counter_words",
        "from collections import Counter\nreturn Counter(text.lower().split()).most_common(2)",
        ("text",),
        {"text": "a b a c b a"},
    ),
    (
        "itertools_batches",
        "from itertools import islice\nit = iter(items)\nout = []\nwhile True:\n"
        "    chunk = list(islice(it, 2))\n    if not chunk:\n        break\n    out.append(chunk)\nreturn out",
        ("items",),
        {"items": [1, 2, 3]},
    ),
    (
        "date_arithmetic",
        "from datetime import date, timedelta\nd = date.fromisoformat(start)\n"
        "return [(d + timedelta(days=7 * i)).isoformat() for i in range(3)]",
        ("start",),
        {"start": "2024-01-31"},
    ),
    (
        "decimal_money",
        "from decimal import Decimal, ROUND_HALF_UP\ntotal = sum(Decimal(p) for p in prices)\n"
        "return str((total * Decimal('1.2')).quantize(Decimal('0.01'), rounding=ROUND_HALF_UP))",
        ("prices",),
        {"prices": ["1.10", "2.20"]},
    ),
    (
        "decimal_localcontext",
        "import decimal\nwith decimal.localcontext(prec=6):\n    return str(decimal.Decimal(2).sqrt())",
        (),
        {},
    ),
    (
        "base64_basic_auth",
        "import base64\nreturn 'Basic ' + base64.b64encode(f'{user}:{password}'.encode()).decode()",
        ("user", "password"),
        {"user": "u", "password": "p"},
    ),
    (
        "uuid5_ids",
        "import uuid\nreturn str(uuid.uuid5(uuid.NAMESPACE_URL, url))",
        ("url",),
        {"url": "https://example.com"},
    ),
    (
        "url_building",
        "from urllib.parse import urlencode, urlparse\nu = urlparse(base)\n"
        "return f'{u.scheme}://{u.netloc}/search?' + urlencode(query)",
        ("base", "query"),
        {"base": "https://example.com/x", "query": {"q": "a b", "page": 2}},
    ),
    (
        "heapq_top_k",
        "import heapq\nreturn heapq.nlargest(k, scores, key=lambda s: s['score'])",
        ("scores", "k"),
        {"scores": [{"score": 1}, {"score": 5}, {"score": 3}], "k": 2},
    ),
    (
        "bisect_grades",
        "import bisect\nbreaks = [60, 70, 80, 90]\nreturn ['FDCBA'[bisect.bisect(breaks, s)] for s in scores]",
        ("scores",),
        {"scores": [55, 75, 95]},
    ),
    (
        "itemgetter_sort",
        "from operator import itemgetter\nreturn sorted(rows, key=itemgetter('age', 'name'))",
        ("rows",),
        {"rows": [{"age": 30, "name": "b"}, {"age": 20, "name": "a"}]},
    ),
    (
        "secrets_token",
        "import secrets\ntoken = secrets.token_urlsafe(16)\nreturn len(token) > 10",
        (),
        {},
    ),
    (
        "html_escape",
        "import html\nreturn f'<p>{html.escape(comment)}</p>'",
        ("comment",),
        {"comment": "<script>alert(1)</script>"},
    ),
    (
        "unicode_slug",
        "import unicodedata, re\ns = unicodedata.normalize('NFKD', title).encode('ascii', 'ignore').decode()\n"
        "return re.sub(r'[^a-z0-9]+', '-', s.lower()).strip('-')",
        ("title",),
        {"title": "Crème Brûlée à la carte"},
    ),
    (
        "calendar_month_end",
        "import calendar\nreturn calendar.monthrange(year, month)[1]",
        ("year", "month"),
        {"year": 2024, "month": 2},
    ),
    (
        "difflib_suggest",
        "import difflib\nreturn difflib.get_close_matches(word, commands, n=1)",
        ("word", "commands"),
        {"word": "stauts", "commands": ["status", "start", "stop"]},
    ),
    (
        "pprint_debug",
        "import pprint\nreturn pprint.pformat(data, width=30)",
        ("data",),
        {"data": {"name": "x", "items": list(range(8))}},
    ),
    (
        "string_template",
        "from string import Template\nreturn Template('Hi $name, your code is $code').safe_substitute(name=name)",
        ("name",),
        {"name": "Ada"},
    ),
    (
        "custom_exception",
        "class ValidationError(Exception):\n    def __init__(self, field):\n"
        "        super().__init__(f'invalid {field}')\n        self.field = field\n"
        "try:\n    raise ValidationError('email')\nexcept ValidationError as e:\n    return [str(e), e.field]",
        (),
        {},
    ),
    (
        "property_and_classmethod",
        "class Temp:\n    def __init__(self, c):\n        self.c = c\n    @property\n    def f(self):\n"
        "        return self.c * 9 / 5 + 32\n    @classmethod\n    def from_f(cls, f):\n"
        "        return cls((f - 32) * 5 / 9)\nreturn [Temp(100).f, Temp.from_f(212).c]",
        (),
        {},
    ),
    (
        "namedtuple_points",
        "from typing import NamedTuple\nclass Point(NamedTuple):\n    x: float\n    y: float\n"
        "pts = [Point(*p) for p in points]\nreturn max(pts, key=lambda p: p.x ** 2 + p.y ** 2)",
        ("points",),
        {"points": [[1, 2], [3, 1]]},
    ),
    (
        "sorted_dataclass_total_ordering",
        "from functools import total_ordering\n@total_ordering\nclass Version:\n    def __init__(self, s):\n"
        "        self.parts = tuple(int(p) for p in s.split('.'))\n    def __eq__(self, o):\n"
        "        return self.parts == o.parts\n    def __lt__(self, o):\n        return self.parts < o.parts\n"
        "return max(versions, key=Version)",
        ("versions",),
        {"versions": ["1.10.0", "1.9.3", "1.2"]},
    ),
    (
        "reserved_word_key",
        "return {'from': params['from'], 'class': params.get('class')}",
        (),
        {"from": "alice@example.com", "class": "vip"},
    ),
]
