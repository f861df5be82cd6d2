"""Secrets and access tokens shared by real `fnbox serve` instances on one PostgreSQL database."""

from __future__ import annotations

import httpx2 as httpx
import pytest
from cryptography.fernet import Fernet

from tests.processes import running_server
from tests.server.test_instances import instances

pytestmark = pytest.mark.slow  # real servers and a real PostgreSQL

ADMIN = "instances-admin-token-0123456789"
KEY = Fernet.generate_key().decode()
READS = {"functions": {"reads": {"code": "return process.env.API_KEY ?? 'unset';"}}}
HELLO = {"functions": {"hello": {"code": 'return "Hello " + name;', "parameters": {"name": {"type": "string"}}}}}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_secret_set_deleted_or_changed_through_one_instance_is_what_the_next_run_on_another_reads(
    tmp_path, database_url
):
    with (
        instances(tmp_path, database_url, count=2, FNBOX_SECRETS_KEY=KEY) as (a, b),
        httpx.Client(timeout=10) as client,
    ):
        assert client.put(f"{a.url}/v2/functions/w", json=READS).status_code == 200
        assert client.post(f"{b.url}/v2/functions/w/run/reads", json={}).json()["result"] == "unset"
        for index in range(10):
            writer, reader = (a, b) if index % 2 == 0 else (b, a)
            value = f"sk-value-{index}-0123456789"
            assert client.put(f"{writer.url}/v2/functions/w/secrets/API_KEY", json=value).status_code == 200
            ran = client.post(f"{reader.url}/v2/functions/w/run/reads", json={})
            assert ran.json()["result"] == "***", ran.text  # read, and redacted from what it gives back
            assert value not in ran.text
            listed = client.get(f"{reader.url}/v2/functions/w/secrets").json()["secrets"]
            assert [item["name"] for item in listed] == ["API_KEY"]
        uses = {"functions": {"uses": {"code": "return process.env.API_KEY.length;"}}}
        assert client.put(f"{a.url}/v2/functions/w", json=uses).status_code == 200
        assert client.post(f"{b.url}/v2/functions/w/run/uses", json={}).json()["result"] == len("sk-value-9-0123456789")
        assert client.delete(f"{b.url}/v2/functions/w/secrets/API_KEY").status_code == 204
        assert client.put(f"{b.url}/v2/functions/w", json=READS).status_code == 200
        assert client.post(f"{a.url}/v2/functions/w/run/reads", json={}).json()["result"] == "unset"
        assert client.get(f"{a.url}/v2/functions/w/secrets").json() == {"secrets": []}
        assert client.delete(f"{a.url}/v2/functions/w/secrets/API_KEY").status_code == 404


def test_a_token_made_on_one_instance_works_on_another_at_once_and_a_revoked_one_is_refused_at_once(
    tmp_path, database_url
):
    with (
        instances(tmp_path, database_url, count=2, FNBOX_ADMIN_TOKEN=ADMIN) as (a, b),
        httpx.Client(timeout=10) as client,
    ):
        assert client.put(f"{a.url}/v2/functions/w", json=HELLO, headers=bearer(ADMIN)).status_code == 200
        for index in range(10):
            maker, user = (a, b) if index % 2 == 0 else (b, a)
            made = client.post(
                f"{maker.url}/v2/tokens", json={"scopes": ["run"], "workspaces": ["w"]}, headers=bearer(ADMIN)
            ).json()
            ran = client.post(
                f"{user.url}/v2/functions/w/run/hello",
                json={"parameters": {"name": "B"}},
                headers=bearer(made["token"]),
            )
            assert ran.status_code == 200 and ran.json()["result"] == "Hello B", ran.text
            listed = client.get(f"{user.url}/v2/tokens", headers=bearer(ADMIN)).json()
            assert made["id"] in {item["id"] for item in listed}
            assert client.delete(f"{maker.url}/v2/tokens/{made['id']}", headers=bearer(ADMIN)).status_code == 204
            refused = client.post(
                f"{user.url}/v2/functions/w/run/hello",
                json={"parameters": {"name": "B"}},
                headers=bearer(made["token"]),
            )
            assert refused.status_code == 401 and refused.json()["error"] == "Unauthorized"
            assert client.delete(f"{user.url}/v2/tokens/{made['id']}", headers=bearer(ADMIN)).status_code == 404
        assert client.get(f"{b.url}/v2/tokens", headers=bearer(ADMIN)).json() == []


