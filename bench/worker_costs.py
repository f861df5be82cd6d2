"""What worker processes cost: run latency in-process vs through a worker, a worker's CPU per run, restart time, RSS.

    python bench/worker_costs.py [--runs 5000] [--sandboxes 200]

Prints medians over repeated measurements. Everything runs through the public Runtime.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import tempfile
import time

from fnbox.workspaces.runtime import Runtime, RuntimeOptions

HELLO = {
    "functions": {
        "hello": {"code": 'return "Hello " + name;', "parameters": {"name": {"type": "string"}}},
        "pyhello": {"language": "python", "code": 'return "Hello " + name', "parameters": {"name": {"type": "string"}}},
    }
}


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def latency(runtime: Runtime, function: str, runs: int) -> tuple[float, float, float | None]:
    """Median wall time of `runtime.run` (µs), median `duration` the sandbox reported (µs), and
    the CPU time of the language's worker per run (µs; None in-process)."""
    for _ in range(200):
        await runtime.run("bench", function, {"name": "world"})
    language = "python" if function.startswith("py") else "javascript"
    pids = runtime.pool.worker_pids(language) if hasattr(runtime.pool, "worker_pids") else []
    cpu_before = sum(map(cpu_seconds, pids))
    walls, durations = [], []
    for _ in range(runs):
        started = time.perf_counter()
        outcome = await runtime.run("bench", function, {"name": "world"})
        walls.append(time.perf_counter() - started)
        durations.append(outcome.duration)
    worker_cpu = (sum(map(cpu_seconds, pids)) - cpu_before) / runs * 1e6 if pids else None
    return statistics.median(walls) * 1e6, statistics.median(durations) * 1e3, worker_cpu


async def restart_time(runtime: Runtime, language: str, function: str, samples: int = 5) -> float:
    """Median ms from SIGKILL of the worker to the next successful run."""
    times = []
    for _ in range(samples):
        (pid,) = runtime.pool.worker_pids(language)  # type: ignore[attr-defined]
        os.kill(pid, signal.SIGKILL)
        started = time.perf_counter()
        while True:
            try:
                await runtime.run("bench", function, {"name": "world"})
                break
            except Exception:
                continue
        times.append((time.perf_counter() - started) * 1000)
        await asyncio.sleep(0.3)
    return statistics.median(times)


async def rss_per_sandbox(runtime: Runtime, language: str, count: int) -> tuple[float, float]:
    (pid,) = runtime.pool.worker_pids(language)  # type: ignore[attr-defined]
    code = "return n + 1;" if language == "javascript" else "return n + 1"
    before = rss_mb(pid)
    for index in range(count):
        await runtime.put_workspace(
            f"rss{language[:2]}{index}",
            {"functions": {"f": {"language": language, "code": code, "parameters": {"n": {"type": "integer"}}}}},
        )
        await runtime.run(f"rss{language[:2]}{index}", "f", {"n": index})
    after = rss_mb(pid)
    return after - before, (after - before) / count


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5000)
    parser.add_argument("--sandboxes", type=int, default=200)
    parser.add_argument("--inline", action="store_true", help="PYTHON_INLINE_RUNS=yes (trees that have it)")
    args = parser.parse_args()
    inline = {"python_inline_runs": True} if args.inline else {}
    with tempfile.TemporaryDirectory() as data:
        async with Runtime(data, options=RuntimeOptions(workers=0)) as runtime:
            await runtime.put_workspace("bench", HELLO)
            for function in ("hello", "pyhello"):
                wall, duration, _ = await latency(runtime, function, args.runs)
                print(f"in-process  {function:8} run {wall:7.1f} µs   duration {duration:6.1f} µs")
    with tempfile.TemporaryDirectory() as data:
        async with Runtime(data, options=RuntimeOptions(workers=1, **inline)) as runtime:
            await runtime.put_workspace("bench", HELLO)
            for function in ("hello", "pyhello"):
                wall, duration, worker_cpu = await latency(runtime, function, args.runs)
                print(
                    f"worker      {function:8} run {wall:7.1f} µs   duration {duration:6.1f} µs   "
                    f"worker CPU {worker_cpu or 0.0:6.1f} µs a run"
                )
            for language, function in (("javascript", "hello"), ("python", "pyhello")):
                print(
                    f"restart     {language:10} {await restart_time(runtime, language, function):7.1f} ms (kill to next answer)"
                )
            for language in ("javascript", "python"):
                total, each = await rss_per_sandbox(runtime, language, args.sandboxes)
                print(
                    f"rss         {language:10} +{total:6.1f} MB for {args.sandboxes} warm workspaces = {each * 1024:6.0f} KB each"
                )


if __name__ == "__main__":
    asyncio.run(main())
