"""Accepted means answered: a stop of the service, and workers killed under calls in flight."""

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import httpx2 as httpx
import pytest

from tests.processes import running_server
from tests.server.test_serve import children_of

pytestmark = pytest.mark.slow  # a real server, worker processes or a subprocess

SLOW = {
    "functions": {
        "slow": {"language": "python", "code": "import time\ntime.sleep(1)\nreturn 'done'", "timeout": 5000},
        "jslow": {"code": "await new Promise(r => setTimeout(r, 1000)); return 'done';", "timeout": 5000},
        "long": {"language": "python", "code": "import time\ntime.sleep(8)\nreturn 'done'", "timeout": 10000},
    }
}


def call(url, workspace, function):
    try:
        answer = httpx.post(f"{url}/v2/functions/{workspace}/run/{function}", json={}, timeout=60)
    except httpx.TransportError as exc:
        return repr(exc)
    body = answer.json()
    return body.get("result") or body.get("error")


@pytest.mark.parametrize("function", ["slow", "jslow"])
def test_on_sigterm_every_accepted_run_is_answered_queued_ones_included(tmp_path, function):
    with running_server(tmp_path, FUNCTIONS_WORKERS="1", SHUTDOWN_GRACE_PERIOD="30") as server:
        httpx.post(f"{server.url}/v2/functions/w", json=SLOW)
        with ThreadPoolExecutor(10) as threads:
            answers = [threads.submit(call, server.url, "w", function) for _ in range(10)]
            time.sleep(0.5)  # ten runs of 1 s on one workspace: nine wait for their turn, some past the timeout
            server.process.send_signal(signal.SIGTERM)
            assert [answer.result() for answer in answers] == ["done"] * 10
        assert server.process.wait(timeout=30) in (0, -signal.SIGTERM)


def test_a_run_longer_than_the_grace_period_answers_503_before_the_stop(tmp_path):
    with running_server(tmp_path, FUNCTIONS_WORKERS="1", SHUTDOWN_GRACE_PERIOD="3") as server:
        for workspace in ("w", "other"):
            httpx.post(f"{server.url}/v2/functions/{workspace}", json=SLOW)
        with ThreadPoolExecutor(2) as threads:
            # Two workspaces: the short run must not wait for its turn behind the long one.
            answers = [threads.submit(call, server.url, *pair) for pair in (("w", "long"), ("other", "slow"))]
            time.sleep(0.5)
            server.process.send_signal(signal.SIGTERM)
            assert [answer.result() for answer in answers] == ["Overloaded", "done"]
        assert server.process.wait(timeout=30) in (0, -signal.SIGTERM)


def test_calls_in_flight_on_workers_killed_from_outside_are_retried_and_answer(tmp_path):
    with running_server(tmp_path, FUNCTIONS_WORKERS="1") as server:
        for index in range(3):
            httpx.post(f"{server.url}/v2/functions/w{index}", json=SLOW)
        workers = children_of(server.process.pid)
        calls = [(f"w{index}", function) for index in range(3) for function in ("slow", "jslow")]
        with ThreadPoolExecutor(len(calls)) as threads:
            answers = [threads.submit(call, server.url, *workspace_function) for workspace_function in calls]
            time.sleep(0.4)
            for pid in workers:
                os.kill(pid, signal.SIGKILL)
            assert [answer.result() for answer in answers] == ["done"] * len(calls)


def test_a_call_alone_on_a_worker_killed_from_outside_is_retried(tmp_path):
    with running_server(tmp_path, FUNCTIONS_WORKERS="1") as server:
        httpx.post(f"{server.url}/v2/functions/w", json=SLOW)
        workers = children_of(server.process.pid)
        with ThreadPoolExecutor(1) as threads:
            answer = threads.submit(call, server.url, "w", "slow")
            time.sleep(0.4)
            for pid in workers:
                os.kill(pid, signal.SIGKILL)
            assert answer.result() == "done"
