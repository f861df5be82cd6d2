"""Labelled counters and histograms for what every request counts, at a fraction of prometheus-client's cost.

prometheus-client's `Counter.inc` and `Histogram.observe` check the metric, take a lock per
value (a histogram's bucket, count and sum each) and walk the buckets in Python: about
twenty Python calls a request for the HTTP and run metrics. Here a series keeps its numbers
in plain attributes under its family's one lock, a histogram finds its bucket by bisection,
and the registry is given the same families with the same samples in the same order as
prometheus-client's (without `_created` samples, which fnbox.metrics turns off).
"""

from __future__ import annotations

import bisect
import math
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

__all__ = ["LightCounter", "LightHistogram"]


class _Family(Collector):
    def __init__(self, name: str, documentation: str, labelnames: Sequence[str], registry: CollectorRegistry) -> None:
        if not labelnames:
            raise ValueError("a light metric is labelled (prometheus-client's own suits one without labels)")
        self.name, self.documentation, self.labelnames = name, documentation, tuple(labelnames)
        self._lock = threading.Lock()
        self._series: dict[tuple[str, ...], Any] = {}
        registry.register(self)

    def _labelled(self, values: tuple[Any, ...]) -> Any:
        key = tuple(str(value) for value in values)
        if len(key) != len(self.labelnames):
            raise ValueError(f"{self.name} takes the labels {', '.join(self.labelnames)}")
        with self._lock:
            series = self._series.get(key)
            if series is None:
                series = self._series[key] = self._new()
            return series

    def _new(self) -> Any:
        raise NotImplementedError

    def _family(self) -> Metric:
        raise NotImplementedError

    def describe(self) -> Iterator[Metric]:
        yield self._family()


class _CounterSeries:
    __slots__ = ("_lock", "value")

    def __init__(self, lock: threading.Lock) -> None:
        self._lock = lock
        self.value = 0.0

    def inc(self, amount: float = 1) -> None:
        if amount < 0:
            raise ValueError("Counters can only be incremented by non-negative amounts.")
        with self._lock:
            self.value += amount


class LightCounter(_Family):
    """A labelled counter: `labels(...)` gives a series with `inc`, as prometheus-client's `Counter`."""

    def labels(self, *values: Any) -> _CounterSeries:
        series: _CounterSeries = self._labelled(values)
        return series

    def _new(self) -> _CounterSeries:
        return _CounterSeries(self._lock)

    def _family(self) -> CounterMetricFamily:
        return CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)

    def collect(self) -> Iterator[Metric]:
        family = self._family()
        with self._lock:
            values = [(key, series.value) for key, series in self._series.items()]
        for key, value in values:
            family.add_metric(key, value)
        yield family


class _HistogramSeries:
    __slots__ = ("_bounds", "_lock", "counts", "sum")

    def __init__(self, lock: threading.Lock, bounds: list[float]) -> None:
        self._lock = lock
        self._bounds = bounds
        self.counts = [0.0] * len(bounds)
        self.sum = 0.0

    def observe(self, amount: float) -> None:
        index = bisect.bisect_left(self._bounds, amount)  # the first bucket whose bound is >= amount
        with self._lock:
            self.sum += amount
            if index < len(self._bounds) and amount <= self._bounds[index]:  # never for NaN, as prometheus-client
                self.counts[index] += 1


class LightHistogram(_Family):
    """A labelled histogram: `labels(...)` gives a series with `observe`, as prometheus-client's `Histogram`."""

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str],
        *,
        buckets: Sequence[float],
        registry: CollectorRegistry,
    ) -> None:
        bounds = sorted(float(bound) for bound in buckets)
        if not bounds or bounds[-1] != math.inf:
            bounds.append(math.inf)
        self._bounds = bounds
        self._les = [floatToGoString(bound) for bound in bounds]
        super().__init__(name, documentation, labelnames, registry)

    def labels(self, *values: Any) -> _HistogramSeries:
        series: _HistogramSeries = self._labelled(values)
        return series

    def _new(self) -> _HistogramSeries:
        return _HistogramSeries(self._lock, self._bounds)

    def _family(self) -> HistogramMetricFamily:
        return HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)

    def collect(self) -> Iterator[Metric]:
        family = self._family()
        with self._lock:
            taken = [(key, list(series.counts), series.sum) for key, series in self._series.items()]
        for key, counts, total in taken:
            cumulative, buckets = 0.0, []
            for le, count in zip(self._les, counts):
                cumulative += count
                buckets.append((le, cumulative))
            family.add_metric(key, buckets, total)
        yield family
