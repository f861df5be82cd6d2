"""Several fnbox trees or settings side by side on a warm hello: which variant of a change to keep.

    python bench/variants.py [--runs 5] [--duration 3] [--functions hello,pyhello] [--vm2] \\
        before=/tmp/base now=.. pinned=..+SERVER_CPU=0 unpinned=..+SERVER_CPU=no

Each variant is NAME=DIR, optionally followed by `+VARIABLE=value,...` for its environment
(runs recorded unless it says otherwise, as fnbox's default). Every variant is started once;
wrk rounds alternate between them (each round in the other order, as in warm_cpu.py), and
the medians of requests/s (with each round's figure, to see the spread), p99 and CPU per call
of the server process and its workers are printed, with ratios to the first variant.
warm_cpu.py compares two trees and the peers; this serves any number of trees or settings.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import loadgen
import servers
from recording import HELLO, wrk_with_cpu


def parse_variant(text: str) -> tuple[str, Path, dict[str, str]]:
    name, _, spec = text.partition("=")
    folder, _, assignments = spec.partition("+")
    if not name or not folder:
        raise argparse.ArgumentTypeError(f"expected NAME=DIR[+VARIABLE=value,...], not {text!r}")
    env = dict(assignment.split("=", 1) for assignment in assignments.split(",")) if assignments else {}
    return name, Path(folder).resolve(), {"EXECUTIONS_RECORD_RUNS": "yes", **env}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variants", nargs="+", type=parse_variant, help="NAME=DIR[+VARIABLE=value,...]")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--duration", type=float, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--functions", default="hello,pyhello", help="of bench/recording.py's HELLO workspace")
    parser.add_argument("--vm2", action="store_true", help="also the vm2 peer, on hello (npm ci in bench/peers/vm2)")
    args = parser.parse_args()
    log_dir = Path(tempfile.mkdtemp(prefix="fnbox-variants-"))
    services: dict[str, servers.Service] = {}
    try:
        for name, folder, env in args.variants:
            servers.fnbox_dir = folder  # read as the service starts
            services[name] = servers.start("fnbox", log_dir, env=env, tag=f"-{name}")
        if args.vm2:
            services["vm2"] = servers.start("vm2", log_dir)
        for service in services.values():
            loadgen.Client(service.port).post("/v2/functions/bench", HELLO)
        print(f"median of {args.runs} wrk runs of {args.duration:g} s at {args.connections} connections, alternating")
        for function in args.functions.split(","):
            serving = [(name, s) for name, s in services.items() if name != "vm2" or function == "hello"]
            url = {name: service.url(f"/v2/functions/bench/run/{function}") for name, service in serving}
            for name, _ in serving:
                loadgen.wrk(url[name], connections=args.connections, duration=1)
            results: dict[str, list[tuple[float, float, float, float]]] = {name: [] for name, _ in serving}
            for round_number in range(args.runs):
                for name, service in serving if round_number % 2 == 0 else reversed(serving):
                    run, server_us, workers_us = wrk_with_cpu(
                        service, url[name], connections=args.connections, duration=args.duration
                    )
                    results[name].append((run.rps, run.p99_ms, server_us, workers_us))
            first = statistics.median(r[0] for r in results[serving[0][0]])
            print(
                f"{function}: {'variant':12} {'req/s':>7} {'ratio':>6} {'p99 ms':>7} {'server µs':>10} {'workers µs':>11}"
            )
            for name, runs in results.items():
                rps, p99, server_us, workers_us = (statistics.median(r[i] for r in runs) for i in range(4))
                rounds = " ".join(f"{r[0]:.0f}" for r in runs)
                print(
                    f"{'':{len(function) + 2}}{name:12} {rps:7.0f} {rps / first:6.2f} {p99:7.2f} {server_us:10.0f} "
                    f"{workers_us:11.0f}   rounds: {rounds}"
                )
    finally:
        for service in services.values():
            service.stop()


if __name__ == "__main__":
    main()
