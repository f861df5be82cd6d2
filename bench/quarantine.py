"""A neighbour's hello while one tenant fires Python payloads that stall in C code, every second.

    python bench/quarantine.py                  # 60 s
    python bench/quarantine.py --seconds 20 --quarantine 0     # without the quarantine, to compare

Starts `fnbox serve` with one worker per language (so attacker and neighbour share it),
fires each payload in turn every second (2 s timeout: each gets its worker killed), and
meanwhile calls the neighbour's Python hello every 50 ms. Prints the neighbour's p50 and
max (ms), its failures, and how many times its `cache` was reset.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx2 as httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.processes import running_server

PAYLOADS = {
    "range_in": "return 1.5 in range(10**18)",
    "range_count": "return range(10**18).count(0.5)",
    "nested_re": "import re\nreturn bool(re.match(r'(a+)+$', 'a' * 40 + 'b'))",
    "fraction": "from fractions import Fraction\nx = Fraction(3, 7)\nfor i in range(64):\n    x = x * x\nreturn 1",
}
ATTACKER = {
    "functions": {name: {"language": "python", "code": code, "timeout": 2000} for name, code in PAYLOADS.items()}
}
NEIGHBOUR = {
    "functions": {
        "hello": {"language": "python", "code": "cache['n'] = cache.get('n', 0) + 1\nreturn cache['n']"},
    }
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--quarantine", default="600", help="FUNCTIONS_QUARANTINE_SECONDS")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as data,
        running_server(
            Path(data), FUNCTIONS_WORKERS="1", FUNCTIONS_QUARANTINE_SECONDS=args.quarantine, EXECUTIONS_RECORD_RUNS="no"
        ) as server,
    ):
        url = server.url
        httpx.post(f"{url}/v2/functions/attacker", json=ATTACKER).raise_for_status()
        httpx.post(f"{url}/v2/functions/neighbour", json=NEIGHBOUR).raise_for_status()
        stop = threading.Event()
        attacks: dict[str, int] = {}

        def attack() -> None:
            with httpx.Client(timeout=30) as client:
                names = list(PAYLOADS)
                index = 0
                while not stop.is_set():
                    started = time.monotonic()
                    name = names[index % len(names)]
                    index += 1
                    error = client.post(f"{url}/v2/functions/attacker/run/{name}", json={}).json().get("error", "ok")
                    attacks[f"{name}: {error}"] = attacks.get(f"{name}: {error}", 0) + 1
                    stop.wait(max(0.0, 1.0 - (time.monotonic() - started)))

        attacker = threading.Thread(target=attack)
        attacker.start()
        times: list[float] = []
        failed = resets = 0
        last = 0
        deadline = time.monotonic() + args.seconds
        with httpx.Client(timeout=30) as client:
            while time.monotonic() < deadline:
                started = time.perf_counter()
                body = client.post(f"{url}/v2/functions/neighbour/run/hello", json={}).json()
                times.append((time.perf_counter() - started) * 1000)
                if "result" not in body:
                    failed += 1
                    continue
                resets += body["result"] <= last
                last = body["result"]
                time.sleep(0.05)
        stop.set()
        attacker.join()
    print(f"{args.seconds:g} s, FUNCTIONS_QUARANTINE_SECONDS={args.quarantine}; attacks: {attacks}")
    print(
        f"neighbour hello: {len(times)} calls, p50 {statistics.median(times):.2f} ms, max {max(times):.2f} ms,"
        f" failed {failed}, cache resets {resets}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
