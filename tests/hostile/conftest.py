"""The hostile suite's harness: one real `fnbox serve` with worker processes, and `attack()`.

`attack()` saves a payload as the only function of a fresh workspace, runs it, and checks
what every hostile test must show: the answer's error code, that it came within the
timeout plus 1 s, that healthy calls of other workspaces in both languages succeed right
after, and that the stored workspaces are intact.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx2 as httpx
import pytest

from tests.processes import running_server

TIMEOUT_MS = 1000
SETTINGS = {
    "FUNCTIONS_WORKERS": "1",
    "FUNCTIONS_RUN_TIMEOUT": str(TIMEOUT_MS),
    "PYTHON_FUNCTIONS_RUN_TIMEOUT": str(TIMEOUT_MS),
    "NODE_WORKER_MAX_OLD_GENERATION_SIZE_MB": "64",
    "PYTHON_WORKER_MAX_MEMORY_MB": "512",
    "FUNCTIONS_WORKER_MAX_RSS_MB": "600",
}
HEALTHY = {
    "functions": {
        "js": {"code": "cache.n = (cache.n || 0) + 1; return cache.n;"},
        "py": {"language": "python", "code": "cache['n'] = cache.get('n', 0) + 1\nreturn cache['n']"},
    }
}
_names = itertools.count()


@dataclass
class Outcome:
    status: int
    body: Any
    elapsed: float

    @property
    def code(self) -> str:
        return self.body.get("error", "ok") if isinstance(self.body, dict) else "ok"


class Service:
    def __init__(self, url: str, timeout_ms: int = TIMEOUT_MS) -> None:
        self.url = url
        self.timeout_ms = timeout_ms
        self.client = httpx.Client(base_url=url, timeout=30)
        assert self.client.put("/v2/functions/healthy", json=HEALTHY).status_code == 200
        self.counters = {"js": 0, "py": 0}

    def attack(
        self,
        language: str,
        code: str,
        *,
        expect: tuple[str, ...],
        parameters: Any = None,
        keeps_neighbours_warm: bool = False,
        function: dict[str, Any] | None = None,
    ) -> Outcome:
        """Save and run a hostile function; assert it was contained. Returns what it answered.

        `expect` lists the acceptable codes ("ok" for a normal answer, or CompilationError
        and InvalidRequest for a payload refused at save time). With `keeps_neighbours_warm`
        the failure must be cheap: the healthy workspace's caches must survive it.
        """
        workspace = f"attack{next(_names)}"
        document = {"functions": {"f": {"language": language, "code": code, **(function or {})}}}
        started = time.monotonic()
        saved = self.client.put(f"/v2/functions/{workspace}", json=document)
        outcome = Outcome(saved.status_code, saved.json(), time.monotonic() - started)
        if saved.status_code == 200:
            started = time.monotonic()
            answer = self.client.post(f"/v2/functions/{workspace}/run/f", json={"parameters": parameters or {}})
            outcome = Outcome(answer.status_code, answer.json(), time.monotonic() - started)
        assert outcome.code in expect, f"expected one of {expect}, got {outcome.status} {outcome.body}"
        assert outcome.elapsed < self.timeout_ms / 1000 + 1, f"answered after {outcome.elapsed:.2f} s"
        self.check_healthy(keeps_neighbours_warm)
        return outcome

    def check_healthy(self, warm: bool = False) -> None:
        for function in ("js", "py"):
            answer = self.client.post(f"/v2/functions/healthy/run/{function}", json={})
            assert answer.status_code == 200, f"healthy {function} failed right after: {answer.json()}"
            count, previous = answer.json()["result"], self.counters[function]
            self.counters[function] = count
            if warm:
                assert count == previous + 1, f"healthy {function}'s cache was reset"
        assert self.client.get("/v2/functions/healthy").json() == HEALTHY
        assert "healthy" in self.client.get("/v2/functions").json()


@pytest.fixture(scope="session")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    with running_server(tmp_path_factory.mktemp("hostile"), **SETTINGS) as server:
        service = Service(server.url)
        try:
            yield service
        finally:
            service.client.close()


@pytest.fixture(scope="session")
def memory_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """A service whose Python bombs can only end at the memory cap, never at the clock.

    Filling a worker's address space takes as long as the machine's page faults: plain
    CPython needs 0.6-0.9 s for 512 MB on a 2-core VM here, and more on a slower one, so
    the 1 s timeout of `service` would race the cap.
    """
    timeout_ms = 10 * TIMEOUT_MS
    settings = {
        **SETTINGS,
        "PYTHON_FUNCTIONS_RUN_TIMEOUT": str(timeout_ms),
        "PYTHON_WORKER_MAX_MEMORY_MB": "256",
    }
    with running_server(tmp_path_factory.mktemp("memory"), **settings) as server:
        service = Service(server.url, timeout_ms)
        try:
            yield service
        finally:
            service.client.close()
