"""A warm JavaScript hello and a warm JavaScript sandbox, side by side for two source trees.

    python bench/js_sandbox_costs.py --tree /work/main --tree . [--rounds 5] [--runs 2000] [--sandboxes 100]

Each round measures every tree in a fresh process (`PYTHONPATH=<tree>`), trees alternating;
the report gives the median over rounds of: the median wall time of a warm `hello` run
(µs, in-process, through JsSandbox.run), the wall time and CPU time (both threads) per run
with 16 runs queued for the workspace's isolate (µs, through the overlapping sandbox the
worker uses), the median cold start of a sandbox (ms: compiling a
hello workspace and its first run), and the RSS a warm sandbox adds (KiB, the growth of the
process over `--sandboxes` hello workspaces compiled and run once, divided by them).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HELLO = 'return "Hello " + name;'


def _rss_kib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1024


async def _measure(runs: int, sandboxes: int) -> dict[str, float]:
    from fnbox.sandboxes.base import FunctionSource, Limits, Parameter
    from fnbox.sandboxes.js.sandbox import compile_workspace

    limits = Limits(timeout=5.0, memory=64 << 20)
    source = [FunctionSource("hello", HELLO, (Parameter("name"),))]
    sandbox = compile_workspace(source)
    for _ in range(300):
        await sandbox.run("hello", {"name": "world"}, limits)
    walls = []
    for _ in range(runs):
        started = time.perf_counter()
        await sandbox.run("hello", {"name": "world"}, limits)
        walls.append(time.perf_counter() - started)
    sandbox.close()
    queued_wall, queued_cpu = await _queued(source, limits, runs)
    warm = []
    colds = []
    before = _rss_kib()
    for _ in range(sandboxes):
        started = time.perf_counter()
        warm.append(compile_workspace(source))
        await warm[-1].run("hello", {"name": "world"}, limits)
        colds.append(time.perf_counter() - started)
    after = _rss_kib()
    for each in warm:
        each.close()
    return {
        "hello_us": statistics.median(walls) * 1e6,
        "queued_us": queued_wall,
        "queued_cpu_us": queued_cpu,
        "cold_ms": statistics.median(colds) * 1e3,
        "sandbox_kib": (after - before) / sandboxes,
    }


async def _queued(source: list[Any], limits: Any, runs: int, queued: int = 16) -> tuple[float, float]:
    """Wall and CPU µs per run while `queued` callers keep runs waiting for one workspace's isolate."""
    from fnbox.sandboxes.js.overlap import compile_overlapping

    sandbox = compile_overlapping(source)
    left = [runs // 4]

    async def caller() -> None:
        while left[0] > 0:
            left[0] -= 1
            await sandbox.run("hello", {"name": "world"}, limits)

    await asyncio.gather(*(caller() for _ in range(queued)))  # warm-up
    left[0] = runs
    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(caller() for _ in range(queued)))
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    sandbox.close()
    return wall / runs * 1e6, cpu / runs * 1e6


def _round(tree: str, runs: int, sandboxes: int) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(Path(tree).resolve())}
    command = [sys.executable, __file__, "--measure", "--runs", str(runs), "--sandboxes", str(sandboxes)]
    done = subprocess.run(command, env=env, cwd="/", capture_output=True, text=True, timeout=300, check=True)
    result: dict[str, float] = json.loads(done.stdout)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tree", action="append", default=[], help="a source tree to measure (repeat)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--sandboxes", type=int, default=100)
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(asyncio.run(_measure(args.runs, args.sandboxes))))
        return
    trees = args.tree or ["."]
    samples: dict[str, list[dict[str, float]]] = {tree: [] for tree in trees}
    for _ in range(args.rounds):
        for tree in trees:
            samples[tree].append(_round(tree, args.runs, args.sandboxes))
    print(
        f"{'tree':<30} {'warm hello (µs)':>16} {'16 queued: wall/run':>20} {'CPU/run (µs)':>13} "
        f"{'cold start (ms)':>16} {'warm sandbox (KiB)':>20}"
    )
    for tree, rounds in samples.items():
        hello, queued, queued_cpu, cold, size = (
            statistics.median(r[key] for r in rounds)
            for key in ("hello_us", "queued_us", "queued_cpu_us", "cold_ms", "sandbox_kib")
        )
        print(f"{tree:<30} {hello:>16.1f} {queued:>20.1f} {queued_cpu:>13.1f} {cold:>16.2f} {size:>20.1f}")


if __name__ == "__main__":
    main()
