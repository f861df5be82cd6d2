"""Whether the server and its workers work at the same time under a warm load, or take turns.

    python bench/overlap.py [--runs 5] [--duration 3] [--connections 16] [--pair]

Serves this tree with fnbox's defaults (runs recorded) and, during wrk runs of a warm hello
in each language, reads from /proc the CPU time of every thread of the server and of its
workers, and the machine's idle time. Prints medians of: requests/s; how busy the machine
(all cores) and the server's event loop were; the CPU per call of the server's event loop,
of its other threads (the recorder's writer), of the workers' event loops and of their
other threads (Python run threads, V8's); and two bounds. "Taking turns" is the rate if the
server's event loop and a worker never ran at the same time (one over the sum of their CPU
per call); "server-bound" the rate if the event loop were never idle. A measured rate near
the first ("rps ÷ taking turns" near 1) says the stages take turns: a call's cost on either
side then counts in full.

`--pair` also serves a second instance of the tree (data directory of its own) and runs
wrk against both at once, half the connections each: what two server processes would
answer together, against one with all the connections.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
from pathlib import Path

import loadgen
import servers
from recording import HELLO, cpu_seconds

FUNCTIONS = {"hello": "JavaScript", "pyhello": "Python"}


def thread_times(pid: int) -> tuple[float, float]:
    """CPU seconds of a process's main thread and of its other threads (0, 0 once it ended)."""
    main = others = 0.0
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return 0.0, 0.0
    for thread in threads:
        try:
            seconds = cpu_seconds(pid, int(thread))
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(thread) == pid:
            main = seconds
        else:
            others += seconds
    return main, others


def machine_times() -> tuple[int, int]:
    """Clock ticks of all cores since boot: total and idle (idle + iowait), from /proc/stat."""
    with open("/proc/stat") as stat:
        ticks = [int(field) for field in stat.readline().split()[1:]]
    return sum(ticks), ticks[3] + ticks[4]


def snapshot(service: servers.Service) -> tuple[tuple[float, float], tuple[float, float], tuple[int, int]]:
    """(server's main thread, its others), (workers' main threads, their others), machine ticks."""
    workers = servers.descendants(service.pid)[1:]
    worker_times = [thread_times(pid) for pid in workers]
    return (
        thread_times(service.pid),
        (sum(main for main, _ in worker_times), sum(others for _, others in worker_times)),
        machine_times(),
    )


def measure(service: servers.Service, function: str, connections: int, duration: float) -> dict[str, float]:
    """One wrk run of `function`, and what each stage spent on it (see the module's docstring)."""
    before = snapshot(service)
    run = loadgen.wrk(service.url(f"/v2/functions/bench/run/{function}"), connections=connections, duration=duration)
    after = snapshot(service)
    per_call = 1e6 / max(run.requests, 1)
    total_ticks, idle_ticks = (a - b for a, b in zip(after[2], before[2], strict=True))
    wall = run.requests / run.rps if run.rps else duration
    figures = {
        "rps": run.rps,
        "machine busy %": 100 * (1 - idle_ticks / max(total_ticks, 1)),
        "server loop busy %": 100 * (after[0][0] - before[0][0]) / wall,
        "server loop µs": (after[0][0] - before[0][0]) * per_call,
        "server others µs": (after[0][1] - before[0][1]) * per_call,
        "worker loops µs": (after[1][0] - before[1][0]) * per_call,
        "worker others µs": (after[1][1] - before[1][1]) * per_call,
    }
    serial = figures["server loop µs"] + figures["worker loops µs"] + figures["worker others µs"]
    figures["taking turns"] = 1e6 / serial if serial else 0.0
    figures["server-bound"] = 1e6 / figures["server loop µs"] if figures["server loop µs"] else 0.0
    figures["rps ÷ taking turns"] = run.rps / figures["taking turns"] if serial else 0.0
    return figures


def pair_rps(pair: list[servers.Service], function: str, connections: int, duration: float) -> float:
    """Requests/s of two instances loaded at once, half the connections each."""
    answered: list[float] = []

    def load(service: servers.Service) -> None:
        url = service.url(f"/v2/functions/bench/run/{function}")
        answered.append(loadgen.wrk(url, connections=max(1, connections // 2), duration=duration).rps)

    threads = [threading.Thread(target=load, args=(service,)) for service in pair]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(answered)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--duration", type=float, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--pair", action="store_true", help="also two instances at once, half the connections each")
    args = parser.parse_args()
    log_dir = Path(tempfile.mkdtemp(prefix="fnbox-overlap-"))
    env = {"EXECUTIONS_RECORD_RUNS": "yes"}
    services = [servers.start("fnbox", log_dir, env=env, tag=f"-{index}") for index in range(2 if args.pair else 1)]
    try:
        for service in services:
            loadgen.Client(service.port).post("/v2/functions/bench", HELLO)
        print(f"median of {args.runs} wrk runs of {args.duration:g} s at {args.connections} connections, runs recorded")
        for function, language in FUNCTIONS.items():
            for service in services:
                loadgen.wrk(service.url(f"/v2/functions/bench/run/{function}"), connections=16, duration=1)
            runs: list[dict[str, float]] = []
            pairs: list[float] = []
            for round_number in range(args.runs):
                # Each round in the other order: what runs first in a round fares better.
                steps = ["alone", "together"] if args.pair else ["alone"]
                for step in steps if round_number % 2 == 0 else reversed(steps):
                    if step == "alone":
                        runs.append(measure(services[0], function, args.connections, args.duration))
                    else:
                        pairs.append(pair_rps(services, function, args.connections, args.duration))
            print(f"\n{language} hello ({function})")
            for name in runs[0]:
                print(f"  {name:20} {statistics.median(run[name] for run in runs):9.2f}")
            if pairs:
                alone_rps = statistics.median(run["rps"] for run in runs)
                together_rps = statistics.median(pairs)
                print(f"  {'two instances rps':20} {together_rps:9.1f}  ({together_rps / alone_rps:.2f}× one)")
    finally:
        for service in services:
            service.stop()


if __name__ == "__main__":
    main()
