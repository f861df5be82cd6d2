"""The measurements, one function per section, each returning plain data for the report.

Every service is reached over HTTP only, with the same workspace documents, so fnbox, the
ceiling, the Node peers and the process-per-call server answer the same calls.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import servers
from loadgen import Client, WrkResult, post_many, wrk, wrk_total

JS_HELLO = {"code": 'return "Hello " + name;', "parameters": {"name": {"type": "string"}}}
PY_HELLO = {"language": "python", "code": 'return "Hello " + name', "parameters": {"name": {"type": "string"}}}
HELLO = {"functions": {"hello": JS_HELLO, "pyhello": PY_HELLO}}
FUNCTION = {"javascript": "hello", "python": "pyhello"}
SPEC = {"javascript": JS_HELLO, "python": PY_HELLO}
ANSWER = "Hello world"

JS_FIB = "function fib(n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }\n"
PY_FIB = "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n"
FIB_N = 25
FIB = {
    "functions": {
        "fib": {"code": JS_FIB + "return fib(n);", "parameters": {"n": {"type": "integer", "default": FIB_N}}},
        "pyfib": {
            "language": "python",
            "code": PY_FIB + "return fib(n)",
            "parameters": {"n": {"type": "integer", "default": FIB_N}},
        },
    }
}

#: (label, kind, language) of each series; the ceiling runs no language.
WARM_TARGETS = [
    ("fnbox", "fnbox", "javascript"),
    ("fnbox", "fnbox", "python"),
    ("fnbox before", "fnbox-before", "javascript"),
    ("fnbox before", "fnbox-before", "python"),
    ("ceiling", "ceiling", "none"),
    ("vm2 peer", "vm2", "javascript"),
    ("isolated-vm peer", "isolated-vm", "javascript"),
    ("process per call", "oneshot", "javascript"),
    ("process per call", "oneshot", "python"),
]
#: Process-per-call runs get at least this long: 64 connections start 64 processes at once.
ONESHOT_MIN_DURATION = 3.0
SANDBOX_TARGETS = [
    ("fnbox", "fnbox", "javascript"),
    ("fnbox", "fnbox", "python"),
    ("vm2 peer", "vm2", "javascript"),
    ("isolated-vm peer", "isolated-vm", "javascript"),
]
COLD_TARGETS = [
    *SANDBOX_TARGETS[:2],
    ("fnbox before", "fnbox-before", "javascript"),
    ("fnbox before", "fnbox-before", "python"),
    *SANDBOX_TARGETS[2:],
]
#: The series of each section that runs against services started once for all of them.
SHARED_TARGETS = {"warm": WARM_TARGETS, "cpu": SANDBOX_TARGETS, "cold": COLD_TARGETS, "spread": SANDBOX_TARGETS}


@dataclass
class Plan:
    runs: int = 3
    duration: float = 3
    warmup: float = 1
    connections: tuple[int, ...] = (1, 16, 64)
    spread: tuple[int, ...] = (1, 10, 100, 1000)
    spread_connections: int = 16
    memory_counts: tuple[int, ...] = (1, 100, 500, 1000)
    memory_budget_mb: float = 4000
    cold_samples: int = 10
    fib_runs: int = 20
    leak_runs: int = 100_000
    log_dir: Path = Path(".")
    kinds: tuple[str, ...] = servers.KINDS
    progress: Callable[[str], None] = field(default=lambda message: print(message, flush=True))

    @classmethod
    def quick(cls, **changes: Any) -> Plan:
        fast = dict(
            runs=1, duration=1, warmup=1, memory_counts=(1, 10, 100), cold_samples=3, fib_runs=5, leak_runs=10_000
        )
        return cls(**{**fast, **changes})

    def targets(self, targets: list[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
        return [target for target in targets if target[1] in self.kinds]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def function_of(kind: str, language: str) -> str:
    return "hello" if language == "none" else FUNCTION[language]


def check_hello(service: servers.Service, workspace: str, function: str) -> None:
    status, answer = Client(service.port).post(
        f"/v2/functions/{workspace}/run/{function}", {"parameters": {"name": "world"}}
    )
    if status != 200 or answer.get("result") != ANSWER:
        raise RuntimeError(f"{service.kind} {workspace}/{function} answered {status} {answer}")


def save(service: servers.Service, workspace: str, document: dict[str, Any]) -> None:
    status, answer = Client(service.port).post(f"/v2/functions/{workspace}", document)
    if status != 200:
        raise RuntimeError(f"{service.kind} refused to save {workspace}: {status} {answer}")


def summarize(results: list[WrkResult]) -> dict[str, Any]:
    return {
        "rps": median([r.rps for r in results]),
        "p50_ms": median([r.p50_ms for r in results]),
        "p99_ms": median([r.p99_ms for r in results]),
        "errors": sum(r.errors for r in results),
        "requests": sum(r.requests for r in results),
        "runs": [r.as_dict() for r in results],
    }


def warm(plan: Plan, services: dict[str, servers.Service]) -> list[dict[str, Any]]:
    """Section 2: warm hello at each connection count; each figure the median of `plan.runs`.

    Repetitions go round all the series in turn, so a noisy moment on a shared machine
    does not fall on one series only.
    """
    targets = plan.targets(WARM_TARGETS)
    for kind in {kind for _, kind, _ in targets}:
        save(services[kind], "bench", HELLO)
    for label, kind, language in targets:
        check_hello(services[kind], "bench", function_of(kind, language))
        plan.progress(f"  warm-up {label} {language}")
        wrk(
            services[kind].url(f"/v2/functions/bench/run/{function_of(kind, language)}"),
            connections=16,
            duration=plan.warmup,
        )
        services[kind].settle()
    results: dict[tuple[int, int], list[WrkResult]] = {}
    for rep in range(plan.runs):
        for index, (label, kind, language) in enumerate(targets):
            url = services[kind].url(f"/v2/functions/bench/run/{function_of(kind, language)}")
            duration = max(plan.duration, ONESHOT_MIN_DURATION) if kind == "oneshot" else plan.duration
            for connections in plan.connections:
                plan.progress(f"  run {rep + 1}/{plan.runs}: {label} {language} at {connections} connections")
                results.setdefault((index, connections), []).append(
                    wrk(url, connections=connections, duration=duration)
                )
                services[kind].settle()
    return [
        {"target": label, "language": language, "connections": connections, **summarize(results[index, connections])}
        for index, (label, kind, language) in enumerate(targets)
        for connections in plan.connections
    ]


def cold(plan: Plan, services: dict[str, servers.Service]) -> list[dict[str, Any]]:
    """Section 3: from the start of a save of a new workspace to the end of its first run."""
    rows = []
    for label, kind, language in plan.targets(COLD_TARGETS):
        client = Client(services[kind].port)
        totals, saves, firsts, seconds = [], [], [], []
        for sample in range(plan.cold_samples):
            name = f"cold{language[:2]}{sample}"
            started = time.perf_counter()
            status, answer = client.post(f"/v2/functions/{name}", {"functions": {"f": SPEC[language]}})
            saved = time.perf_counter()
            status2, answer2 = client.post(f"/v2/functions/{name}/run/f", {"parameters": {"name": "world"}})
            ran = time.perf_counter()
            client.post(f"/v2/functions/{name}/run/f", {"parameters": {"name": "world"}})
            again = time.perf_counter()
            if status != 200 or status2 != 200 or answer2.get("result") != ANSWER:
                raise RuntimeError(f"{label} cold start failed: {status} {answer} / {status2} {answer2}")
            totals.append((ran - started) * 1000)
            saves.append((saved - started) * 1000)
            firsts.append((ran - saved) * 1000)
            seconds.append((again - ran) * 1000)
        rows.append(
            {
                "target": label,
                "language": language,
                "samples": plan.cold_samples,
                "cold_ms": median(totals),
                "cold_max_ms": max(totals),
                "save_ms": median(saves),
                "first_run_ms": median(firsts),
                "warm_run_ms": median(seconds),
            }
        )
        plan.progress(f"  cold start {label} {language}: {median(totals):.1f} ms")
    return rows


def cpu(plan: Plan, services: dict[str, servers.Service]) -> list[dict[str, Any]]:
    """Section 6: recursive fib(25), in the sandboxes and in plain node / python3."""
    rows = []
    for label, kind, language in plan.targets(SANDBOX_TARGETS):
        save(services[kind], "fib", FIB)
        client = Client(services[kind].port)
        function = "fib" if language == "javascript" else "pyfib"
        durations, walls = [], []
        for run in range(3 + plan.fib_runs):
            started = time.perf_counter()
            status, answer = client.post(f"/v2/functions/fib/run/{function}", {"parameters": {"n": FIB_N}})
            wall = (time.perf_counter() - started) * 1000
            if status != 200 or answer.get("result") != 75025:
                raise RuntimeError(f"{label} fib answered {status} {answer}")
            if run >= 3:
                durations.append(answer["duration"])
                walls.append(wall)
        rows.append({"target": label, "language": language, "duration_ms": median(durations), "wall_ms": median(walls)})
    for language, argv in (
        ("javascript", ["node", "-e", _node_fib(plan.fib_runs)]),
        ("python", [_plain_python(), "-c", _python_fib(plan.fib_runs)]),
    ):
        times = json.loads(subprocess.run(argv, capture_output=True, text=True, check=True).stdout)
        rows.append(
            {
                "target": f"plain {'node' if language == 'javascript' else 'python3'}",
                "language": language,
                "duration_ms": median(times),
                "wall_ms": float("nan"),
            }
        )
    for row in rows:
        plain = next(r for r in rows if r["target"].startswith("plain") and r["language"] == row["language"])
        row["ratio_to_plain"] = row["duration_ms"] / plain["duration_ms"]
    return rows


def _plain_python() -> str:
    return getattr(sys, "_base_executable", sys.executable)


def _node_fib(runs: int) -> str:
    return (
        JS_FIB + "const { performance } = require('node:perf_hooks'); const times = [];"
        f"for (let i = 0; i < {3 + runs}; i++) {{ const t = performance.now(); fib({FIB_N});"
        "times.push(performance.now() - t); } console.log(JSON.stringify(times.slice(3)));"
    )


def _python_fib(runs: int) -> str:
    return (
        PY_FIB + "import json, time\ntimes = []\n"
        f"for i in range({3 + runs}):\n    t = time.perf_counter(); fib({FIB_N}); "
        "times.append((time.perf_counter() - t) * 1000)\nprint(json.dumps(times[3:]))\n"
    )


def spread(plan: Plan, services: dict[str, servers.Service]) -> list[dict[str, Any]]:
    """Section 5: calls spread at random over n workspaces, with the default LRU of 500."""
    rows = []
    targets = plan.targets(SANDBOX_TARGETS)
    most = max(plan.spread)
    for label, kind, language in targets:
        prefix = f"s{language[:2]}"
        plan.progress(f"  saving {most} workspaces on {label} {language}")
        answers = post_many(
            services[kind].port,
            [(f"/v2/functions/{prefix}{i}", {"functions": {FUNCTION[language]: SPEC[language]}}) for i in range(most)],
        )
        if any(status != 200 for status, _ in answers):
            raise RuntimeError(f"{label}: saving the spread workspaces failed: {answers[:3]}")
    for count in plan.spread:
        for label, kind, language in targets:
            prefix, function = f"s{language[:2]}", FUNCTION[language]
            service = services[kind]
            if count <= 500:  # those fit the LRU: warm them all first
                post_many(
                    service.port,
                    [
                        (f"/v2/functions/{prefix}{i}/run/{function}", {"parameters": {"name": "w"}})
                        for i in range(count)
                    ],
                )
            url = service.url(f"/v2/functions/{prefix}0/run/{function}")
            wrk(url, connections=plan.spread_connections, duration=plan.warmup, spread=(count, prefix, function))
            results = []
            for rep in range(plan.runs):
                plan.progress(f"  run {rep + 1}/{plan.runs}: {label} {language} over {count} workspaces")
                results.append(
                    wrk(
                        url,
                        connections=plan.spread_connections,
                        duration=plan.duration,
                        spread=(count, prefix, function),
                    )
                )
            rows.append({"target": label, "language": language, "workspaces": count, **summarize(results)})
    return rows


def memory(plan: Plan) -> list[dict[str, Any]]:
    """Section 4: service memory with n warm workspaces, each saved and run once.

    Each series gets a fresh service with an LRU of the largest count, so all stay warm.
    A series stops before a step that would take the service past the memory budget
    (extrapolated from the steps so far) and records the estimate instead.
    """
    rows = []
    budget = min(plan.memory_budget_mb, servers.available_mb() * 0.5)
    env = {"FUNCTIONS_WORKERS_MAX_LRU": str(max(plan.memory_counts))}
    for label, kind, language in plan.targets(SANDBOX_TARGETS):
        code = {"javascript": "return n + 1;", "python": "return n + 1"}[language]
        spec = {"language": language, "code": code, "parameters": {"n": {"type": "integer"}}}
        service = servers.start(kind, plan.log_dir, env=env, tag=f"-memory-{language}")
        try:
            time.sleep(1)
            rss, pss, procs = service.memory()
            points = [{"workspaces": 0, "rss_mb": rss, "pss_mb": pss, "processes": procs, "measured": True}]
            estimates: list[dict[str, Any]] = []
            made = 0
            for count in plan.memory_counts:
                slope = _per_sandbox(points) / 1024
                estimate = points[-1]["rss_mb"] + slope * (count - made)  # points[-1] was measured at `made`
                if slope and (estimate > budget or estimate - points[-1]["rss_mb"] > servers.available_mb() - 2000):
                    plan.progress(
                        f"  memory {label} {language}: {count} workspaces would need ~{estimate:.0f} MB,"
                        f" over the budget of {budget:.0f} MB: estimated, not measured"
                    )
                    estimates.append(
                        {
                            "workspaces": count,
                            "rss_mb": estimate,
                            "pss_mb": float("nan"),
                            "processes": procs,
                            "measured": False,
                        }
                    )
                    continue
                names = [f"m{i}" for i in range(made, count)]
                answers = post_many(service.port, [(f"/v2/functions/{n}", {"functions": {"f": spec}}) for n in names])
                answers += post_many(
                    service.port, [(f"/v2/functions/{n}/run/f", {"parameters": {"n": 1}}) for n in names]
                )
                if any(status != 200 for status, _ in answers):
                    raise RuntimeError(
                        f"{label} {language}: a save or first run failed: {next(a for a in answers if a[0] != 200)}"
                    )
                made = count
                time.sleep(0.5)
                rss, pss, procs = service.memory()
                points.append({"workspaces": count, "rss_mb": rss, "pss_mb": pss, "processes": procs, "measured": True})
                plan.progress(f"  memory {label} {language}: {count} warm workspaces, RSS {rss:.0f} MB")
        finally:
            service.stop()
        rows.append(
            {
                "target": label,
                "language": language,
                "points": points + estimates,
                "budget_mb": budget,
                "per_sandbox_kb": _per_sandbox(points),
            }
        )
    return rows


def _slope(points: list[dict[str, Any]]) -> float:
    """MB per workspace between the first warm point and the last measured one."""
    measured = [p for p in points if p["measured"] and p["workspaces"] > 0]
    if len(measured) < 2:
        return 0.0
    first, last = measured[0], measured[-1]
    return (last["rss_mb"] - first["rss_mb"]) / (last["workspaces"] - first["workspaces"])


def _per_sandbox(points: list[dict[str, Any]]) -> float:
    """KB per workspace from the second warm count on: the first ones also start an engine in
    each worker process (fnbox starts V8 in a JavaScript worker with its first sandbox)."""
    measured = [p for p in points if p["measured"] and p["workspaces"] > 0]
    return _slope(measured[1:]) * 1024 if len(measured) > 2 else _slope(points) * 1024


def leak(plan: Plan) -> dict[str, Any]:
    """Section 7: fnbox's memory after warm-up, then after `leak_runs` warm runs per language."""
    service = servers.start("fnbox", plan.log_dir, tag="-leak")
    try:
        save(service, "bench", HELLO)
        for function in FUNCTION.values():
            check_hello(service, "bench", function)
            wrk_total(service.url(f"/v2/functions/bench/run/{function}"), connections=16, count=5000)
        time.sleep(1)
        steps = [{"step": "after 5,000 warm-up runs per language", **_memory_of(service)}]
        for language, function in FUNCTION.items():
            plan.progress(f"  {plan.leak_runs} warm runs of {language} hello")
            result = wrk_total(service.url(f"/v2/functions/bench/run/{function}"), connections=16, count=plan.leak_runs)
            time.sleep(1)
            steps.append(
                {
                    "step": f"after {result.requests:,} {language} runs ({result.rps:.0f}/s, {result.errors} errors)",
                    **_memory_of(service),
                }
            )
        return {"runs": plan.leak_runs, "steps": steps}
    finally:
        service.stop()


