"""Asynchronous executions through three real instances on one database: the shared queue."""

from __future__ import annotations

import os
import re
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import httpx2 as httpx
import psycopg
import pytest

from tests.server.test_instances import instances

pytestmark = pytest.mark.slow  # real servers and a real PostgreSQL

WORKSPACE = {
    "functions": {
        "echo": {"code": "return n;", "parameters": {"n": {"type": "integer"}}},
        "steps": {
            "code": "console.log('step 1'); await new Promise(r => setTimeout(r, 1200)); console.log('step 2'); return 'done';"
        },
        "long": {"code": "console.log('started'); await new Promise(r => setTimeout(r, 60000)); return 1;"},
    }
}
TIMEOUT_MS = 4000
#: The lease of an execution: the longest run timeout plus the Runtime's margin (LEASE_MARGIN).
LEASE = TIMEOUT_MS / 1000 + 5


def runs_ok(client: httpx.Client, url: str) -> float:
    text = client.get(f"{url}/metrics").text
    return sum(float(value) for value in re.findall(r'^fnbox_runs_total\{[^}]*outcome="ok"[^}]*\} (\S+)$', text, re.M))


def start(client: httpx.Client, url: str, function: str, **body: object) -> str:
    answer = client.post(f"{url}/v2/functions/w/run/{function}", json=body, headers={"Prefer": "respond-async"})
    assert answer.status_code == 202, answer.text
    return answer.json()["id"]


def holder_pid(database_url: str, execution_id: str) -> int:
    """The process id of the instance holding a running execution (its lease owner is host:pid:nonce)."""
    deadline = time.monotonic() + 60
    with psycopg.connect(database_url) as connection:
        while time.monotonic() < deadline:
            row = connection.execute(
                "SELECT lease_owner FROM fnbox_executions WHERE id = %s AND status = 'running'", (execution_id,)
            ).fetchone()
            connection.rollback()
            if row and row[0]:
                return int(row[0].split(":")[1])
            time.sleep(0.05)
    raise AssertionError(f"{execution_id} was never claimed")


def test_500_executions_accepted_by_three_instances_each_run_exactly_once(tmp_path, database_url):
    settings = {"EXECUTIONS_PER_WORKSPACE": "16", "EXECUTIONS_RECORD_RUNS": "no"}
    with instances(tmp_path, database_url, **settings) as servers, httpx.Client(timeout=30) as client:
        assert client.put(f"{servers[0].url}/v2/functions/w", json=WORKSPACE).status_code == 200

        def submit(index: int) -> str:
            with httpx.Client(timeout=30) as own:
                url = servers[index % 3].url
                return start(own, url, "echo", id=f"e{index:03}", parameters={"n": index})

        with ThreadPoolExecutor(6) as threads:
            ids = list(threads.map(submit, range(500)))
        assert len(set(ids)) == 500
        deadline = time.monotonic() + 120
        while True:
            page = client.get(f"{servers[2].url}/v2/executions", params={"limit": 1000}).json()
            ended = [item for item in page["executions"] if item["status"] not in ("accepted", "running")]
            if len(ended) == 500 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert len(ended) == 500
        assert {item["status"] for item in ended} == {"successful"}
        assert sorted(item["result"] for item in ended) == list(range(500))
        per_instance = [runs_ok(client, server.url) for server in servers]
        assert sum(per_instance) == 500, per_instance  # no run twice, none lost
        assert all(count > 0 for count in per_instance), per_instance


def test_an_execution_is_read_waited_for_followed_and_cancelled_through_any_instance(tmp_path, database_url):
    settings = {"FUNCTIONS_RUN_TIMEOUT": str(TIMEOUT_MS), "PYTHON_FUNCTIONS_RUN_TIMEOUT": str(TIMEOUT_MS)}
    with instances(tmp_path, database_url, **settings) as (a, b, c), httpx.Client(timeout=30) as client:
        assert client.put(f"{a.url}/v2/functions/w", json=WORKSPACE).status_code == 200
        steps = start(client, a.url, "steps")
        with client.stream(
            "GET", f"{b.url}/v2/executions/{steps}/logs?follow=true", headers={"Accept": "text/event-stream"}
        ) as stream:
            lines = [line for line in stream.iter_lines() if line.startswith(("event:", "data:"))]
        messages = [line for line in lines if "step" in line]
        assert len(messages) == 2 and "step 1" in messages[0] and "step 2" in messages[1]
        assert lines[-2] == "event: end" and '"successful"' in lines[-1]
        assert client.get(f"{c.url}/v2/executions/{steps}/wait").json()["result"] == "done"
        assert client.get(f"{c.url}/v2/executions/{steps}/logs").json()["logs"][1]["message"] == "step 2"

        long = start(client, a.url, "long")
        holder = holder_pid(database_url, long)
        elsewhere = next(server for server in (a, b, c) if server.process.pid != holder)
        waiting = client.get(f"{elsewhere.url}/v2/executions/{long}/wait", params={"timeout": 0.5}).json()
        assert waiting["status"] == "running"
        cancelled = client.post(f"{elsewhere.url}/v2/executions/{long}/cancel")
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["status"] == "dismissed"
        again = client.post(f"{elsewhere.url}/v2/executions/{long}/cancel")
        assert again.status_code == 409


def test_an_instance_killed_mid_run_leaves_its_execution_failed_once_the_lease_runs_out(tmp_path, database_url):
    settings = {"FUNCTIONS_RUN_TIMEOUT": str(TIMEOUT_MS), "PYTHON_FUNCTIONS_RUN_TIMEOUT": str(TIMEOUT_MS)}
    with instances(tmp_path, database_url, **settings) as servers, httpx.Client(timeout=30) as client:
        assert client.put(f"{servers[0].url}/v2/functions/w", json=WORKSPACE).status_code == 200
        long = start(client, servers[0].url, "long")
        holder = holder_pid(database_url, long)
        os.kill(holder, signal.SIGKILL)
        killed_at = time.monotonic()
        survivor = next(server for server in servers if server.process.pid != holder)
        while True:
            record = client.get(f"{survivor.url}/v2/executions/{long}").json()
            if record["status"] != "running" or time.monotonic() - killed_at > LEASE + 60:
                break
            time.sleep(0.1)
        assert record["status"] == "failed"
        assert "the instance running it stopped" in record["error"]["message"]
        assert record["finished"] is not None
        # A new execution still runs, on a survivor.
        quick = start(client, survivor.url, "echo", parameters={"n": 7})
        assert client.get(f"{survivor.url}/v2/executions/{quick}/wait").json()["result"] == 7
