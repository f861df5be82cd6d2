"""A warm hello side by side: this tree against an older one (and the vm2 peer), with fnbox's defaults.

    python bench/warm_cpu.py --before /tmp/fnbox-before [--vm2] [--ceiling] [--runs 5] [--duration 4]

Starts `fnbox serve` from both trees with runs recorded (the default), and the vm2 peer if asked,
alternates wrk runs between them so that a noisy moment hits all (each round in the other
order), and prints medians of requests/s, p99, and the CPU time per request of the server
process and of its workers (steadier than requests/s on a shared machine), with each
figure's ratio to the older tree and, with --vm2, to the peer's JavaScript hello.
`--ceiling` adds bench/ceiling.py, a bare Starlette app on uvicorn that answers the run
route without running anything: what any service on this HTTP server could reach here.
`--hop` adds the same app answering through a child process (`ceiling.py --hop`): what any
service that runs its sandboxes outside the HTTP process could reach here.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import loadgen
import servers
from recording import HELLO, wrk_with_cpu

FUNCTIONS = {"hello": "JavaScript", "pyhello": "Python"}
#: The functions each peer answers (the ceiling runs nothing, so it stands in for both).
PEER_FUNCTIONS = {"vm2": ("hello",), "ceiling": tuple(FUNCTIONS), "ceiling-hop": tuple(FUNCTIONS)}


def answers(kind: str, function: str) -> bool:
    return kind.startswith("fnbox") or function in PEER_FUNCTIONS[kind]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True, help="the older checkout")
    parser.add_argument("--vm2", action="store_true", help="also the vm2 peer (npm ci in bench/peers/vm2)")
    parser.add_argument("--ceiling", action="store_true", help="also a bare Starlette app (bench/ceiling.py)")
    parser.add_argument("--hop", action="store_true", help="also the bare app through a child (ceiling.py --hop)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--duration", type=float, default=4)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--record", default="yes", help="EXECUTIONS_RECORD_RUNS for both trees")
    args = parser.parse_args()
    servers.before_dir = args.before.resolve()
    log_dir = Path(tempfile.mkdtemp(prefix="fnbox-warm-cpu-"))
    env = {"EXECUTIONS_RECORD_RUNS": args.record}
    kinds = ["fnbox-before", "fnbox"] + (["vm2"] if args.vm2 else []) + (["ceiling"] if args.ceiling else [])
    kinds += ["ceiling-hop"] if args.hop else []
    services = {kind: servers.start(kind, log_dir, env=env) for kind in kinds}
    try:
        for service in services.values():
            loadgen.Client(service.port).post("/v2/functions/bench", HELLO)
        results: dict[tuple[str, str], list[tuple[float, float, float, float]]] = {}
        for function in FUNCTIONS:
            for kind, service in services.items():
                if not answers(kind, function):
                    continue
                loadgen.wrk(
                    service.url(f"/v2/functions/bench/run/{function}"), connections=args.connections, duration=1
                )
            for round_number in range(args.runs):
                # Each round in the other order: the service measured first in a round fared better.
                order = list(services.items())
                for kind, service in order if round_number % 2 == 0 else reversed(order):
                    if not answers(kind, function):
                        continue
                    run, server_us, workers_us = wrk_with_cpu(
                        service,
                        service.url(f"/v2/functions/bench/run/{function}"),
                        connections=args.connections,
                        duration=args.duration,
                    )
                    results.setdefault((function, kind), []).append((run.rps, run.p99_ms, server_us, workers_us))
        print(f"median of {args.runs} wrk runs of {args.duration:g} s at {args.connections} connections, alternating")
        print(f"EXECUTIONS_RECORD_RUNS={args.record}; ratios are to fnbox-before")
        print(
            f"{'function':10} {'service':13} {'req/s':>8} {'ratio':>6} {'÷ vm2':>6} {'p99 ms':>7} {'server µs':>10} "
            f"{'workers µs':>11}"
        )
        peer = statistics.median(r[0] for r in results["hello", "vm2"]) if args.vm2 else None
        for function in FUNCTIONS:
            base = statistics.median(r[0] for r in results[function, "fnbox-before"])
            for kind in kinds:
                if (function, kind) not in results:
                    continue
                runs = results[function, kind]
                rps = statistics.median(r[0] for r in runs)
                to_peer = f"{rps / peer:6.2f}" if peer else f"{'':6}"
                print(
                    f"{function:10} {kind:13} {rps:8.0f} {rps / base:6.2f} {to_peer} "
                    f"{statistics.median(r[1] for r in runs):7.2f} "
                    f"{statistics.median(r[2] for r in runs):10.0f} {statistics.median(r[3] for r in runs):11.0f}"
                )
    finally:
        for service in services.values():
            service.stop()


if __name__ == "__main__":
    main()
