"""A JavaScript worker's CPU per warm call, side by side for source trees, without HTTP in the way.

    python bench/js_worker_cpu.py --tree /tmp/fnbox-before --tree . [--rounds 5] [--runs 4000] [--concurrency 16]

Each round measures every tree in a fresh process (`PYTHONPATH=<tree>`), trees alternating: a
Runtime with one JavaScript worker, one `hello` workspace, `--runs` calls with `--concurrency`
in flight (as wrk's connections would keep them). The report gives the median over rounds of
calls/s, and of the CPU per call (µs) of the worker process (all its threads: the event loop's
and V8's) and of the calling process (the Runtime and its supervisor).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HELLO = {"functions": {"hello": {"code": 'return "Hello " + name;', "parameters": {"name": {"type": "string"}}}}}


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _measure(runs: int, concurrency: int) -> dict[str, float]:
    from fnbox.workspaces.runtime import Runtime, RuntimeOptions

    with tempfile.TemporaryDirectory() as data:
        async with Runtime(data, options=RuntimeOptions(workers=1)) as runtime:
            await runtime.put_workspace("bench", HELLO)
            (worker,) = runtime.pool.worker_pids("javascript")  # type: ignore[attr-defined]
            left = [runs // 5]

            async def caller() -> None:
                while left[0] > 0:
                    left[0] -= 1
                    await runtime.run("bench", "hello", {"name": "world"})

            await asyncio.gather(*(caller() for _ in range(concurrency)))  # warm-up
            left[0] = runs
            worker_before, own_before = _cpu_seconds(worker), time.process_time()
            started = time.perf_counter()
            await asyncio.gather(*(caller() for _ in range(concurrency)))
            wall = time.perf_counter() - started
            worker_cpu, own_cpu = _cpu_seconds(worker) - worker_before, time.process_time() - own_before
    return {"rate": runs / wall, "worker_us": worker_cpu / runs * 1e6, "caller_us": own_cpu / runs * 1e6}


def _round(tree: str, runs: int, concurrency: int) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(Path(tree).resolve())}
    command = [sys.executable, __file__, "--measure", "--runs", str(runs), "--concurrency", str(concurrency)]
    done = subprocess.run(command, env=env, cwd="/", capture_output=True, text=True, timeout=600, check=True)
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tree", action="append", default=[], help="a source tree to measure (repeat)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(asyncio.run(_measure(args.runs, args.concurrency))))
        return
    trees = args.tree or ["."]
    samples: dict[str, list[dict[str, float]]] = {tree: [] for tree in trees}
    for _ in range(args.rounds):
        for tree in trees:
            sample = _round(tree, args.runs, args.concurrency)
            samples[tree].append(sample)
            print(f"  {tree}: " + ", ".join(f"{key} {value:.1f}" for key, value in sample.items()), flush=True)
    print(f"median of {args.rounds} rounds, {args.runs} calls each, {args.concurrency} in flight, trees alternating")
    print(f"{'tree':<30} {'calls/s':>9} {'worker µs/call':>15} {'caller µs/call':>15}")
    for tree, rounds in samples.items():
        rate = statistics.median(r["rate"] for r in rounds)
        worker = statistics.median(r["worker_us"] for r in rounds)
        caller = statistics.median(r["caller_us"] for r in rounds)
        print(f"{tree:<30} {rate:>9.0f} {worker:>15.1f} {caller:>15.1f}")


if __name__ == "__main__":
    main()
