"""Light counters and histograms expose exactly what prometheus-client's own would, for the same counts."""

from __future__ import annotations

import math
import threading

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from fnbox import metrics  # its import turns `_created` samples off, as the service runs
from fnbox.lightmetrics import LightCounter, LightHistogram
from fnbox.metrics import merged_exposition

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 1, 2.5, 10)
AMOUNTS = [0.0, 0.0004, 0.001, 0.0010001, 0.0025, 0.003, 0.7, 1.0, 2.5, 9.99, 10.0, 10.5, 1e9, -0.5, math.nan]


def _pair(registry: CollectorRegistry, light: bool) -> tuple[object, object, object]:
    counter_class, histogram_class = (LightCounter, LightHistogram) if light else (Counter, Histogram)
    first = counter_class(
        "fnbox_demo_requests", "Requests, by route and status", ["route", "status"], registry=registry
    )
    second = histogram_class("fnbox_demo_seconds", "Time taken", ["route"], buckets=BUCKETS, registry=registry)
    unused = counter_class("fnbox_demo_unused", "Never counted", ["kind"], registry=registry)
    return first, second, unused


def test_the_same_counts_give_the_same_exposition_as_prometheus_client() -> None:
    texts = []
    for light in (False, True):
        registry = CollectorRegistry(auto_describe=True)
        counter, histogram, _ = _pair(registry, light)
        for index, amount in enumerate(AMOUNTS):
            route = "/a" if index % 3 else "/b/{x}"
            counter.labels(route, 200 if index % 4 else 503).inc()  # type: ignore[attr-defined]
            counter.labels(route, "200").inc(2.5)  # type: ignore[attr-defined]
            histogram.labels(route).observe(amount)  # type: ignore[attr-defined]
        texts.append(generate_latest(registry).decode())
    assert texts[0] == texts[1]
    assert 'fnbox_demo_seconds_bucket{le="+Inf",route="/a"}' in texts[1]
    assert texts[1].count("fnbox_demo_unused") == 2  # its HELP and TYPE lines only, as prometheus-client's


def test_workers_samples_merge_into_light_families_as_into_prometheus_clients() -> None:
    worker = 'fnbox_runs_total{language="python",outcome="ok"} 3.0\n'
    before = metrics.RUNS.labels("python", "ok").value
    metrics.RUNS.labels("python", "ok").inc()
    merged = merged_exposition(["# TYPE fnbox_runs_total counter\n" + worker]).decode()
    assert f'fnbox_runs_total{{language="python",outcome="ok"}} {before + 4.0}' in merged


def test_a_counter_refuses_to_go_down_and_labels_must_all_be_given() -> None:
    counter, histogram, _ = _pair(CollectorRegistry(), True)
    with pytest.raises(ValueError):
        counter.labels("/a", "200").inc(-1)  # type: ignore[attr-defined]
    with pytest.raises(ValueError):
        counter.labels("/a")  # type: ignore[attr-defined]
    with pytest.raises(ValueError):
        LightCounter("fnbox_demo_plain", "Without labels", [], registry=CollectorRegistry())


def test_counts_from_several_threads_are_all_kept() -> None:
    counter, histogram, _ = _pair(CollectorRegistry(), True)

    def count() -> None:
        for _ in range(20_000):
            counter.labels("/a", "200").inc()  # type: ignore[attr-defined]
            histogram.labels("/a").observe(0.002)  # type: ignore[attr-defined]

    threads = [threading.Thread(target=count) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert counter.labels("/a", "200").value == 80_000  # type: ignore[attr-defined]
    assert histogram.labels("/a").counts[BUCKETS.index(0.0025)] == 80_000  # type: ignore[attr-defined]
