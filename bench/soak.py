"""A hostile-load soak: healthy traffic in both languages while other tenants attack.

    python bench/soak.py                    # 60 s
    python bench/soak.py --seconds 300      # the full five minutes

Starts `fnbox serve` (two workers per language) with its data directory on a small tmpfs
(`--disk`, root only; elsewhere a temporary folder), then for `--seconds`:

- healthy tenants call JavaScript and Python hellos (which keep a `cache` count) on a few
  keep-alive clients, and save their workspace now and then;
- hostile tenants fire every family at once: Python runs stuck in C code, JavaScript
  denial-of-service payloads, results and log floods that fill the disk, big saves,
  oversized headers, slowloris and idle connections;
- a random worker process is killed with SIGKILL every few seconds.

It prints the healthy calls made and failed (goal: 0), their p50, p99 and max latency, the
healthy executions whose record was lost (a record that cannot be read back afterwards),
and what the attackers got. Healthy saves that answered 507 on the full disk are counted
apart: refusing them is the documented behaviour.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import ctypes
import os
import random
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.processes import running_server

HEALTHY = {
    "functions": {
        "hello": {
            "code": "cache.n = (cache.n || 0) + 1; return 'Hello ' + name;",
            "parameters": {"name": {"type": "string"}},
        },
        "pyhello": {
            "language": "python",
            "code": "cache['n'] = cache.get('n', 0) + 1\nreturn 'Hello ' + name",
            "parameters": {"name": {"type": "string"}},
        },
    }
}
PYTHON_STALLS = {
    "range_in": "return 1.5 in range(10**18)",
    "range_count": "return range(10**18).count(0.5)",
    "nested_re": "import re\nreturn bool(re.match(r'(a+)+$', 'a' * 40 + 'b'))",
    "fraction": "from fractions import Fraction\nx = Fraction(3, 7)\nfor i in range(64):\n    x = x * x\nreturn 1",
    "loop": "while True:\n    pass",
}
JS_PAYLOADS = {
    "tsort": "const a = new Float64Array(2**22); for (let i=0;i<a.length;i++) a[i]=Math.random(); a.sort((x,y)=>x-y); return 1;",
    "bigstr": "let s = 'x'; for (let i = 0; i < 40; i++) s += s; return s.length;",
    "arrays": "let a = []; for (;;) a.push(new Array(1e6).fill(0));",
    "fill": "return new Array(2 ** 31).fill(0).length;",
    "intl": "let r = 0; for (let i = 0; i < 1e7; i++) r += new Intl.NumberFormat('de-DE').format(i).length; return r;",
    "normalize": "return '\\u1E9B\\u0323'.repeat(2**22).normalize('NFKD').length;",
    "jsondeep": "return JSON.parse('['.repeat(1e6) + ']'.repeat(1e6)).length;",
    "bigint": "let x = 3n; for (let i = 0; i < 40; i++) x = x * x; return x.toString().length;",
    "spin": "while (true) {}",
    "buffers": "const b = []; for (;;) b.push(new ArrayBuffer(2**26));",
}
DISK_FILLERS = {
    "bigresult": "return 'r'.repeat(8 * 1024 * 1024);",
    "logflood": "for (let i = 0; i < 1000; i++) console.log('x'.repeat(8000)); return 1;",
    "pyflood": "for i in range(1000):\n    print('y' * 8000)\nreturn 'z' * 3000000",
}


def hostile_document() -> dict:
    functions: dict[str, dict] = {}
    for name, code in PYTHON_STALLS.items():
        functions[name] = {"language": "python", "code": code, "timeout": 1500}
    for name, code in JS_PAYLOADS.items():
        functions[name] = {"code": code, "timeout": 1500}
    for name, code in DISK_FILLERS.items():
        functions[name] = {"language": "python" if name.startswith("py") else "javascript", "code": code}
    return {"functions": functions}


@contextlib.contextmanager
def small_disk(size: str) -> Iterator[Path]:
    """A tmpfs of `size` (root only), else a temporary folder; yields the data directory."""
    folder = Path(tempfile.mkdtemp(prefix="fnbox-soak-"))
    libc = ctypes.CDLL(None, use_errno=True)
    mounted = libc.mount(b"tmpfs", os.fsencode(folder), b"tmpfs", 0, f"size={size}".encode()) == 0
    if not mounted:
        print(f"(not root: no tmpfs, the disk does not fill: {os.strerror(ctypes.get_errno())})", file=sys.stderr)
    try:
        yield folder
    finally:
        if mounted:
            libc.umount2(os.fsencode(folder), 2)
        with contextlib.suppress(OSError):
            folder.rmdir()


class Tally:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.times: list[float] = []
        self.failures: collections.Counter[str] = collections.Counter()
        self.calls = 0
        self.executions: list[str] = []
        self.refused_saves = 0
        self.attacks: collections.Counter[str] = collections.Counter()
        self.messages: list[str] = []

    def healthy(self, elapsed: float, failure: str | None, execution: str | None) -> None:
        with self.lock:
            self.calls += 1
            self.times.append(elapsed)
            if failure:
                self.failures[failure] += 1
            if execution:
                self.executions.append(execution)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


def children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError), open(f"/proc/{entry}/stat") as stat:
                if int(stat.read().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry))
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--disk", default="48m", help="size of the tmpfs holding the data directory")
    parser.add_argument("--kill-every", type=float, default=5.0, help="seconds between two random worker kills")
    args = parser.parse_args()
    tally = Tally()
    stop = threading.Event()
    with (
        small_disk(args.disk) as data,
        running_server(
            data, FUNCTIONS_WORKERS="2", HTTP_REQUEST_TIMEOUT="5", EXECUTIONS_MAX_RECORD_BYTES="256kb"
        ) as server,
    ):
        url = server.url
        host, port = url.removeprefix("http://").split(":")
        address = (host, int(port))
        for index in range(3):
            httpx.post(f"{url}/v2/functions/healthy{index}", json=HEALTHY, timeout=30).raise_for_status()
        for index in range(2):
            httpx.post(f"{url}/v2/functions/hostile{index}", json=hostile_document(), timeout=30).raise_for_status()

        def healthy(index: int, function: str) -> None:
            workspace = f"healthy{index}"
            with httpx.Client(timeout=60) as client:
                count = 0
                while not stop.is_set():
                    count += 1
                    started = time.perf_counter()
                    failure = execution = None
                    try:
                        answer = client.post(
                            f"{url}/v2/functions/{workspace}/run/{function}", json={"parameters": {"name": str(count)}}
                        )
                        execution = answer.headers.get("x-execution-id")
                        if answer.status_code != 200:
                            body = answer.json()
                            failure = f"{function}: {answer.status_code} {body.get('error')}"
                            tally.messages.append(str(body.get("message")))
                    except httpx.TransportError as exc:
                        failure = f"{function}: {type(exc).__name__}"
                    tally.healthy((time.perf_counter() - started) * 1000, failure, execution)
                    if count % 200 == 0:  # a healthy save now and then
                        answer = client.put(f"{url}/v2/functions/{workspace}", json=HEALTHY)
                        if answer.status_code == 507:
                            tally.refused_saves += 1
                        elif answer.status_code != 200:
                            tally.healthy(0.0, f"save: {answer.status_code} {answer.json().get('error')}", None)
                    stop.wait(0.01)

        def fire(names: list[str]) -> None:
            with httpx.Client(timeout=60) as client:
                while not stop.is_set():
                    name = random.choice(names)
                    try:
                        answer = client.post(f"{url}/v2/functions/hostile{random.randrange(2)}/run/{name}", json={})
                        tally.attacks[f"{name}: {answer.json().get('error', 'ok')}"] += 1
                    except (httpx.TransportError, ValueError) as exc:
                        tally.attacks[f"{name}: {type(exc).__name__}"] += 1
                    stop.wait(0.5)

        def big_saves() -> None:
            with httpx.Client(timeout=60) as client:
                index = 0
                while not stop.is_set():
                    index += 1
                    document = {"functions": {"f": {"code": "return 1;", "description": "d" * 900_000}}}
                    answer = client.put(f"{url}/v2/functions/filler{index}", json=document)
                    tally.attacks[f"big save: {answer.status_code}"] += 1
                    stop.wait(0.5)

        def connections() -> None:
            idle: list[socket.socket] = []
            while not stop.is_set():
                with contextlib.suppress(OSError):
                    for _ in range(50):
                        idle.append(socket.create_connection(address, timeout=5))
                    slow = socket.create_connection(address, timeout=5)
                    slow.sendall(b"GET /sys/healthcheck HTTP/1.1\r\nHost: x\r\n")
                    idle.append(slow)
                    huge = socket.create_connection(address, timeout=5)
                    with contextlib.suppress(OSError):
                        huge.sendall(b"GET /sys/healthcheck HTTP/1.1\r\nX-Big: " + b"a" * (1024 * 1024))
                    huge.close()
                    tally.attacks["connections opened"] += 52
                if len(idle) > 1500:
                    for sock in idle[:500]:
                        sock.close()
                    del idle[:500]
                stop.wait(0.5)
            for sock in idle:
                sock.close()

        def killer() -> None:
            while not stop.wait(random.uniform(0.5, 1.5) * args.kill_every):
                workers = children(server.process.pid)
                if workers:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(random.choice(workers), 9)
                        tally.attacks["workers killed"] += 1

        threads = [threading.Thread(target=healthy, args=(i, f)) for i in range(3) for f in ("hello", "pyhello")]
        threads += [
            threading.Thread(target=fire, args=(list(PYTHON_STALLS),)),
            threading.Thread(target=fire, args=(list(JS_PAYLOADS),)),
            threading.Thread(target=fire, args=(list(DISK_FILLERS),)),
            threading.Thread(target=big_saves),
            threading.Thread(target=connections),
            threading.Thread(target=killer),
        ]
        for thread in threads:
            thread.start()
        stop.wait(args.seconds)
        stop.set()
        for thread in threads:
            thread.join()
        time.sleep(1.0)  # the recorder writes its last batch
        lost = 0
        with httpx.Client(timeout=30) as client:
            for execution in tally.executions:
                if client.get(f"{url}/v2/executions/{execution}").status_code != 200:
                    lost += 1
        disk = os.statvfs(data)
        full = 100 * (1 - disk.f_bavail / max(1, disk.f_blocks))
    failed = sum(tally.failures.values())
    print(f"soak of {args.seconds:g} s, data directory on a {args.disk} tmpfs ({full:.0f}% full at the end)")
    print(f"healthy calls: {tally.calls}, failed: {failed} {dict(tally.failures) or ''}")
    for message in sorted(set(tally.messages))[:5]:
        print(f"  {message}")
    print(
        f"healthy latency: p50 {statistics.median(tally.times or [0]):.2f} ms,"
        f" p99 {percentile(tally.times, 0.99):.2f} ms, max {max(tally.times or [0]):.2f} ms"
    )
    print(
        f"healthy records lost: {lost} of {len(tally.executions)}; healthy saves refused (507): {tally.refused_saves}"
    )
    print(f"attacks: {dict(sorted(tally.attacks.items()))}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
