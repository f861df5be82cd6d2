"""The real-world suite: each body of tests/sandboxes/js/realworld.py answers on fnbox what it
answers on plain Node.js (run here as a subprocess to compute the expected values)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.sandboxes.js import realworld

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def outcomes() -> tuple[dict[str, Any], dict[str, Any]]:
    return realworld.node_results(), realworld.fnbox_results()


def test_the_suite_is_big_enough() -> None:
    assert len(realworld.BODIES) >= 40


@pytest.mark.parametrize("name", sorted(realworld.BODIES))
def test_fnbox_answers_as_node_does(name: str, outcomes: tuple[dict[str, Any], dict[str, Any]]) -> None:
    node, fnbox = outcomes
    assert node[name]["ok"], f"the body fails on Node itself: {node[name]}"
    assert fnbox[name] == node[name]
