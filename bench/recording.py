"""What recording synchronous runs costs: warm hello with EXECUTIONS_RECORD_RUNS on and off.

    python bench/recording.py [--runs 5] [--duration 5] [--connections 16]

Starts two `fnbox serve` side by side, one recording every run and one not, and alternates
wrk runs between them so that a noisy moment hits both; prints medians of requests/s and
p99, the ratio, and the server process's CPU time per request (a steadier figure than
requests/s on a shared machine), split into its event loop's thread and its other threads
(the recorder writes its batches on one), and the worker processes' CPU time per request.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import loadgen
import servers

HELLO = {
    "functions": {
        "hello": {"code": 'return "Hello " + name;', "parameters": {"name": {"type": "string"}}},
        "pyhello": {"language": "python", "code": 'return "Hello " + name', "parameters": {"name": {"type": "string"}}},
    }
}
SETTINGS = {"recording on": "yes", "recording off": "no"}


def cpu_seconds(pid: int, thread: int | None = None) -> float:
    """User + system CPU time of one process (all its threads), or of one of its threads, from /proc."""
    path = f"/proc/{pid}/stat" if thread is None else f"/proc/{pid}/task/{thread}/stat"
    with open(path) as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100  # utime, stime in clock ticks


def cpu_or_zero(pid: int) -> float:
    """A worker's CPU seconds; 0 for one that ended meanwhile (a restarted worker's time is lost: noted)."""
    try:
        return cpu_seconds(pid)
    except FileNotFoundError:
        print(f"note: worker {pid} ended during a run; its CPU time is missing from that run's figure")
        return 0.0


def wrk_with_cpu(
    service: servers.Service, url: str, *, connections: int, duration: float
) -> tuple[loadgen.WrkResult, float, float]:
    """A wrk run against `service`, with the CPU time per request (µs) of its process and of its children."""
    children = servers.descendants(service.pid)[1:]
    before = cpu_seconds(service.pid), sum(map(cpu_or_zero, children))
    run = loadgen.wrk(url, connections=connections, duration=duration)
    per_request = 1e6 / max(run.requests, 1)
    server_us = (cpu_seconds(service.pid) - before[0]) * per_request
    children_us = (sum(map(cpu_or_zero, children)) - before[1]) * per_request
    return run, server_us, children_us


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--duration", type=float, default=5)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    log_dir = Path(tempfile.mkdtemp(prefix="fnbox-recording-"))
    services = {
        label: servers.start("fnbox", log_dir, env={"EXECUTIONS_RECORD_RUNS": value}, tag=f"-{value}")
        for label, value in SETTINGS.items()
    }
    try:
        client_calls = {label: loadgen.Client(service.port) for label, service in services.items()}
        for client in client_calls.values():
            client.post("/v2/functions/bench", HELLO)
        results: dict[tuple[str, str], list[tuple[float, ...]]] = {}
        for function in ("hello", "pyhello"):
            for service in services.values():
                loadgen.wrk(
                    service.url(f"/v2/functions/bench/run/{function}"), connections=args.connections, duration=1
                )
            for _ in range(args.runs):
                for label, service in services.items():
                    workers = servers.descendants(service.pid)[1:]
                    before = (
                        cpu_seconds(service.pid),
                        sum(map(cpu_or_zero, workers)),
                        cpu_seconds(service.pid, service.pid),  # the event loop's thread
                    )
                    run = loadgen.wrk(
                        service.url(f"/v2/functions/bench/run/{function}"),
                        connections=args.connections,
                        duration=args.duration,
                    )
                    per_run = 1e6 / max(run.requests, 1)
                    server_us = (cpu_seconds(service.pid) - before[0]) * per_run
                    workers_us = (sum(map(cpu_or_zero, workers)) - before[1]) * per_run
                    loop_us = (cpu_seconds(service.pid, service.pid) - before[2]) * per_run
                    results.setdefault((function, label), []).append(
                        (run.rps, run.p99_ms, server_us, workers_us, loop_us, server_us - loop_us)
                    )
        print(f"median of {args.runs} wrk runs of {args.duration:g} s at {args.connections} connections, alternating")
        print(
            f"{'function':10} {'service':14} {'req/s':>8} {'p99 ms':>7} {'CPU µs/req: server':>19} "
            f"{'(loop':>6} {'other)':>7} {'workers':>8}"
        )
        for function in ("hello", "pyhello"):
            rps = {}
            for label in SETTINGS:
                runs = results[function, label]
                rps[label] = statistics.median(r[0] for r in runs)
                median = [statistics.median(r[i] for r in runs) for i in range(6)]
                print(
                    f"{function:10} {label:14} {rps[label]:8.0f} {median[1]:7.2f} {median[2]:19.0f} "
                    f"{median[4]:6.0f} {median[5]:7.0f} {median[3]:8.0f}"
                )
            print(f"{function:10} {'on / off':14} {rps['recording on'] / rps['recording off']:8.2f}")
    finally:
        for service in services.values():
            service.stop()


if __name__ == "__main__":
    main()
