"""What operators watch: every Prometheus metric of fnbox, declared once, in its own registry.

Any layer increments these (this module imports nothing of fnbox but `fnbox.tallies`, which
keeps the families every call updates; the rest are prometheus_client's own). A worker process
counts in its own copy of `REGISTRY`; the server asks each worker for its exposition text over the
existing frames (`{"op": "metrics"}`) when /metrics is scraped and adds the workers' samples
to its own (`merged_exposition`), so counters of sandboxes, wherever they run, reach one endpoint.

Labels never carry workspace or function names: those go only into the `fnbox_workspace_*`
families, which exist when METRICS_PER_WORKSPACE=yes (`per_workspace`).

The quarantine sets `QUARANTINED_WORKSPACES`; the guarded client of outbound requests counts
`EGRESS_REQUESTS` by outcome: `answered`, `refused` (by the egress policy), `timed_out`, `failed`.
"""

from __future__ import annotations

import time
import weakref
from collections import defaultdict
from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from fnbox.tallies import Counted, TalliedCounter, TalliedHistogram, Timed

__all__ = ["CONTENT_TYPE", "REGISTRY", "merged_exposition", "outcome_of", "per_workspace"]

disable_created_metrics()  # a `_created` series per counter doubles the scrape, and sums of them mean nothing
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
REGISTRY = CollectorRegistry(auto_describe=True)

#: Seconds, from a quick call to a long run.
_RUN_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10)

RUNS = TalliedCounter(
    "fnbox_runs",
    "Function runs, by language and outcome (ok, or the error code)",
    ["language", "outcome"],
    registry=REGISTRY,
)
RUN_DURATION = TalliedHistogram(
    "fnbox_run_duration_seconds",
    "The function's own running time",
    ["language"],
    buckets=_RUN_BUCKETS,
    registry=REGISTRY,
)
EXECUTIONS_QUEUED = Gauge("fnbox_executions_in_flight", "Asynchronous executions waiting or running", registry=REGISTRY)
EXECUTION_WAIT = Histogram(
    "fnbox_execution_wait_seconds",
    "Time an asynchronous execution waited between its acceptance and its start",
    buckets=_RUN_BUCKETS,
    registry=REGISTRY,
)
SANDBOX_WAIT = TalliedHistogram(
    "fnbox_sandbox_wait_seconds",
    "Time a run queued for its warm sandbox (one run at a time per sandbox)",
    ["language"],
    buckets=_RUN_BUCKETS,
    registry=REGISTRY,
)
COMPILES = Counter(
    "fnbox_compiles",
    "Workspace versions compiled into a sandbox, by outcome (ok, error)",
    ["language", "outcome"],
    registry=REGISTRY,
)
COMPILE_DURATION = Histogram(
    "fnbox_compile_duration_seconds",
    "Time to compile a workspace version",
    ["language"],
    buckets=_RUN_BUCKETS,
    registry=REGISTRY,
)
WORKER_RESTARTS = Counter(
    "fnbox_worker_restarts", "Worker processes restarted, by reason", ["language", "reason"], registry=REGISTRY
)
QUARANTINED_WORKSPACES = Gauge("fnbox_quarantined_workspaces", "Workspaces in quarantine", registry=REGISTRY)
EGRESS_REQUESTS = Counter(
    "fnbox_egress_requests", "Outbound requests of runs, by outcome", ["outcome"], registry=REGISTRY
)
RECORDS_WRITTEN = Counter("fnbox_records_written", "Execution records written", registry=REGISTRY)
RECORDS_DROPPED = Counter(
    "fnbox_records_dropped", "Execution records dropped (queue full, or the store failed)", registry=REGISTRY
)
LEASE_HELD = Gauge(
    "fnbox_database_lease_held", "1 while runs here need no query of the shared database (its lease)", registry=REGISTRY
)
CHANGE_WAITS = Counter(
    "fnbox_change_waits",
    "Saves that waited for the other instances: every one acknowledged, or the bound of a lease passed first",
    ["outcome"],
    registry=REGISTRY,
)
HTTP_REQUESTS = TalliedCounter(
    "fnbox_http_requests",
    "HTTP requests, by route template, method and status",
    ["route", "method", "status"],
    registry=REGISTRY,
)
HTTP_DURATION = TalliedHistogram(
    "fnbox_http_request_duration_seconds",
    "HTTP request handling time, by route template",
    ["route"],
    buckets=_HTTP_BUCKETS,
    registry=REGISTRY,
)