def _memory_of(service: servers.Service) -> dict[str, Any]:
    rss, pss, procs = service.memory()
    return {"rss_mb": rss, "pss_mb": pss, "processes": procs, "by_process": servers.process_table(service.pid)}


def machine() -> dict[str, Any]:
    """The facts a reader needs to compare figures across machines."""

    def run(*argv: str) -> str:
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=10)
            if done.returncode != 0 and argv[0] != "wrk":  # wrk --version exits 1
                return "missing"
            return (done.stdout.strip() or done.stderr.strip()).splitlines()[0]
        except (OSError, IndexError):
            return "missing"

    def package(name: str) -> str:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    def node_package(peer: str, name: str) -> str:
        path = servers.BENCH / "peers" / peer / "node_modules" / name / "package.json"
        return json.loads(path.read_text())["version"] if path.exists() else "not installed"

    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory = next(
        line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")
    )
    commit = run("git", "-C", str(servers.fnbox_dir), "rev-parse", "--short", "HEAD")
    dirty = run("git", "-C", str(servers.fnbox_dir), "status", "--porcelain", "--untracked-files=no")
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(int(memory) / 2**20, 1),
        "load_average": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "node": run("node", "--version"),
        "wrk": run("wrk", "--version"),
        "fnbox": f"{servers.fnbox_dir}: {'commit ' + commit if commit != 'missing' else 'not a git checkout'}"
        f"{' with uncommitted changes' if dirty not in ('', 'missing') else ''}",
        "mini-racer": package("mini-racer"),
        "RestrictedPython": package("RestrictedPython"),
        "starlette": package("starlette"),
        "uvicorn": package("uvicorn"),
        "uvicorn HTTP parser": "httptools" if package("httptools") != "not installed" else "h11 (pure Python)",
        "uvicorn event loop": "uvloop" if package("uvloop") != "not installed" else "asyncio",
        "vm2": node_package("vm2", "vm2"),
        "isolated-vm": node_package("isolated-vm", "isolated-vm"),
        "fnbox workers per language": os.environ.get("FUNCTIONS_WORKERS", f"{os.cpu_count()} (CPU count)"),
        "ACCESS_LOG": os.environ.get("ACCESS_LOG", "no (fnbox's default)"),
        "EXECUTIONS_RECORD_RUNS": os.environ.get(
            "EXECUTIONS_RECORD_RUNS", "no (like the peers; see bench/recording.py)"
        ),
    }
