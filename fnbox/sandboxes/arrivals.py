"""The runs a worker process has read, for each sandbox, whose tasks have not yet taken their first step.

A worker reads its calls in chunks and starts a task for each; the tasks take their first
steps one after another in the loop's next turn. A JavaScript run that finds its isolate
free goes alone, and the runs for that isolate read with it then queue behind it and go in
a second eval once it ends. When the worker tells a run that more runs for its sandbox are
read and about to start, the run queues for a batch instead, and they all go out in one
eval (see js/sandbox.py). Runs of other sandboxes do not count: for a run that ends up
alone, a batch costs more than going alone.

The worker counts the runs here as it reads them and as each starts, and tells each run in
its own task (a context variable); outside a worker, nothing is counted or told.
"""

from __future__ import annotations

import collections
from collections.abc import Hashable
from contextvars import ContextVar

_unstarted: collections.Counter[Hashable] = collections.Counter()
_followed: ContextVar[bool] = ContextVar("fnbox_followed", default=False)


def read(sandbox: Hashable) -> None:
    """A run for `sandbox` was read; its task has yet to take its first step."""
    _unstarted[sandbox] += 1


def started(sandbox: Hashable) -> None:
    """A run for `sandbox` took its first step (or was cancelled before it)."""
    left = _unstarted[sandbox] - 1
    if left > 0:
        _unstarted[sandbox] = left
    else:
        del _unstarted[sandbox]


def coming(sandbox: Hashable) -> bool:
    """Whether runs for `sandbox` were read and have yet to take their first step."""
    return sandbox in _unstarted


def follow() -> None:
    """Tell the run of the current task that more runs for its sandbox are about to start."""
    _followed.set(True)


def followed() -> bool:
    """Whether the run of the current task was told that more runs for its sandbox are about to start."""
    return _followed.get()
