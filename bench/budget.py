"""What a warm call may cost the server and its worker for a given rate: the floor with work added, beside the vm2 peer.

    python bench/budget.py [--server 0,15,30] [--child 5,25,45] [--runs 3] [--duration 3]

Serves the vm2 peer, this tree's fnbox (runs recorded, its default) and, for every pair of
costs, bench/ceiling.py --hop (the bare Starlette app that answers through a child process)
spending `--server-work` µs of CPU per call on the server's event loop and `--child-work`
µs in the child. wrk runs (16 connections) alternate between all of them, each round in
the other order; medians. Prints each one's requests/s ÷ the peer's JavaScript hello and its
CPU time per call in the server process and in its children.

Reading: the grid is the rate that a design carrying calls as fnbox does (HTTP on uvicorn,
sandboxes in another process) reaches on this machine when the server and the worker spend
that much of their own per call; fnbox's rows place it on the grid. The costs added are
those of one thread each, so a worker that hands its runs to a second thread (Python) is
only roughly a child spending its time on its loop.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import tempfile
from pathlib import Path

import loadgen
import servers
from recording import HELLO, wrk_with_cpu

#: fnbox's functions measured, and the language each stands for.
FUNCTIONS = {"hello": "JavaScript", "pyhello": "Python"}


def costs(text: str) -> list[float]:
    return [float(value) for value in text.split(",")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", type=costs, default=[0.0, 15.0, 30.0], help="µs of server work per call")
    parser.add_argument("--child", type=costs, default=[5.0, 25.0, 45.0], help="µs of child work per call")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=float, default=3)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    log_dir = Path(tempfile.mkdtemp(prefix="fnbox-budget-"))
    services: dict[str, servers.Service] = {}
    targets: dict[str, str] = {}  # label -> the path wrk loads
    try:
        services["vm2"] = servers.start("vm2", log_dir)
        targets["vm2"] = "/v2/functions/bench/run/hello"
        services["fnbox"] = servers.start("fnbox", log_dir, env={"EXECUTIONS_RECORD_RUNS": "yes"})
        for function, language in FUNCTIONS.items():
            targets[f"fnbox {language}"] = f"/v2/functions/bench/run/{function}"
        for server_work, child_work in itertools.product(args.server, args.child):
            label = f"floor +{server_work:g}/+{child_work:g}"
            options = ["--server-work", str(server_work), "--child-work", str(child_work)]
            services[label] = servers.start("ceiling-hop", log_dir, tag=f"-{len(services)}", options=options)
            targets[label] = "/v2/functions/bench/run/hello"
        for service in services.values():
            loadgen.Client(service.port).post("/v2/functions/bench", HELLO)

        def service_of(label: str) -> servers.Service:
            return services["fnbox" if label.startswith("fnbox") else label]

        for label, path in targets.items():
            loadgen.wrk(service_of(label).url(path), connections=args.connections, duration=1)
        results: dict[str, list[tuple[float, float, float]]] = {}
        for round_number in range(args.runs):
            order = list(targets.items())
            for label, path in order if round_number % 2 == 0 else reversed(order):
                service = service_of(label)
                run, server_us, children_us = wrk_with_cpu(
                    service, service.url(path), connections=args.connections, duration=args.duration
                )
                results.setdefault(label, []).append((run.rps, server_us, children_us))
    finally:
        for service in services.values():
            service.stop()

    def median(label: str, index: int) -> float:
        return statistics.median(result[index] for result in results[label])

    peer = median("vm2", 0)
    print(f"median of {args.runs} wrk runs of {args.duration:g} s at {args.connections} connections, alternating")
    print(f"{'service (+server/+child µs)':28} {'req/s':>8} {'÷ vm2':>6} {'server µs':>10} {'children µs':>12}")
    for label in results:
        print(
            f"{label:28} {median(label, 0):8.0f} {median(label, 0) / peer:6.2f} "
            f"{median(label, 1):10.0f} {median(label, 2):12.0f}"
        )
    print(f"\n÷ vm2 by work added (rows: server µs; columns: child µs)\n{'':>8}", end="")
    print("".join(f"{child:>8g}" for child in args.child))
    for server_work in args.server:
        cells = (median(f"floor +{server_work:g}/+{child:g}", 0) / peer for child in args.child)
        print(f"{server_work:>8g}" + "".join(f"{cell:8.2f}" for cell in cells))


if __name__ == "__main__":
    main()
