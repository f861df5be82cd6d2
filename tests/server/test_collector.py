"""The server process collects cyclic garbage less often than CPython's default, and still collects it."""

import gc

import pytest

from fnbox.server import collector


@pytest.fixture
def restored():
    before = gc.get_threshold()
    yield
    gc.set_threshold(*before)


def test_the_youngest_generation_is_collected_less_often_and_the_others_as_before(restored):
    _, older, oldest = gc.get_threshold()
    collector.tune()
    assert gc.get_threshold() == (collector.YOUNG_THRESHOLD, older, oldest)
    assert collector.YOUNG_THRESHOLD > 700  # CPython's default


def test_cycles_are_still_collected(restored):
    collector.tune()

    class Node:
        pass

    collected = []
    gc.callbacks.append(lambda phase, info: collected.append(info["collected"]) if phase == "stop" else None)
    try:
        for _ in range(2 * collector.YOUNG_THRESHOLD):  # enough allocations for a collection on their own
            node = Node()
            node.self = node  # a cycle: only the collector frees it
    finally:
        gc.callbacks.pop()
    assert sum(collected) > 0
