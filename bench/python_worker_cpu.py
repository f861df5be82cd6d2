"""A Python worker's CPU per warm call under wrk, split between its event loop and its run threads.

    python bench/python_worker_cpu.py --before /tmp/fnbox-before [--rounds 5] [--seconds 3] [--connections 16]

Serves this tree (`fnbox`) and, with `--before`, another checkout (`fnbox-before`) side by side,
rounds alternating, and loads each with wrk on a Python `hello` (runs not recorded, as in
bench/run.py). For each round and service it reads, from /proc, the CPU of the Python worker
processes' threads (the event loop's, the run threads', any other) and their context switches
and read/write system calls, per call answered; the report gives the medians over rounds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path

import loadgen
import servers
from recording import HELLO, cpu_seconds

COLUMNS = ("req/s", "server µs", "worker µs", "loop µs", "run µs", "other µs", "switches", "reads", "writes", "p99 ms")


def _python_workers(service: servers.Service) -> list[int]:
    found = []
    for pid in servers.descendants(service.pid):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                if b"--language\0python\0" in cmdline.read():
                    found.append(pid)
        except OSError:
            continue
    return found


def _counters(pid: int) -> dict[str, float]:
    """CPU seconds by kind of thread, context switches and read/write system calls of one process."""
    counts = {"loop": 0.0, "run": 0.0, "other": 0.0, "switches": 0.0}
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/comm") as comm:
                name = comm.read().strip()
            cpu = cpu_seconds(pid, int(task))
            with open(f"/proc/{pid}/task/{task}/status") as status:
                switches = sum(int(line.split()[1]) for line in status if "ctxt_switches:" in line)
        except (OSError, ValueError):
            continue  # a thread that ended meanwhile
        kind = "loop" if int(task) == pid else "run" if name.startswith(("fnbox-python", "call-")) else "other"
        counts[kind] += cpu
        counts["switches"] += switches
    with open(f"/proc/{pid}/io") as io:
        fields = dict(line.split(": ") for line in io.read().splitlines())
    counts["reads"], counts["writes"] = float(fields["syscr"]), float(fields["syscw"])
    return counts


def _sum(pids: list[int]) -> dict[str, float]:
    total: dict[str, float] = {}
    for pid in pids:
        for key, value in _counters(pid).items():
            total[key] = total.get(key, 0.0) + value
    return total


def _round(service: servers.Service, url: str, seconds: int, connections: int) -> tuple[float, ...]:
    workers = _python_workers(service)
    before, server_before = _sum(workers), cpu_seconds(service.pid)
    result = loadgen.wrk(url, connections=connections, duration=seconds)
    after, server_after = _sum(workers), cpu_seconds(service.pid)
    calls = max(result.requests, 1)
    per = {key: (after[key] - before.get(key, 0.0)) / calls for key in after}
    cpu = {key: per[key] * 1e6 for key in ("loop", "run", "other")}
    return (
        result.rps,
        (server_after - server_before) / calls * 1e6,
        sum(cpu.values()),
        cpu["loop"],
        cpu["run"],
        cpu["other"],
        per["switches"],
        per["reads"],
        per["writes"],
        result.p99_ms,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--before", type=Path, help="another checkout, served as fnbox-before")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    servers.before_dir = args.before
    kinds = ["fnbox-before", "fnbox"] if args.before else ["fnbox"]
    log_dir = Path(tempfile.mkdtemp(prefix="fnbox-bench-"))
    services = {kind: servers.start(kind, log_dir) for kind in kinds}
    rows: dict[str, list[tuple[float, ...]]] = {kind: [] for kind in kinds}
    try:
        for service in services.values():
            loadgen.Client(service.port).post("/v2/functions/bench", HELLO)
            loadgen.wrk(service.url("/v2/functions/bench/run/pyhello"), connections=args.connections, duration=2)
        for index in range(args.rounds):
            for kind in kinds if index % 2 == 0 else reversed(kinds):
                url = services[kind].url("/v2/functions/bench/run/pyhello")
                rows[kind].append(_round(services[kind], url, args.seconds, args.connections))
                print(f"  {kind:<13}" + "".join(f"{value:>11.2f}" for value in rows[kind][-1]), flush=True)
    finally:
        for service in services.values():
            service.stop()
    print(f"median of {args.rounds} rounds of {args.seconds} s, wrk -c{args.connections}, per call answered:")
    print(f"  {'':<13}" + "".join(f"{column:>11}" for column in COLUMNS))
    for kind, samples in rows.items():
        print(f"  {kind:<13}" + "".join(f"{statistics.median(column):>11.2f}" for column in zip(*samples)))


if __name__ == "__main__":
    main()
