"""Executions on the real server: live logs over a socket, crashes and SIGTERM."""

import json
import signal
import time

import httpx2 as httpx
import pytest

from fnbox.executions.recorder import INTERVAL
from tests.processes import running_server

pytestmark = pytest.mark.slow  # a real server, worker processes or a subprocess

WORKSPACE = {
    "functions": {
        "steps": {
            "code": "console.log('step 1'); await new Promise(r => setTimeout(r, 1500)); console.log('step 2'); return 'done';"
        },
        "pysteps": {
            "language": "python",
            "code": "import time\nprint('step 1')\nstart = time.time()\nwhile time.time() - start < 1.5:\n    pass\nprint('step 2')\nreturn 'done'",
        },
        "long": {"code": "await new Promise(r => setTimeout(r, 60000)); return 1;", "timeout": 120000},
        "spin": {"code": "cache.spins = (cache.spins || 0) + 1; while (true) {}", "timeout": 60000},
        "spins": {"code": "return cache.spins;"},
        "pyspin": {
            "language": "python",
            "code": "cache['spins'] = cache.get('spins', 0) + 1\nwhile True:\n    pass",
            "timeout": 60000,
        },
        "pyspins": {"language": "python", "code": "return cache['spins']"},
    }
}


def start(url, function):
    answer = httpx.post(f"{url}/v2/functions/w/run/{function}", json={}, headers={"Prefer": "respond-async"})
    assert answer.status_code == 202, answer.text
    return answer.json()["id"]


def events(url, execution_id):
    """(seconds since the request, event name, data) of each Server-Sent Event, as they arrive."""
    began, seen, event = time.monotonic(), [], {}
    headers = {"Accept": "text/event-stream"}
    with httpx.stream(
        "GET", f"{url}/v2/executions/{execution_id}/logs?follow=true", headers=headers, timeout=10
    ) as answer:
        assert answer.headers["content-type"].startswith("text/event-stream")
        for line in answer.iter_lines():
            if line.startswith("event: "):
                event["name"] = line[7:]
            elif line.startswith("data: "):
                event["data"] = json.loads(line[6:])
            elif line == "" and event:
                seen.append((time.monotonic() - began, event["name"], event["data"]))
                event = {}
    return seen


def test_logs_stream_as_events_while_the_function_runs(tmp_path):
    with running_server(tmp_path / "functions", FUNCTIONS_WORKERS="1") as server:
        assert httpx.post(f"{server.url}/v2/functions/w", json=WORKSPACE).status_code == 200
        for function in ("steps", "pysteps"):
            seen = events(server.url, start(server.url, function))
            names = [name for _, name, _ in seen]
            assert names == ["log", "log", "end"], seen
            (first_at, _, first), (second_at, _, second), (end_at, _, end) = seen
            assert (first["message"], second["message"]) == ("step 1", "step 2")
            assert second_at - first_at > 1.0, f"{function}: step 1 came only with the end: {seen}"
            assert end["status"] == "successful"


def test_executions_cut_short_by_a_crash_are_failed_at_the_next_start(tmp_path):
    with running_server(tmp_path / "functions", FUNCTIONS_WORKERS="1") as server:
        httpx.post(f"{server.url}/v2/functions/w", json=WORKSPACE)
        httpx.post(f"{server.url}/v2/functions/other", json=WORKSPACE)
        execution_id = start(server.url, "long")
        # Another workspace: runs of one workspace take turns in its sandbox.
        done = httpx.post(f"{server.url}/v2/functions/other/run/steps", json={}).headers["X-Execution-Id"]
        time.sleep(INTERVAL + 0.3)  # synchronous runs are written in batches: a crash loses at most the last
        server.process.kill()
    with running_server(tmp_path / "functions", FUNCTIONS_WORKERS="1") as server:
        record = httpx.get(f"{server.url}/v2/executions/{execution_id}").json()
        assert record["status"] == "failed"
        assert "service stopped while this execution was" in record["error"]["message"]
        assert httpx.get(f"{server.url}/v2/executions/{done}").json()["status"] == "successful"


def test_sigterm_gives_executions_a_grace_period_then_dismisses_them(tmp_path):
    with running_server(tmp_path / "functions", FUNCTIONS_WORKERS="1", SHUTDOWN_GRACE_PERIOD="3") as server:
        httpx.post(f"{server.url}/v2/functions/w", json=WORKSPACE)
        finishing = start(server.url, "steps")
        stuck = start(server.url, "long")
        time.sleep(0.3)
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=15) in (0, -signal.SIGTERM)
    with running_server(tmp_path / "functions", FUNCTIONS_WORKERS="1") as server:
        assert httpx.get(f"{server.url}/v2/executions/{finishing}").json()["status"] == "successful"
        record = httpx.get(f"{server.url}/v2/executions/{stuck}").json()
        assert record["status"] == "dismissed"
        assert record["error"]["message"] == "the service stopped before the execution ended"


def test_cancel_stops_a_run_inside_a_worker_which_keeps_serving(tmp_path):
    with running_server(tmp_path / "functions", FUNCTIONS_WORKERS="1") as server:
        httpx.post(f"{server.url}/v2/functions/w", json=WORKSPACE)
        for spin, spins in (("spin", "spins"), ("pyspin", "pyspins")):
            execution_id = start(server.url, spin)
            deadline = time.monotonic() + 5
            while httpx.get(f"{server.url}/v2/executions/{execution_id}").json()["status"] != "running":
                assert time.monotonic() < deadline
                time.sleep(0.02)
            time.sleep(0.2)
            began = time.monotonic()
            cancelled = httpx.post(f"{server.url}/v2/executions/{execution_id}/cancel").json()
            assert cancelled["status"] == "dismissed" and time.monotonic() - began < 1.0
            # The worker was not restarted: the workspace's cache is still there.
            assert httpx.post(f"{server.url}/v2/functions/w/run/{spins}", json={}).json()["result"] == 1
