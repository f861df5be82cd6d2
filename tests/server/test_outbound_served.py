"""Outbound requests of functions through a real server with one worker per language.

A workspace whose function waits 200 ms on an API is not capped at 5 calls a second: its
runs overlap while they wait. Waiting runs hold up no neighbour. Each request is a debug
entry in the run's logs, and the execution record keeps it.
"""

from __future__ import annotations

import asyncio
import threading
import time

import httpx2 as httpx
import pytest

from tests.processes import running_server
from tests.targets import http_target

pytestmark = pytest.mark.slow


class Counter:
    """Requests in flight at a target, and the most there were at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = 0
        self.most = 0
        self.release = threading.Event()

    def hold(self, seconds: float | None) -> None:
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
        try:
            if seconds is None:
                self.release.wait(10)
            else:
                time.sleep(seconds)
        finally:
            with self.lock:
                self.now -= 1


WAIT = {
    "python": "import requests\nreturn requests.get(params['url'], timeout=10).text",
    "javascript": "return await (await fetch(params.url)).text();",
}
HELLO = {"python": "return 'hello'", "javascript": "return 'hello';"}


def workspace(code: str, language: str) -> dict:
    return {"functions": {"f": {"language": language, "code": code}}}


async def _calls(server_url: str, workspace_name: str, url: str, count: int, width: int) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=width)
    async with httpx.AsyncClient(base_url=server_url, timeout=30, limits=limits) as client:
        gate = asyncio.Semaphore(width)

        async def one() -> httpx.Response:
            async with gate:
                return await client.post(f"/v2/functions/{workspace_name}/run/f", json={"parameters": {"url": url}})

        return await asyncio.gather(*(one() for _ in range(count)))


@pytest.mark.parametrize("language", ["python", "javascript"])
def test_runs_of_one_workspace_overlap_while_they_wait(tmp_path, language):
    counter = Counter()
    routes = {"/slow": lambda h: (counter.hold(0.2), (200, {}, b"late"))[1]}
    with (
        http_target(routes) as target,
        running_server(
            tmp_path, FUNCTIONS_WORKERS="1", FUNCTIONS_EGRESS="127.0.0.1", EXECUTIONS_RECORD_RUNS="no"
        ) as server,
    ):
        httpx.put(f"{server.url}/v2/functions/api", json=workspace(WAIT[language], language)).raise_for_status()
        asyncio.run(_calls(server.url, "api", f"{target}/slow", 8, 8))  # warm
        counter.most = 0
        started = time.perf_counter()
        answers = asyncio.run(_calls(server.url, "api", f"{target}/slow", 300, 40))
        elapsed = time.perf_counter() - started
    assert [a.status_code for a in answers] == [200] * 300, answers[0].text
    assert {a.json()["result"] for a in answers} == {"late"}
    print(
        f"\n{language}: 300 calls waiting 200 ms each in {elapsed:.2f} s: {300 / elapsed:.0f} calls/s, "
        f"{counter.most} at once at the target"
    )
    # 20 waits of 200 ms at once are 100 calls a second; in turn they would be 5.
    assert counter.most >= 20


@pytest.mark.parametrize("language", ["python", "javascript"])
def test_waiting_runs_hold_up_no_neighbour_and_their_logs_are_recorded(tmp_path, language):
    counter = Counter()
    routes = {"/hold": lambda h: (counter.hold(None), (200, {}, b"released"))[1]}
    with (
        http_target(routes) as target,
        running_server(tmp_path, FUNCTIONS_WORKERS="1", FUNCTIONS_EGRESS="127.0.0.1") as server,
    ):
        httpx.put(f"{server.url}/v2/functions/api", json=workspace(WAIT[language], language)).raise_for_status()
        for name, lang in (("hello_py", "python"), ("hello_js", "javascript")):
            httpx.put(f"{server.url}/v2/functions/{name}", json=workspace(HELLO[lang], lang)).raise_for_status()

        async def main() -> tuple[list[httpx.Response], list[httpx.Response], int]:
            waiting = asyncio.ensure_future(_calls(server.url, "api", f"{target}/hold", 30, 30))
            deadline = time.monotonic() + 20
            while counter.now < 30 and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
                hellos = [
                    await client.post(f"/v2/functions/{name}/run/f", json={}) for name in ("hello_py", "hello_js")
                ]
                hellos += [await client.post("/v2/functions/hello_py/run/f", json={}) for _ in range(20)]
            in_flight = counter.now
            counter.release.set()
            return hellos, await waiting, in_flight

        hellos, waited, in_flight = asyncio.run(main())
        assert in_flight == 30  # every hello was answered while all 30 requests were still held
        assert [h.json()["result"] for h in hellos] == ["hello"] * 22
        assert [w.json()["result"] for w in waited] == ["released"] * 30
        entry = waited[0].json()["logs"][0]
        assert entry["level"] == "debug" and entry["message"].startswith(f"GET {target}/hold -> 200 in ")
        record = httpx.get(f"{server.url}/v2/executions/{waited[0].headers['X-Execution-Id']}").json()
        assert entry in record["logs"]
