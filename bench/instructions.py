"""Instructions the server process executes per warm call, this tree against an older one: a figure
that other load on the machine does not move (CPU time per call moves by ±10% on a shared machine).

    python bench/instructions.py --before /tmp/fnbox-before [--calls 2000] [--rounds 2]

Serves each tree under valgrind's callgrind (the server process only: its workers run natively),
with runs recorded (the default), makes `--calls` warm calls of each function on 4 keep-alive
connections, stops it, and takes callgrind's count of instructions; the same with no calls is
subtracted (start-up and shutdown), and the difference divided by the calls. Rounds alternate
between the trees; medians are printed. valgrind slows the server about 50 times: each round
takes a minute or two.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from recording import HELLO
from servers import ROOT, free_port

FUNCTIONS = ("hello", "pyhello")
BODY = json.dumps({"parameters": {"name": "world"}})
CONNECTIONS = 4


def call(connection: http.client.HTTPConnection, method: str, path: str, body: str) -> None:
    connection.request(method, path, body, {"content-type": "application/json"})
    answer = connection.getresponse()
    answer.read()
    if answer.status != 200:
        raise RuntimeError(f"{method} {path} answered {answer.status}")


def instructions(tree: Path, function: str, calls: int, log_dir: Path) -> int:
    """Instructions of one served tree's whole life, with `calls` warm calls of `function` in it."""
    port = free_port()
    environ = {**os.environ, "PYTHONPATH": str(tree), "SHUTDOWN_GRACE_PERIOD": "2", "EXECUTIONS_RECORD_RUNS": "yes"}
    log = log_dir / f"{tree.name}-{function}-{calls}.log"
    with tempfile.TemporaryDirectory(prefix="fnbox-bench-") as data_dir, open(log, "w+") as out:
        argv = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable]
        argv += ["-m", "fnbox", "serve", "--port", str(port), "--data-dir", data_dir]
        process = subprocess.Popen(argv, cwd=tree, env=environ, stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 300
            while True:
                try:
                    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
                    call(connection, "POST", "/v2/functions/bench", json.dumps(HELLO))
                    break
                except OSError:
                    if time.monotonic() > deadline or process.poll() is not None:
                        raise RuntimeError(f"the server did not start, see {log}") from None
                    time.sleep(0.5)
            for _ in range(20):  # the sandbox warm, the first calls' one-off work done
                call(connection, "POST", f"/v2/functions/bench/run/{function}", BODY)
            connection.close()
            clients = [
                threading.Thread(target=calls_on_one_connection, args=(port, function, calls // CONNECTIONS))
                for _ in range(CONNECTIONS)
            ]
            for client in clients:
                client.start()
            for client in clients:
                client.join()
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=300)
        out.seek(0)
        counted = re.findall(r"Collected : (\d+)", out.read())
    if not counted:
        raise RuntimeError(f"no count from callgrind, see {log}")
    return int(counted[0])


def calls_on_one_connection(port: int, function: str, calls: int) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    for _ in range(calls):
        call(connection, "POST", f"/v2/functions/bench/run/{function}", BODY)
    connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True, help="the older checkout")
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is needed (apt-get install valgrind)")
    trees = {"fnbox-before": args.before.resolve(), "fnbox": ROOT}
    log_dir = Path(tempfile.mkdtemp(prefix="fnbox-instructions-"))
    per_call: dict[tuple[str, str], list[float]] = {}
    for function in FUNCTIONS:
        for _ in range(args.rounds):
            for kind, tree in trees.items():
                idle = instructions(tree, function, 0, log_dir)
                busy = instructions(tree, function, args.calls, log_dir)
                per_call.setdefault((function, kind), []).append((busy - idle) / args.calls)
    print(f"instructions of the server process per warm call (callgrind), median of {args.rounds} rounds")
    print(f"{args.calls} calls on {CONNECTIONS} keep-alive connections, runs recorded; logs in {log_dir}")
    print(f"{'function':10} {'service':13} {'instructions':>12} {'ratio':>6}")
    for function in FUNCTIONS:
        base = statistics.median(per_call[function, "fnbox-before"])
        for kind in trees:
            value = statistics.median(per_call[function, kind])
            print(f"{function:10} {kind:13} {value:12,.0f} {value / base:6.2f}")


if __name__ == "__main__":
    main()
