"""Issue 3, item 6: healthy tenants are served while another one keeps attacking."""

import asyncio

import httpx2 as httpx
import pytest

from tests.processes import running_server

pytestmark = pytest.mark.slow  # a real server, worker processes or a subprocess

HOSTILE = [
    ("javascript", "while (true) {}"),
    ("python", "import re\nreturn bool(re.match(r'(a+)+$', 'a' * 40 + 'b'))"),  # holds the GIL in C: a kill
    ("javascript", "const b = new Uint8Array(2 ** 30); b.fill(1); return b.length;"),  # past the RSS cap: a kill
    ("python", "return 'x' * 10 ** 10"),
    ("javascript", "let a = []; for (;;) a.push(new Array(1e6).fill(0));"),
    ("python", "while True:\n    pass"),
    ("javascript", "throw new Error('no')"),
]


def healthy_document(index: int) -> dict:
    if index % 2:
        return {
            "functions": {
                "f": {"language": "python", "code": f"return n + {index}", "parameters": {"n": {"type": "integer"}}}
            }
        }
    return {"functions": {"f": {"code": f"return n + {index};", "parameters": {"n": {"type": "integer"}}}}}


def test_two_hundred_healthy_runs_succeed_while_another_workspace_attacks(tmp_path):
    settings = {
        "FUNCTIONS_WORKERS": "2",
        "FUNCTIONS_RUN_TIMEOUT": "1000",
        "PYTHON_FUNCTIONS_RUN_TIMEOUT": "1000",
        "NODE_WORKER_MAX_OLD_GENERATION_SIZE_MB": "64",
        "FUNCTIONS_WORKER_MAX_RSS_MB": "600",
    }
    with running_server(tmp_path, **settings) as server:
        asyncio.run(_load(server.url))


async def _load(url: str) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=httpx.Limits(max_connections=60)) as client:
        for index in range(10):
            assert (await client.put(f"/v2/functions/tenant{index}", json=healthy_document(index))).status_code == 200
        hostile_codes: list[str] = []
        done = asyncio.Event()

        async def attack() -> None:
            turn = 0
            while not done.is_set():
                language, code = HOSTILE[turn % len(HOSTILE)]
                turn += 1
                await client.put(
                    "/v2/functions/attacker", json={"functions": {"f": {"language": language, "code": code}}}
                )
                answer = await client.post("/v2/functions/attacker/run/f", json={})
                hostile_codes.append(answer.json().get("error", "ok"))

        runs = iter(range(10**6))
        succeeded: list[int] = []
        failures: list[str] = []

        async def tenant_client() -> None:
            # At least 200 runs in all, and on until every hostile payload has been answered.
            while len(succeeded) + len(failures) < 200 or len(hostile_codes) < len(HOSTILE):
                run = next(runs)
                index = run % 10
                answer = await client.post(f"/v2/functions/tenant{index}/run/f", json={"parameters": {"n": run}})
                if answer.status_code == 200 and answer.json()["result"] == run + index:
                    succeeded.append(run)
                else:
                    failures.append(f"run {run}: {answer.status_code} {answer.text}")

        attacker = asyncio.create_task(attack())
        await asyncio.gather(*(tenant_client() for _ in range(50)))
        done.set()
        await attacker
    assert failures == [] and len(succeeded) >= 200
    assert {"TimeoutExceeded", "MemoryLimitExceeded", "FunctionError"} <= set(hostile_codes)
