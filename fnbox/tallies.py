"""Counters and histograms that every call updates, kept as plain numbers.

prometheus_client's `Counter.inc()` and `Histogram.observe()` pass through several Python
calls and take a lock for each number they change (a histogram: its sum, then its bucket).
The four updates of a warm call in the server (its request and its run, each counted and
timed) came to about 6% of the instructions the server spends on the call; a worker times
each run's wait for its sandbox. A tally's update is one method call under one lock; when
scraped, a family of tallies becomes the same samples that prometheus_client's own Counter
or Histogram would give for the same updates.

    RUNS = TalliedCounter("fnbox_runs", "Function runs", ["language", "outcome"], registry=REGISTRY)
    RUNS.series("python", "ok").add()
"""

from __future__ import annotations

import bisect
import functools
import itertools
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Generic, TypeVar

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import INF, floatToGoString

__all__ = ["Counted", "TalliedCounter", "TalliedHistogram", "Timed"]

#: One lock for every tally: updates are a few bytecodes long, and threads rarely meet here.
_LOCK = threading.Lock()


class Counted:
    """One series of a counter."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0

    def add(self) -> None:
        with _LOCK:
            self.value += 1


class Timed:
    """One series of a histogram: its observations by bucket (the last one +Inf) and their sum."""

    __slots__ = ("bounds", "buckets", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.buckets = [0] * (len(bounds) + 1)
        self.sum = 0.0

    def add(self, seconds: float) -> None:
        # The first bucket whose bound is at least `seconds`: Prometheus buckets count `le` their bound.
        index = bisect.bisect_left(self.bounds, seconds)
        with _LOCK:
            self.buckets[index] += 1
            self.sum += seconds


Series = TypeVar("Series", Counted, Timed)


class _Tallied(Collector, Generic[Series]):
    """A family's series by label values; `new` makes a series at zero."""

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str],
        registry: CollectorRegistry,
        new: Callable[[], Series],
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = list(labelnames)
        self._new: Callable[[], Series] = new
        self._series: dict[tuple[str, ...], Series] = {}
        registry.register(self)

    def series(self, *labels: str) -> Series:
        """The series of these label values, made (at zero) on first use; callers may keep it."""
        found = self._series.get(labels)
        if found is None:
            if len(labels) != len(self.labelnames):
                raise ValueError(f"{self.name} has labels {self.labelnames}, given {labels}")
            with _LOCK:
                found = self._series.setdefault(labels, self._new())
        return found

    def _snapshot(self) -> list[tuple[tuple[str, ...], Series]]:
        with _LOCK:
            return list(self._series.items())


class TalliedCounter(_Tallied[Counted]):
    """A counter family (exposed as `<name>_total`) of `Counted` series."""

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str], registry: CollectorRegistry) -> None:
        super().__init__(name, documentation, labelnames, registry, Counted)

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for labels, series in self._snapshot():
            family.add_metric(list(labels), float(series.value))
        yield family


class TalliedHistogram(_Tallied[Timed]):
    """A histogram family of `Timed` series, with the buckets' upper bounds given (+Inf is added)."""

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str],
        buckets: Sequence[float],
        registry: CollectorRegistry,
    ) -> None:
        self.bounds = tuple(float(bound) for bound in buckets if bound != INF)
        if list(self.bounds) != sorted(set(self.bounds)):
            raise ValueError("bucket bounds must be given in increasing order, each once")
        self._les = [floatToGoString(bound) for bound in (*self.bounds, INF)]
        super().__init__(name, documentation, labelnames, registry, functools.partial(Timed, self.bounds))

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for labels, series in self._snapshot():
            with _LOCK:
                buckets, total = list(series.buckets), series.sum
            cumulative = itertools.accumulate(float(count) for count in buckets)
            family.add_metric(list(labels), list(zip(self._les, cumulative)), sum_value=total)
        yield family
