"""The harness itself: a plain failure passes through it, a cheap one keeps neighbours warm."""

import pytest

pytestmark = pytest.mark.slow  # a real server, worker processes or a subprocess


def test_a_thrown_error_is_contained_and_cheap(service):
    outcome = service.attack(
        "javascript", "throw new Error('x')", expect=("FunctionError",), keeps_neighbours_warm=True
    )
    assert outcome.status == 500


def test_an_infinite_loop_is_contained(service):
    service.attack("python", "while True:\n    pass", expect=("TimeoutExceeded",))