_per_workspace: dict[str, Any] = {}


def per_workspace(enabled: bool) -> None:
    """METRICS_PER_WORKSPACE: add (or take away) the families labelled by workspace and function."""
    if not enabled:
        for family in _per_workspace.values():
            REGISTRY.unregister(family)
        _per_workspace.clear()
        return
    if _per_workspace:
        return
    _per_workspace["runs"] = Counter(
        "fnbox_workspace_runs",
        "Runs by workspace, function and outcome",
        ["workspace", "function", "outcome"],
        registry=REGISTRY,
    )
    _per_workspace["duration"] = Histogram(
        "fnbox_workspace_run_duration_seconds",
        "The function's own running time, by workspace and function",
        ["workspace", "function"],
        buckets=_RUN_BUCKETS,
        registry=REGISTRY,
    )


#: The two series of a run, by (language, outcome): one look-up instead of two.
_RUN_SERIES: dict[tuple[str, str], tuple[Counted, Timed]] = {}


def count_run(language: str, outcome: str, seconds: float | None, workspace: str, function: str) -> None:
    series = _RUN_SERIES.get((language, outcome))
    if series is None:
        series = _RUN_SERIES[language, outcome] = RUNS.series(language, outcome), RUN_DURATION.series(language)
    series[0].add()
    if seconds is not None:
        series[1].add(seconds)
    if _per_workspace:
        _per_workspace["runs"].labels(workspace, function, outcome).inc()
        if seconds is not None:
            _per_workspace["duration"].labels(workspace, function).observe(seconds)


def restart_reason(death: str | None) -> str:
    """A worker's death (see sandboxes.supervisor) as a label with few values."""
    text = (death or "exited").lower()
    for reason in ("timeout", "memory", "recycl", "neighbour", "protocol"):
        if text.startswith(reason) or reason in text.split(":")[0]:
            return {"recycl": "recycled", "neighbour": "neighbour_overran"}.get(reason, reason)
    return "exited"


def outcome_of(error: BaseException | None) -> str:
    return "ok" if error is None else str(getattr(error, "code", type(error).__name__))


class _WarmSandboxes(Collector):
    """Warm sandboxes of the pools of this process and the calls queued on them, by language, when scraped."""

    def __init__(self) -> None:
        self.pools: weakref.WeakSet[Any] = weakref.WeakSet()

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily("fnbox_warm_sandboxes", "Warm sandboxes, by language", labels=["language"])
        depth = GaugeMetricFamily(
            "fnbox_sandbox_queue_depth", "Calls queued on or running in warm sandboxes", labels=["language"]
        )
        counts: dict[str, int] = defaultdict(int)
        holders: dict[str, int] = defaultdict(int)
        for pool in list(self.pools):
            for language, calls in pool.warm_load():
                counts[language] += 1
                holders[language] += calls
        for language in sorted(counts):
            family.add_metric([language], counts[language])
            depth.add_metric([language], holders[language])
        yield family
        yield depth


WARM = _WarmSandboxes()
REGISTRY.register(WARM)


def watch_pool(pool: Any) -> None:
    """Count a pool's warm sandboxes and their queues (it has `warm_load()`)."""
    WARM.pools.add(pool)


class timed:
    """`with timed() as t: ...; t.seconds`."""

    def __enter__(self) -> timed:
        self.started = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.started


def exposition() -> bytes:
    return generate_latest(REGISTRY)


def merged_exposition(others: Iterable[str]) -> bytes:
    """This process's metrics plus the samples of `others` (workers' exposition texts), summed by series."""
    families: dict[str, Metric] = {}
    sums: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]] = {}

    def add(family: Metric) -> None:
        if family.name not in families:
            families[family.name] = Metric(family.name, family.documentation, family.type, family.unit)
            sums[family.name] = {}
        series = sums[family.name]
        for sample in family.samples:
            key = (sample.name, tuple(sample.labels.items()))
            series[key] = series.get(key, 0.0) + sample.value

    for family in REGISTRY.collect():
        add(family)
    for text in others:
        for family in text_string_to_metric_families(text):
            add(family)
    for name, merged in families.items():
        for (sample_name, labels), value in sums[name].items():
            merged.add_sample(sample_name, dict(labels), value)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Fixed(list(families.values())))
    return generate_latest(registry)


class _Fixed(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self.families)
