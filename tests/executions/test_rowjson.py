import json

import pytest

from fnbox.executions import rowjson

STANDARD = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))

VALUES = [
    None, True, 0, -7, 10**30, 1.5, -0.0, 1e-7, 1e16, float("nan"), float("inf"), float("-inf"),
    "", "Hello world", "hé \n \" \\ \u2028 \x00", "lone \ud800 surrogate", [], {}, [1, [2, [3]]],
    {"name": "world", "n": [1, 2.5, None]}, {1: "an integer key", 2.5: "a float key", None: "null", False: "f"},
    [{"level": "info", "message": "hi", "time": 1795428000123}], ("a", "tuple"),
]  # fmt: skip


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_the_text_is_the_standard_encoders(value):
    assert rowjson.dumps(value) == STANDARD.encode(value)


@pytest.mark.parametrize(
    "value",
    [object(), {(1, 2): "a tuple key"}, {"x": b"bytes"}, [{1, 2}]],
    ids=["object", "tuple key", "bytes", "set"],  # stable ids: xdist's workers must collect the same tests
)
def test_what_the_standard_encoder_refuses_is_refused_the_same_way(value):
    with pytest.raises(TypeError) as standard:
        STANDARD.encode(value)
    with pytest.raises(TypeError) as ours:
        rowjson.dumps(value)
    assert str(ours.value) == str(standard.value)


def test_a_circular_value_is_refused_as_by_the_standard_encoder():
    value: list = []
    value.append(value)
    with pytest.raises(ValueError, match="Circular reference detected"):
        rowjson.dumps(value)
    assert rowjson.dumps([value[0] is value]) == "[true]"  # the refusal leaves nothing behind
