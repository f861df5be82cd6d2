"""The shared database restarted while instances serve: runs go on, writes wait for it, nobody restarts."""

from __future__ import annotations

import time

import httpx2 as httpx
import pytest

from tests.server.test_instances import hello, instances, run

pytestmark = pytest.mark.slow  # real servers and a real PostgreSQL


def test_a_database_restart_keeps_warm_runs_answering_and_refuses_writes_until_it_is_back(
    tmp_path, database_url, postgres
):
    with instances(tmp_path, database_url, count=2) as (a, b), httpx.Client(timeout=30) as client:
        assert client.put(f"{a.url}/v2/functions/w", json=hello("Hello")).status_code == 200
        assert run(client, b).json()["result"] == "Hello B"
        postgres.stop("fast")
        try:
            for server in (a, b, a, b):
                answer = run(client, server)
                assert answer.status_code == 200 and answer.json()["result"] == "Hello B"
            refused = client.put(f"{a.url}/v2/functions/w", json=hello("Bonjour"))
            assert refused.status_code == 503, refused.text
            assert refused.json()["error"] == "Overloaded" and "database" in refused.json()["message"]
            started = client.post(
                f"{b.url}/v2/functions/w/run/hello",
                json={"parameters": {"name": "B"}},
                headers={"Prefer": "respond-async"},
            )
            assert started.status_code == 503
        finally:
            postgres.start()
        deadline = time.monotonic() + 60
        while client.put(f"{a.url}/v2/functions/w", json=hello("Bonjour")).status_code != 200:
            assert time.monotonic() < deadline, "saves did not come back with the database"
            time.sleep(0.2)
        deadline = time.monotonic() + 30  # the other instance asks the database again at most a second later
        while run(client, b).json()["result"] != "Bonjour B":
            assert time.monotonic() < deadline, "the other instance did not catch up"
            time.sleep(0.1)
        assert run(client, a).json()["result"] == "Bonjour B"