def test_tokens_made_on_an_open_instance_turn_access_control_on_for_every_instance(tmp_path, database_url):
    with instances(tmp_path, database_url, count=2) as (a, b), httpx.Client(timeout=10) as client:
        assert client.get(f"{b.url}/v2/functions").status_code == 200  # open, as before
        made = client.post(f"{a.url}/v2/tokens", json={"scopes": ["read"]}).json()
        assert client.get(f"{b.url}/v2/functions").status_code == 401
        assert client.get(f"{b.url}/v2/functions", headers=bearer(made["token"])).status_code == 200


def test_a_revocation_through_one_instance_ends_an_event_stream_opened_on_another(tmp_path, database_url):
    ticking = {
        "functions": {
            "tick": {
                "code": "for (let i = 0; i < 40; i++) { console.log('tick ' + i); "
                "await new Promise((r) => setTimeout(r, 50)); } return 1;"
            }
        }
    }
    with (
        instances(tmp_path, database_url, count=2, FNBOX_ADMIN_TOKEN=ADMIN) as (a, b),
        httpx.Client(timeout=30) as client,
    ):
        assert client.put(f"{a.url}/v2/functions/s", json=ticking, headers=bearer(ADMIN)).status_code == 200
        made = client.post(f"{a.url}/v2/tokens", json={"scopes": ["run"]}, headers=bearer(ADMIN)).json()
        auth = bearer(made["token"])
        started = client.post(f"{b.url}/v2/functions/s/run/tick?async=true", json={}, headers=auth).json()["id"]
        events = []
        with client.stream(
            "GET", f"{b.url}/v2/executions/{started}/logs?follow=true", headers={**auth, "Accept": "text/event-stream"}
        ) as stream:
            for line in stream.iter_lines():
                if line.startswith("event: "):
                    events.append(line.removeprefix("event: "))
                    if len(events) == 2:
                        assert (
                            client.delete(f"{a.url}/v2/tokens/{made['id']}", headers=bearer(ADMIN)).status_code == 204
                        )
        assert events[-1] == "revoked" and "end" not in events
        assert events.count("log") < 40


def test_an_instance_whose_key_cannot_read_the_stored_secrets_refuses_to_start(tmp_path, database_url):
    with (
        running_server(
            tmp_path / "a", FNBOX_DATABASE_URL=database_url, FUNCTIONS_WORKERS="0", FNBOX_SECRETS_KEY=KEY
        ) as a,
        httpx.Client(timeout=10) as client,
    ):
        assert client.put(f"{a.url}/v2/functions/w/secrets/API_KEY", json="sk-0123456789").status_code == 200
        other = Fernet.generate_key().decode()
        for environ in ({"FNBOX_SECRETS_KEY": other}, {}):  # another key; no key at all
            with (
                pytest.raises(RuntimeError, match="the server did not start") as refused,
                running_server(tmp_path / "b", FNBOX_DATABASE_URL=database_url, FUNCTIONS_WORKERS="0", **environ),
            ):
                pass
            assert "every instance sharing the database needs the same FNBOX_SECRETS_KEY" in str(refused.value)
        with running_server(
            tmp_path / "c",
            FNBOX_DATABASE_URL=database_url,
            FUNCTIONS_WORKERS="0",
            FNBOX_SECRETS_KEY=f"{other},{KEY}",  # rotation: the new key first, the old one still read
        ) as c:
            assert client.put(f"{c.url}/v2/functions/w", json=READS).status_code == 200
            assert client.post(f"{c.url}/v2/functions/w/run/reads", json={}).json()["result"] == "***"
