"""Fixtures of the Python sandbox's tests."""

from __future__ import annotations

import collections
from collections.abc import Iterator

import pytest

from fnbox.sandboxes.python import inline
from fnbox.sandboxes.python.inline import MAX_MOVES


@pytest.fixture
def inline_runs(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Short runs go to the caller's loop thread (sandboxes.python.inline), from a clean slate."""
    monkeypatch.setattr(inline, "_enabled", False)  # put back after the test
    monkeypatch.setattr(inline, "_moves", collections.deque(maxlen=MAX_MOVES))
    monkeypatch.setattr(inline, "_paused_until", 0.0)
    inline.enable()
    yield
