"""Healthy hellos while idle and slowloris connections pile up on one fnbox server.

    python bench/abuse.py                   # 2000 idle, 500 slowloris, 300 hellos per language
    python bench/abuse.py --idle 1100 --nofile 1024

Starts `fnbox serve` (one worker per language) on a free port, opens the idle sockets
(they never send a byte) and the slowloris ones (a header line now and then, never the
end), then times hellos in each language on one keep-alive client and prints p50, p99
and max (ms), the failures, and how many attacking sockets the server had closed.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx2 as httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.processes import running_server

HELLO = {
    "functions": {
        "hello": {"code": "return 'Hello ' + name;", "parameters": {"name": {"type": "string"}}},
        "pyhello": {"language": "python", "code": "return 'Hello ' + name", "parameters": {"name": {"type": "string"}}},
    }
}


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--idle", type=int, default=2000)
    parser.add_argument("--slowloris", type=int, default=500)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--nofile", help="run the server under this open files limit (soft:hard), via prlimit")
    args = parser.parse_args()
    command: tuple[str, ...] = (sys.executable, "-m", "fnbox")
    if args.nofile:
        command = ("prlimit", f"--nofile={args.nofile}", *command)
    with (
        tempfile.TemporaryDirectory() as data,
        running_server(Path(data), command=command, FUNCTIONS_WORKERS="1", EXECUTIONS_RECORD_RUNS="no") as server,
    ):
        host, port = server.url.removeprefix("http://").split(":")
        address = (host, int(port))
        httpx.post(f"{server.url}/v2/functions/w", json=HELLO)
        sockets: list[socket.socket] = []
        for _ in range(args.idle):
            sockets.append(socket.create_connection(address))
        slow = []
        for _ in range(args.slowloris):
            sock = socket.create_connection(address)
            sock.sendall(b"POST /v2/functions/w/run/hello HTTP/1.1\r\nHost: x\r\n")
            slow.append(sock)
        stop = threading.Event()

        def drip() -> None:
            while not stop.wait(1.0):
                for sock in slow:
                    try:
                        sock.send(b"X-Drip: 1\r\n")
                    except OSError:
                        pass

        dripper = threading.Thread(target=drip, daemon=True)
        dripper.start()
        time.sleep(1.0)
        results = {}
        with httpx.Client(timeout=10) as client:
            for function in ("hello", "pyhello"):
                times, failed = [], 0
                for index in range(args.calls):
                    started = time.perf_counter()
                    try:
                        answer = client.post(
                            f"{server.url}/v2/functions/w/run/{function}", json={"parameters": {"name": str(index)}}
                        )
                        ok = answer.status_code == 200
                    except httpx.TransportError:
                        ok = False
                    times.append((time.perf_counter() - started) * 1000)
                    failed += not ok
                results[function] = (statistics.median(times), percentile(times, 0.99), max(times), failed)
        stop.set()
        closed = 0
        for sock in sockets + slow:
            sock.setblocking(False)
            try:
                closed += sock.recv(1, socket.MSG_PEEK) == b""
            except BlockingIOError:
                pass
            except OSError:
                closed += 1
            sock.close()
    print(f"{args.idle} idle + {args.slowloris} slowloris connections; {closed} closed by the server meanwhile")
    for function, (p50, p99, worst, failed) in results.items():
        print(f"{function:8} p50 {p50:6.2f} ms  p99 {p99:6.2f} ms  max {worst:7.2f} ms  failed {failed}/{args.calls}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
