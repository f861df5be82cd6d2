"""What sharing workspaces through PostgreSQL costs, and how fast a save reaches another instance.

    python bench/instances.py [--runs 3] [--duration 3] [--connections 16] [--saves 200]
                              [--before DIR] [--record] [--no-queue]

Starts a PostgreSQL of its own (tests/postgres.py: initdb into a temporary directory) and
`fnbox serve`s: one embedded (files, no FNBOX_DATABASE_URL), two on the database, and one
on it with FNBOX_DATABASE_MAX_STALENESS_MS=100; with `--before DIR` (an older checkout:
`git archive main | tar -x -C DIR`) also two of it on a database of their own.
Prints warm hello requests/s of the embedded one and of each database one, wrk runs
alternated so that a noisy moment hits all, their ratios, the CPU per request of the
server and of PostgreSQL; then the time a save takes to be answered on one instance and
from that answer to the new version answering on the other (p50, p99). `--record` keeps
each synchronous run's record (EXECUTIONS_RECORD_RUNS=yes, fnbox's default), in SQLite or
in PostgreSQL.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import loadgen
import servers

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.postgres import Postgres, running_postgres

HELLO = {"functions": {"hello": {"code": 'return "Hello " + name;', "parameters": {"name": {"type": "string"}}}}}


def greeting(index: int) -> dict:
    return {"functions": {"hello": {"code": f'return "v{index} " + name;', "parameters": {"name": {"type": "string"}}}}}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process (all its threads), from /proc."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100


def tree_cpu_seconds(pid: int) -> float:
    """CPU time of a process and every process below it (PostgreSQL: the postmaster and its backends)."""
    total = 0.0
    for each in servers.descendants(pid):
        try:
            total += cpu_seconds(each)
        except OSError:
            pass  # ended meanwhile
    return total


def postmaster(postgres: Postgres) -> int:
    return int((postgres.data / "postmaster.pid").read_text().split()[0])


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def save_to_visible(writer: loadgen.Client, reader: loadgen.Client, saves: int) -> tuple[list, list, int]:
    """Per save: ms until it is answered, ms from that answer to the new version answering on the reader."""
    answers, delays, stale = [], [], 0
    for index in range(saves):
        began = time.perf_counter()
        writer.post("/v2/functions/seen", greeting(index))
        answered = time.perf_counter()
        while True:
            status, body = reader.post("/v2/functions/seen/run/hello", {"parameters": {"name": "x"}})
            if status == 200 and body["result"] == f"v{index} x":
                break
            stale += 1
        delays.append((time.perf_counter() - answered) * 1000)
        answers.append((answered - began) * 1000)
    return answers, delays, stale


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=float, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--saves", type=int, default=200)
    parser.add_argument("--unix-socket", action="store_true", help="reach PostgreSQL through its unix socket")
    parser.add_argument("--executions", type=int, default=500, help="asynchronous executions per queue measure")
    parser.add_argument("--before", type=Path, help="an older fnbox checkout, served side by side")
    parser.add_argument("--record", action="store_true", help="record every synchronous run (fnbox's default)")
    parser.add_argument("--no-queue", action="store_true", help="leave out the shared queue's measure")
    args = parser.parse_args()
    servers.before_dir = args.before.resolve() if args.before else None
    log_dir = Path(tempfile.mkdtemp(prefix="fnbox-instances-"))
    common = {"EXECUTIONS_RECORD_RUNS": "yes" if args.record else "no"}
    with running_postgres() as postgres:
        urls = [postgres.create_database() for _ in range(2)]
        if args.unix_socket:  # the database reached through its unix socket rather than TCP on 127.0.0.1
            urls = [
                f"postgresql://postgres@/{url.rsplit('/', 1)[1]}?host={postgres.folder}&port={postgres.port}"
                for url in urls
            ]
        url, before_url = urls

        def shared(kind: str, database: str, tag: str, **env: str) -> servers.Service:
            return servers.start(kind, log_dir, env={**common, "FNBOX_DATABASE_URL": database, **env}, tag=tag)

        services = {
            "embedded": servers.start("fnbox", log_dir, env=common, tag="-embedded"),
            "database A": shared("fnbox", url, "-a"),
            "database B": shared("fnbox", url, "-b"),
            "stale 100 ms": shared("fnbox", url, "-s", FNBOX_DATABASE_MAX_STALENESS_MS="100"),
        }
        if args.before:
            services["before A"] = shared("fnbox-before", before_url, "-before-a")
            services["before B"] = shared("fnbox-before", before_url, "-before-b")
        try:
            clients = {label: loadgen.Client(service.port) for label, service in services.items()}
            for label in ("embedded", "database A", "before A"):
                if label in clients:
                    clients[label].post("/v2/functions/bench", HELLO)
            compared = [label for label in ("embedded", "database A", "stale 100 ms", "before A") if label in services]
            rps: dict[str, list[float]] = {label: [] for label in compared}
            p99: dict[str, list[float]] = {label: [] for label in compared}
            cpu: dict[str, list[float]] = {label: [] for label in compared}
            db_cpu: dict[str, list[float]] = {label: [] for label in compared}
            database = postmaster(postgres)
            for label in compared:  # warm-up
                loadgen.wrk(
                    services[label].url("/v2/functions/bench/run/hello"), connections=args.connections, duration=1
                )
            for _ in range(args.runs):
                for label in compared:
                    before, before_db = cpu_seconds(services[label].pid), tree_cpu_seconds(database)
                    run = loadgen.wrk(
                        services[label].url("/v2/functions/bench/run/hello"),
                        connections=args.connections,
                        duration=args.duration,
                    )
                    requests = max(run.requests, 1)
                    rps[label].append(run.rps)
                    cpu[label].append((cpu_seconds(services[label].pid) - before) * 1e6 / requests)
                    db_cpu[label].append((tree_cpu_seconds(database) - before_db) * 1e6 / requests)
                    p99[label].append(run.p99_ms)
            print(
                f"warm hello, median of {args.runs} wrk runs of {args.duration:g} s at {args.connections} connections"
                f" (records of runs {'on' if args.record else 'off'})"
            )
            for label in compared:
                print(
                    f"  {label:12} {statistics.median(rps[label]):8.0f} req/s  p99 {statistics.median(p99[label]):6.2f} ms"
                    f"  server CPU {statistics.median(cpu[label]):4.0f} µs/request"
                    f"  PostgreSQL CPU {statistics.median(db_cpu[label]):4.0f} µs/request"
                )
            for label in compared[1:]:
                ratio = statistics.median(rps[label]) / statistics.median(rps["embedded"])
                # Each round's own ratio: a noisy moment hits both of its runs, run one after the other.
                rounds = statistics.median(ours / theirs for ours, theirs in zip(rps[label], rps["embedded"]))
                print(
                    f"  {label} / embedded: {ratio:.3f} ({(1 - ratio) * 100:.1f}% fewer requests/s);"
                    f" median of the rounds' ratios {rounds:.3f}"
                )

            pairs = [("database A", "database B")]
            if args.before:
                pairs.append(("before A", "before B"))
            for writer, reader in pairs:
                answers, delays, stale = save_to_visible(clients[writer], clients[reader], args.saves)
                print(
                    f"{writer} -> {reader}, {args.saves} saves: answered in p50 {percentile(answers, 0.5):.2f} ms,"
                    f" p99 {percentile(answers, 0.99):.2f} ms; then the new version answering on {reader}"
                    f" p50 {percentile(delays, 0.5):.2f} ms, p99 {percentile(delays, 0.99):.2f} ms;"
                    f" runs that answered an older version: {stale}"
                )
        finally:
            for service in services.values():
                service.stop()
        if args.no_queue:
            return
        for count in (1, 3):
            rate = queue_rate(postgres.create_database(), count, args.executions, log_dir)
            print(
                f"shared queue, {count} instance(s): {rate:.0f} asynchronous executions/s ({args.executions} executions)"
            )


def queue_rate(url: str, count: int, executions: int, log_dir: Path) -> float:
    """Executions per second from the first start to the last end, started round robin over `count` instances."""
    import psycopg

    env = {"FNBOX_DATABASE_URL": url, "EXECUTIONS_PER_WORKSPACE": "16", "EXECUTIONS_QUEUE_SIZE": str(executions * 2)}
    services = [servers.start("fnbox", log_dir, env=env, tag=f"-queue{count}-{index}") for index in range(count)]
    try:
        loadgen.Client(services[0].port).post("/v2/functions/bench", HELLO)
        calls = [
            ("/v2/functions/bench/run/hello?async=true", {"parameters": {"name": str(i)}}) for i in range(executions)
        ]
        began = time.perf_counter()
        with ThreadPoolExecutor(count) as threads:
            chunks = [calls[index::count] for index in range(count)]
            list(threads.map(lambda pair: loadgen.post_many(pair[0].port, pair[1], threads=4), zip(services, chunks)))
        with psycopg.connect(url) as connection:
            while True:
                row = connection.execute(
                    "SELECT count(*) FROM fnbox_executions WHERE status NOT IN ('accepted', 'running')"
                ).fetchone()
                connection.rollback()
                if row and row[0] >= executions:
                    break
                time.sleep(0.02)
        return executions / (time.perf_counter() - began)
    finally:
        for service in services:
            service.stop()


if __name__ == "__main__":
    main()
