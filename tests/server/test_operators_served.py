"""Secrets, tokens, metrics and JSON logs against a real `fnbox serve` with worker processes."""

import json
import os
import subprocess
import sys

import httpx2 as httpx
import pytest

from tests.processes import ROOT, running_server

pytestmark = pytest.mark.slow  # a real server, worker processes and subprocesses

ADMIN = "admin-token-served-0123456789"
SECRET = "sk-served-9876543210"
DOC = {
    "functions": {
        "js": {"code": "console.log('using ' + process.env.KEY); return process.env.KEY.length;"},
        "py": {"language": "python", "code": "print('using', env['KEY'])\nreturn len(env['KEY'])"},
    }
}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running_server(
        tmp_path_factory.mktemp("data"), FUNCTIONS_WORKERS="1", FNBOX_ADMIN_TOKEN=ADMIN, LOG_FORMAT="json"
    ) as running:
        yield running


def cli(*args, token=None, url, stdin=None):
    environ = {**os.environ, "PYTHONPATH": str(ROOT), "FNBOX_URL": url}
    environ.pop("FNBOX_TOKEN", None)
    if token:
        environ["FNBOX_TOKEN"] = token
    return subprocess.run(
        [sys.executable, "-m", "fnbox", *args],
        input=stdin,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_secrets_reach_functions_in_workers_and_are_redacted(server):
    auth = {"Authorization": f"Bearer {ADMIN}"}
    with httpx.Client(base_url=server.url, headers=auth, timeout=30) as http:
        assert http.put("/v2/functions/served", json=DOC).status_code == 200
        assert http.put("/v2/functions/served/secrets/KEY", json=SECRET).status_code == 200
        for name in ("js", "py"):
            ran = http.post(f"/v2/functions/served/run/{name}", json={})
            assert ran.json()["result"] == len(SECRET), ran.text
            assert SECRET not in ran.text and "***" in ran.text
        text = http.get("/metrics").text
    # the workers' compiles reach the server's endpoint (the server itself compiles nothing)
    assert 'fnbox_compiles_total{language="javascript",outcome="ok"}' in text
    assert 'fnbox_warm_sandboxes{language="python"}' in text
    assert SECRET not in server.log()


def test_the_cli_sets_secrets_from_stdin_with_a_token_from_the_environment(server):
    with httpx.Client(base_url=server.url, timeout=30) as http:
        made = http.post(
            "/v2/tokens",
            json={"scopes": ["deploy"], "workspaces": ["cli-*"]},
            headers={"Authorization": f"Bearer {ADMIN}"},
        ).json()
    refused = cli("secret", "ls", "cli-a", url=server.url)
    assert refused.returncode == 1 and "Unauthorized" in refused.stderr and "FNBOX_TOKEN" in refused.stderr
    done = cli("secret", "set", "cli-a", "KEY", token=made["token"], url=server.url, stdin=SECRET + "\n")
    assert done.returncode == 0, done.stderr
    assert SECRET not in done.stdout + done.stderr
    listed = cli("secret", "ls", "cli-a", "--json", token=made["token"], url=server.url)
    assert [item["name"] for item in json.loads(listed.stdout)] == ["KEY"]
    forbidden = cli("secret", "ls", "other", "--token", made["token"], url=server.url)
    assert forbidden.returncode == 1 and "Forbidden" in forbidden.stderr
    assert cli("secret", "rm", "cli-a", "KEY", token=made["token"], url=server.url).returncode == 0


def test_every_server_line_is_json_with_the_request_id(server):
    with httpx.Client(base_url=server.url, timeout=30) as http:
        http.get("/v2/functions/nothing-here", headers={"X-Request-Id": "trace-1"})
    lines = [line for line in server.log().splitlines() if line.strip()]
    parsed = [json.loads(line) for line in lines]
    assert all({"time", "level", "message"} <= set(line) for line in parsed)
    assert any("access control" in line["message"] or "Uvicorn running" in line["message"] for line in parsed)


def test_a_revoked_token_ends_the_event_stream_it_opened(server):
    admin = {"Authorization": f"Bearer {ADMIN}"}
    ticking = {
        "functions": {
            "tick": {
                "code": "for (let i = 0; i < 40; i++) { console.log('tick ' + i); "
                "await new Promise((r) => setTimeout(r, 50)); } return 1;"
            }
        }
    }
    with httpx.Client(base_url=server.url, timeout=30) as http:
        assert http.put("/v2/functions/stream-ws", json=ticking, headers=admin).status_code == 200
        made = http.post("/v2/tokens", json={"scopes": ["run"], "workspaces": ["stream-ws"]}, headers=admin).json()
        auth = {"Authorization": f"Bearer {made['token']}"}
        started = http.post("/v2/functions/stream-ws/run/tick?async=true", json={}, headers=auth).json()["id"]
        events = []
        with http.stream(
            "GET", f"/v2/executions/{started}/logs?follow=true", headers={**auth, "Accept": "text/event-stream"}
        ) as stream:
            for line in stream.iter_lines():
                if line.startswith("event: "):
                    events.append(line.removeprefix("event: "))
                    if len(events) == 2:
                        assert http.delete(f"/v2/tokens/{made['id']}", headers=admin).status_code == 204
        assert events[-1] == "revoked" and "end" not in events
        assert events.count("log") < 40
