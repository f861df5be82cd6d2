"""What judging tokens from the shared database's change feed costs a warm run, before and after.

    python bench/shared_access.py --before DIR [--runs 5] [--duration 3] [--connections 16]

Starts a PostgreSQL of its own and four `fnbox serve` on it (each on a database of its own):
this checkout and the one in DIR (`git -C /work/main archive main | tar -x -C DIR`), each
open (no token) and guarded (FNBOX_ADMIN_TOKEN, every request carrying it). wrk runs of a
warm hello alternate between them, round after round, so a noisy moment hits all; prints
the medians of requests/s and of server CPU per call, and the after/before ratios.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

import loadgen
import servers
from instances import HELLO, cpu_seconds

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.postgres import running_postgres

ADMIN = "bench-admin-token-0123456789"


def save(port: int, *, guarded: bool) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {ADMIN}"} if guarded else {})}
    try:
        connection.request("PUT", "/v2/functions/bench", json.dumps(HELLO), headers)
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"the save answered {response.status}")
    finally:
        connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True, help="the checkout to compare with")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--duration", type=float, default=3)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    servers.before_dir = args.before.resolve()
    log_dir = Path(tempfile.mkdtemp(prefix="fnbox-shared-access-"))
    labels = [(kind, mode) for mode in ("open", "guarded") for kind in ("fnbox-before", "fnbox")]
    with running_postgres() as postgres:
        services = {}
        for kind, mode in labels:
            env = {"FNBOX_DATABASE_URL": postgres.create_database()}
            if mode == "guarded":
                env["FNBOX_ADMIN_TOKEN"] = ADMIN
            services[kind, mode] = servers.start(kind, log_dir, env=env, tag=f"-{mode}")
        try:
            rps: dict[tuple[str, str], list[float]] = {label: [] for label in labels}
            cpu: dict[tuple[str, str], list[float]] = {label: [] for label in labels}
            for label, service in services.items():
                save(service.port, guarded=label[1] == "guarded")
            for round_ in range(args.runs + 1):  # the first round warms up
                for label, service in services.items():
                    os.environ.pop("AUTHORIZATION", None)
                    if label[1] == "guarded":
                        os.environ["AUTHORIZATION"] = f"Bearer {ADMIN}"
                    before = cpu_seconds(service.pid)
                    result = loadgen.wrk(
                        service.url("/v2/functions/bench/run/hello"),
                        connections=args.connections,
                        duration=args.duration,
                    )
                    if result.errors:
                        raise RuntimeError(f"{label}: {result.errors} errors")
                    if round_:
                        rps[label].append(result.rps)
                        cpu[label].append((cpu_seconds(service.pid) - before) / max(result.requests, 1) * 1e6)
            for mode in ("open", "guarded"):
                was, now = ("fnbox-before", mode), ("fnbox", mode)
                print(
                    f"{mode:8} req/s before {statistics.median(rps[was]):8.0f}  after {statistics.median(rps[now]):8.0f}"
                    f"  ratio {statistics.median(rps[now]) / statistics.median(rps[was]):.2f}"
                    f"   CPU/call before {statistics.median(cpu[was]):6.0f} µs  after {statistics.median(cpu[now]):6.0f} µs"
                )
        finally:
            for service in services.values():
                service.stop()


if __name__ == "__main__":
    main()
