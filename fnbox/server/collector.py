"""The cyclic garbage collector of the server process, tuned for many short requests.

CPython collects its youngest generation every 700 allocations of container objects. A
warm run allocates a few hundred, so a collection came every few requests and walked all
that was alive then: the requests in flight and the execution records waiting for their
batch. Every 20,000 allocations it does the same work far less often (about 5 µs less
server CPU per warm call, measured with `bench/recording.py`); cycles are still
collected, a little later. Embedders keep their own process's settings: only
`fnbox serve` calls `tune()`.
"""

from __future__ import annotations

import gc

__all__ = ["YOUNG_THRESHOLD", "tune"]

#: Allocations (less deallocations) of container objects between two collections of the youngest generation.
YOUNG_THRESHOLD = 20_000


def tune() -> None:
    """Collect the youngest generation every YOUNG_THRESHOLD allocations; the older ones as before."""
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, older, oldest)
