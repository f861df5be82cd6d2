import threading

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from fnbox.tallies import TalliedCounter, TalliedHistogram

BUCKETS = (0.001, 0.005, 0.01, 0.1, 1, 10)
#: Below every bound, on bounds, between them, above them all.
SECONDS = (0.0, 0.0004, 0.001, 0.0010001, 0.005, 0.05, 0.1, 0.99, 1, 10, 11.5, 3600)


def exposed(*families: object) -> str:
    registry = CollectorRegistry(auto_describe=True)
    for family in families:
        registry.register(family)  # type: ignore[arg-type]
    return generate_latest(registry).decode()


def test_a_tallied_counter_exposes_what_prometheus_clients_counter_does():
    theirs = Counter("fnbox_runs", "Runs", ["language", "outcome"], registry=None)
    ours = TalliedCounter("fnbox_runs", "Runs", ["language", "outcome"], registry=CollectorRegistry())
    for language, outcome, times in (("python", "ok", 3), ("javascript", "ok", 1), ("python", "TimeoutExceeded", 2)):
        for _ in range(times):
            theirs.labels(language, outcome).inc()
            ours.series(language, outcome).add()
    assert exposed(ours) == exposed(theirs)


def test_a_tallied_histogram_exposes_what_prometheus_clients_histogram_does():
    theirs = Histogram("fnbox_run_duration_seconds", "Time", ["language"], buckets=BUCKETS, registry=None)
    ours = TalliedHistogram(
        "fnbox_run_duration_seconds", "Time", ["language"], buckets=BUCKETS, registry=CollectorRegistry()
    )
    for index, seconds in enumerate(SECONDS):
        language = "python" if index % 3 else "javascript"
        theirs.labels(language).observe(seconds)
        ours.series(language).add(seconds)
    text = exposed(ours)
    assert text == exposed(theirs)
    assert 'fnbox_run_duration_seconds_bucket{language="python",le="1.0"}' in text


def test_a_family_with_no_series_yet_exposes_only_its_help_and_type():
    ours = TalliedHistogram("fnbox_x_seconds", "X", ["route"], buckets=BUCKETS, registry=CollectorRegistry())
    theirs = Histogram("fnbox_x_seconds", "X", ["route"], buckets=BUCKETS, registry=None)
    assert exposed(ours) == exposed(theirs)


def test_a_series_is_one_object_per_label_values_and_checks_their_number():
    counter = TalliedCounter("fnbox_c", "C", ["a", "b"], registry=CollectorRegistry())
    assert counter.series("x", "y") is counter.series("x", "y")
    with pytest.raises(ValueError):
        counter.series("x")


def test_buckets_must_be_given_in_order():
    with pytest.raises(ValueError):
        TalliedHistogram("fnbox_h", "H", [], buckets=(1, 0.5), registry=CollectorRegistry())


def test_updates_from_several_threads_are_all_counted():
    counter = TalliedCounter("fnbox_c", "C", [], registry=CollectorRegistry())
    histogram = TalliedHistogram("fnbox_h", "H", [], buckets=BUCKETS, registry=CollectorRegistry())
    count, each = 8, 20_000

    def update() -> None:
        series, timed = counter.series(), histogram.series()
        for _ in range(each):
            series.add()
            timed.add(0.002)

    threads = [threading.Thread(target=update) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert counter.series().value == count * each
    assert histogram.series().buckets[1] == count * each
    assert histogram.series().sum == pytest.approx(count * each * 0.002)
