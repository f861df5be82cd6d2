"""The calls a worker process has read whose tasks have not yet taken their first step.

A worker reads its calls in chunks and starts a task for each; the tasks take their first
steps one after another in the loop's next turn. So when a run takes its first step and
finds its JavaScript isolate free, the calls read with it may be runs of the same workspace
about to ask for that isolate too. Then it queues for a batch instead of going alone, and
they go out with it in one eval rather than in a second one after it (see js/sandbox.py).

The worker owns the set and watches it here; sandboxes only ask whether it is empty.
Outside a worker (tests, sandboxes in the server process) nothing is watched.
"""

from __future__ import annotations

from collections.abc import Collection

_unstarted: Collection[object] = ()


def watch(unstarted: Collection[object]) -> None:
    """The worker's live collection of calls read and not yet started."""
    global _unstarted
    _unstarted = unstarted


def coming() -> bool:
    """Whether calls this process has read are yet to take their first step."""
    return bool(_unstarted)
