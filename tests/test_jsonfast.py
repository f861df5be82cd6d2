"""jsonfast reads and writes what the standard library does, however orjson differs."""

from __future__ import annotations

import json
import math

import pytest

from fnbox import jsonfast

TEXTS = [
    b'{"parameters":{"name":"world"}}',
    b'{"a":1,"a":2}',
    b"123456789012345678901234567890",
    b"-123456789012345678901234567890",
    b"[0.1000000000000000055511151231257827, 1e400, -1e400]",
    b'{"result":"Hello world","logs":[],"duration":0.0036750006984220818}',
    b"[1.00000000000000000000000001e5, 12345678901234567890.5, 1e0000000000000000000001]",
    b'[0.00012345678901234567890123, -1234567890123456789012, "x.1234567890123456789012"]',
    b"12345678901234567890",
    b'"\\ud800"',
    b'"\\udc00\\ud800"',
    b"\xef\xbb\xbf{}",
    b" [1, -0, -0.0, 1E5, null, true] ",
    b'"\\u0000\\u2028\xc3\xa9"',
    b"[" * 2000 + b"]" * 2000,
]


@pytest.mark.parametrize("text", TEXTS)
def test_loads_gives_what_json_gives(text):
    try:
        expected = json.loads(text)
    except RecursionError:
        with pytest.raises(RecursionError):
            jsonfast.loads(text)
        return
    assert repr(jsonfast.loads(text)) == repr(expected)


def test_nan_and_infinity_are_read_as_json_reads_them():
    value = jsonfast.loads(b"[NaN, Infinity, -Infinity]")
    assert math.isnan(value[0]) and value[1:] == [math.inf, -math.inf]


@pytest.mark.parametrize("text", [b"{", b"[1,]", b"\xff", b"{'a': 1}", b""])
def test_invalid_json_fails_with_jsons_own_error(text):
    with pytest.raises(ValueError) as caught:
        json.loads(text)
    with pytest.raises(ValueError) as fast:
        jsonfast.loads(text)
    assert str(fast.value) == str(caught.value)


@pytest.mark.parametrize(
    "value",
    [
        {"result": "Hello world", "logs": [], "duration": 0.04},
        {"a": None, "b": [None, "null"]},
        {1: "int key", "2": 2},
        2**70,
        -(2**70),
        [1e16, 1e-7, -0.0, 0.1],
        "\x1f\u2028é",
    ],
)
def test_dumps_gives_the_same_json_as_json(value):
    expected = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    assert json.loads(jsonfast.dumps(value)) == json.loads(expected)


def test_nan_is_written_as_json_writes_it_or_refused():
    assert jsonfast.dumps({"x": math.nan, "y": math.inf}) == b'{"x":NaN,"y":Infinity}'
    with pytest.raises(ValueError):
        jsonfast.dumps({"x": math.nan}, allow_nan=False)


def test_a_lone_surrogate_cannot_be_written():
    with pytest.raises(UnicodeEncodeError):
        jsonfast.dumps({"x": "\ud800"})


def test_what_json_refuses_stays_refused():
    class Point:
        pass

    with pytest.raises(TypeError):
        jsonfast.dumps({"p": Point()})
    import datetime

    with pytest.raises(TypeError):
        jsonfast.dumps(datetime.datetime(2026, 1, 1))
