"""Load: wrk runs (requests/s, p50, p99, errors) and a small keep-alive JSON client for setup calls."""

from __future__ import annotations

import http.client
import json
import math
import os
import re
import subprocess
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).resolve().parent / "load.lua"
UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


@dataclass
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int  # non-2xx answers and socket errors (timeouts included)
    non2xx: int = 0
    socket_errors: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def wrk(
    url: str,
    *,
    connections: int,
    duration: float,
    spread: tuple[int, str, str] | None = None,
    body: str | None = None,
) -> WrkResult:
    """One wrk run with one client thread. `spread` is (workspaces, prefix, function)."""
    env = dict(os.environ)
    if body is not None:
        env["BODY"] = body
    if spread is not None:
        env["SPREAD"], env["PREFIX"], env["FUNCTION"] = str(spread[0]), spread[1], spread[2]
    argv = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        "--timeout",
        "30s",
        "--latency",
        "-s",
        str(SCRIPT),
        url,
    ]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=duration + 120)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed: {done.stderr.strip() or done.stdout.strip()}")
    return parse(done.stdout)


def wrk_total(url: str, *, connections: int, count: int, chunk: int = 10) -> WrkResult:
    """wrk runs (the first of 1 s, to learn the rate; then up to `chunk` s) until at least `count`
    answers: wrk itself stops on time only."""
    answered = errors = 0
    seconds, rate = 0, 0.0
    while answered < count:
        duration = 1 if not rate else min(chunk, max(1, math.ceil((count - answered) / rate)))
        result = wrk(url, connections=connections, duration=duration)
        answered, errors, seconds = answered + result.requests, errors + result.errors, seconds + duration
        rate = result.rps or 1.0
    return WrkResult(rps=answered / seconds, p50_ms=float("nan"), p99_ms=float("nan"), requests=answered, errors=errors)


def parse(text: str) -> WrkResult:
    def latency(percent: str) -> float:
        match = re.search(rf"^\s+{percent}%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.M)
        return float(match.group(1)) * UNITS[match.group(2)] if match else float("nan")

    rps = re.search(r"^Requests/sec:\s+([\d.]+)", text, re.M)
    requests = re.search(r"^\s+(\d+) requests in", text, re.M)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    bad_answers = int(non2xx.group(1)) if non2xx else 0
    socket_errors = sum(map(int, sockets.groups())) if sockets else 0
    return WrkResult(
        rps=float(rps.group(1)) if rps else 0.0,
        p50_ms=latency("50"),
        p99_ms=latency("99"),
        requests=int(requests.group(1)) if requests else 0,
        errors=bad_answers + socket_errors,
        non2xx=bad_answers,
        socket_errors=socket_errors,
    )


class Client:
    """Blocking JSON calls over one keep-alive connection."""

    def __init__(self, port: int, timeout: float = 120) -> None:
        self.port = port
        self.timeout = timeout
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)

    def post(self, path: str, body: Any) -> tuple[int, Any]:
        data = json.dumps(body).encode()
        for attempt in (1, 2):
            try:
                self.connection.request("POST", path, data, {"Content-Type": "application/json"})
                response = self.connection.getresponse()
                raw = response.read()
                return response.status, json.loads(raw) if raw else None
            except (http.client.RemoteDisconnected, ConnectionError):
                self.connection.close()  # a keep-alive connection the server had closed
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.connection.close()


def post_many(port: int, calls: Iterable[tuple[str, Any]], *, threads: int = 8) -> list[tuple[int, Any]]:
    """Many setup calls at once (saves, first runs), each thread on its own connection."""
    local = threading.local()

    def call(item: tuple[str, Any]) -> tuple[int, Any]:
        if not hasattr(local, "client"):
            local.client = Client(port)
        return local.client.post(*item)

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(call, calls))
