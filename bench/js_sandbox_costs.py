"""A warm JavaScript hello and a warm JavaScript sandbox, side by side for two source trees.

    python bench/js_sandbox_costs.py --tree /work/main --tree . [--rounds 5] [--runs 2000] [--sandboxes 100]

Each round measures every tree in a fresh process (`PYTHONPATH=<tree>`), trees alternating;
the report gives the median over rounds of: the median wall time of a warm `hello` run
(µs, in-process, through JsSandbox.run), the median cold start of a sandbox (ms: compiling a
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
        "cold_ms": statistics.median(colds) * 1e3,
        "sandbox_kib": (after - before) / sandboxes,
    }


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
    print(f"{'tree':<30} {'warm hello (µs)':>16} {'cold start (ms)':>16} {'warm sandbox (KiB)':>20}")
    for tree, rounds in samples.items():
        hello = statistics.median(r["hello_us"] for r in rounds)
        cold = statistics.median(r.get("cold_ms", float("nan")) for r in rounds)
        size = statistics.median(r["sandbox_kib"] for r in rounds)
        print(f"{tree:<30} {hello:>16.1f} {cold:>16.2f} {size:>20.1f}")


if __name__ == "__main__":
    main()
