"""What an outbound request costs a run, and how many slow ones one worker holds while a neighbour says hello.

    python bench/outbound.py                    # 300 calls of each kind, 200 slow calls over 4 workspaces
    python bench/outbound.py --calls 100 --slow 128 --spread 4 --languages python

Starts `fnbox serve` (one worker per language, FUNCTIONS_EGRESS=127.0.0.1) and a local
target on 127.0.0.1. First, warm and one call at a time: the median and p90 of a bare run,
of a run that makes one request to the target (fetch in JavaScript, requests.get in Python),
and their difference (ms). Then, per language, `--slow` calls (over `--spread` workspaces) whose function waits on
a target that answers after 2 s, all at once, while a neighbour workspace's hello is timed
on the same worker: its p50/max against the same hellos on the idle worker, and how many
slow requests the target held at once.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx2 as httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.processes import running_server
from tests.targets import http_target

CODE = {
    "javascript": {
        "bare": "return 1;",
        "call": "const r = await fetch(params.url); return (await r.text()).length;",
        "hello": "return 'hello';",
    },
    "python": {
        "bare": "return 1",
        "call": "import requests\nreturn len(requests.get(params['url']).text)",
        "hello": "return 'hello'",
    },
}


class Held:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = self.most = 0

    def slow(self, handler):
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
        time.sleep(2)
        with self.lock:
            self.now -= 1
        return 200, {}, b"late"


def timed(client: httpx.Client, path: str, url: str, n: int) -> list[float]:
    out = []
    for _ in range(n):
        started = time.perf_counter()
        answer = client.post(path, json={"parameters": {"url": url}})
        out.append((time.perf_counter() - started) * 1000)
        answer.raise_for_status()
    return out


def p(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def slow_and_hellos(
    base: str, language: str, url: str, slow: int, spread: int, held: Held
) -> tuple[list[float], int]:
    limits = httpx.Limits(max_connections=slow + 10)
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as client:
        calls = [
            asyncio.ensure_future(
                client.post(f"/v2/functions/slow{i % spread}_{language}/run/call", json={"parameters": {"url": url}})
            )
            for i in range(slow)
        ]
        await asyncio.sleep(0.5)
        hellos = []
        while not all(c.done() for c in calls) and len(hellos) < 200:
            started = time.perf_counter()
            (await client.post(f"/v2/functions/hello_{language}/run/hello", json={})).raise_for_status()
            hellos.append((time.perf_counter() - started) * 1000)
            await asyncio.sleep(0.01)
        answers = await asyncio.gather(*calls)
    ok = sum(1 for a in answers if a.status_code == 200)
    failures = {
        a.json().get("error", "?") + ": " + a.json().get("message", "")[:80] for a in answers if a.status_code != 200
    }
    for failure in sorted(failures):
        print("  failed:", failure)
    return hellos, ok


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--slow", type=int, default=200)
    parser.add_argument("--spread", type=int, default=4, help="workspaces the slow calls are spread over")
    parser.add_argument("--languages", default="javascript,python")
    args = parser.parse_args()
    held = Held()
    routes = {"/x": lambda h: (200, {"Content-Type": "text/plain"}, b"hello"), "/slow": held.slow}
    with (
        tempfile.TemporaryDirectory() as data,
        http_target(routes) as target,
        running_server(
            Path(data),
            FUNCTIONS_WORKERS="1",
            FUNCTIONS_EGRESS="127.0.0.1",
            EXECUTIONS_RECORD_RUNS="no",
            FUNCTIONS_RUN_TIMEOUT="60000",
            PYTHON_FUNCTIONS_RUN_TIMEOUT="60000",
        ) as server,
        httpx.Client(base_url=server.url, timeout=60) as client,
    ):
        for language, code in CODE.items():
            functions = {name: {"language": language, "code": body} for name, body in code.items()}
            for workspace in ("w", "hello", *(f"slow{i}" for i in range(args.spread))):
                client.put(f"/v2/functions/{workspace}_{language}", json={"functions": functions}).raise_for_status()
        print("one call at a time, warm (ms)      p50     p90")
        for language in CODE:
            for kind in ("bare", "call"):
                timed(client, f"/v2/functions/w_{language}/run/{kind}", f"{target}/x", 20)
            bare = timed(client, f"/v2/functions/w_{language}/run/bare", "", args.calls)
            fetched = timed(client, f"/v2/functions/w_{language}/run/call", f"{target}/x", args.calls)
            print(f"{language:10} bare run              {statistics.median(bare):7.2f} {p(bare, 0.9):7.2f}")
            print(f"{language:10} with one request      {statistics.median(fetched):7.2f} {p(fetched, 0.9):7.2f}")
            print(f"{language:10} the request costs     {statistics.median(fetched) - statistics.median(bare):7.2f}")
        for language in args.languages.split(","):
            idle = timed(client, f"/v2/functions/hello_{language}/run/hello", "", 50)
            held.most = 0
            hellos, ok = asyncio.run(
                slow_and_hellos(server.url, language, f"{target}/slow", args.slow, args.spread, held)
            )
            print(
                f"{language:10} {args.slow} slow calls over {args.spread} workspaces ({ok} ok, "
                f"{held.most} at once at the target): "
                f"neighbour hello p50 {statistics.median(hellos):.2f} ms, max {max(hellos):.2f} ms "
                f"(idle: p50 {statistics.median(idle):.2f}, max {max(idle):.2f}) over {len(hellos)} hellos"
            )


if __name__ == "__main__":
    main()
