"""What sharing workspaces through PostgreSQL costs, and how fast a save reaches another instance.

    python bench/instances.py [--runs 3] [--duration 3] [--connections 16] [--saves 200]

Starts a PostgreSQL of its own (tests/postgres.py: initdb into a temporary directory) and
three `fnbox serve`: one embedded (files, no FNBOX_DATABASE_URL) and two on the database.
Prints warm hello requests/s of the embedded one and of a database one, wrk runs
alternated so that a noisy moment hits both, and their ratio; then the time from a save
answered by one instance to the new version answering on the other (p50, p99).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import loadgen
import servers

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.postgres import running_postgres

HELLO = {"functions": {"hello": {"code": 'return "Hello " + name;', "parameters": {"name": {"type": "string"}}}}}


def greeting(index: int) -> dict:
    return {"functions": {"hello": {"code": f'return "v{index} " + name;', "parameters": {"name": {"type": "string"}}}}}


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=float, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--saves", type=int, default=200)
    args = parser.parse_args()
    log_dir = Path(tempfile.mkdtemp(prefix="fnbox-instances-"))
    with running_postgres() as postgres:
        url = postgres.create_database()
        services = {
            "embedded": servers.start("fnbox", log_dir, tag="-embedded"),
            "database A": servers.start("fnbox", log_dir, env={"FNBOX_DATABASE_URL": url}, tag="-a"),
            "database B": servers.start("fnbox", log_dir, env={"FNBOX_DATABASE_URL": url}, tag="-b"),
        }
        try:
            clients = {label: loadgen.Client(service.port) for label, service in services.items()}
            for label in ("embedded", "database A"):
                clients[label].post("/v2/functions/bench", HELLO)
            compared = ("embedded", "database A")
            rps: dict[str, list[float]] = {label: [] for label in compared}
            p99: dict[str, list[float]] = {label: [] for label in compared}
            for label in compared:  # warm-up
                loadgen.wrk(
                    services[label].url("/v2/functions/bench/run/hello"), connections=args.connections, duration=1
                )
            for _ in range(args.runs):
                for label in compared:
                    run = loadgen.wrk(
                        services[label].url("/v2/functions/bench/run/hello"),
                        connections=args.connections,
                        duration=args.duration,
                    )
                    rps[label].append(run.rps)
                    p99[label].append(run.p99_ms)
            print(
                f"warm hello, median of {args.runs} wrk runs of {args.duration:g} s at {args.connections} connections"
            )
            for label in compared:
                print(
                    f"  {label:12} {statistics.median(rps[label]):8.0f} req/s  p99 {statistics.median(p99[label]):6.2f} ms"
                )
            ratio = statistics.median(rps["database A"]) / statistics.median(rps["embedded"])
            print(f"  database / embedded: {ratio:.3f} ({(1 - ratio) * 100:.1f}% fewer requests/s)")

            writer, reader = clients["database A"], clients["database B"]
            delays, stale = [], 0
            for index in range(args.saves):
                writer.post("/v2/functions/seen", greeting(index))
                answered = time.perf_counter()
                while True:
                    status, body = reader.post("/v2/functions/seen/run/hello", {"parameters": {"name": "x"}})
                    if status == 200 and body["result"] == f"v{index} x":
                        break
                    stale += 1
                delays.append((time.perf_counter() - answered) * 1000)
            print(
                f"save answered on A -> new version answering on B, {args.saves} saves: "
                f"p50 {percentile(delays, 0.5):.2f} ms, p99 {percentile(delays, 0.99):.2f} ms; "
                f"runs that answered an older version: {stale}"
            )
        finally:
            for service in services.values():
                service.stop()


if __name__ == "__main__":
    main()
