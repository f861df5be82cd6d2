"""Access control: bearer tokens, their scopes and workspaces, on every surface."""

import time

import pytest

from fnbox.server.access import RULES, FailedAttempts, required
from fnbox.server.tokens import TokenStore

ADMIN = "admin-token-0123456789abcdef"
HELLO = {"functions": {"hello": {"code": 'return "Hello " + name;', "parameters": {"name": {"type": "string"}}}}}


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def guarded(make_client):
    return make_client(FNBOX_ADMIN_TOKEN=ADMIN)


def make_token(client, **body):
    answer = client.post("/v2/tokens", json=body, headers=bearer(ADMIN))
    assert answer.status_code == 201, answer.text
    return answer.json()


def test_open_without_a_token_configured_as_before(client):
    assert client.put("/v2/functions/w", json=HELLO).status_code == 200
    assert client.post("/v2/functions/w/run/hello", json={"parameters": {"name": "x"}}).status_code == 200


def test_every_route_but_the_healthcheck_needs_a_token(guarded):
    assert guarded.get("/sys/healthcheck").status_code == 200
    for method, path in [
        ("GET", "/v2/functions"),
        ("PUT", "/v2/functions/w"),
        ("GET", "/v2/executions"),
        ("GET", "/ogcapi/processes"),
        ("GET", "/openapi.json"),
        ("GET", "/docs"),
        ("GET", "/v2/tokens"),
        ("GET", "/metrics"),
        ("GET", "/nowhere"),
    ]:
        answer = guarded.request(method, path)
        assert answer.status_code == 401, (method, path)
        body = answer.json()
        assert body.get("error", body.get("code")) == "Unauthorized"  # native error, or OGC problem
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    assert guarded.get("/v2/functions", headers=bearer(ADMIN)).status_code == 200


def test_a_token_is_shown_once_stored_hashed_listed_without_secret_and_revoked_at_once(guarded, tmp_path):
    made = make_token(guarded, scopes=["run"], workspaces=["billing", "team-a-*"], expires_in=86400)
    assert set(made) >= {"id", "token", "scopes", "workspaces", "expires"}
    assert made["scopes"] == ["run"] and made["workspaces"] == ["billing", "team-a-*"] and made["expires"]
    stored = (tmp_path / "functions" / "tokens.json").read_text()
    # The secret part is everything after the id: it may itself hold '_' (URL-safe base64).
    secret = made["token"].removeprefix(f"fnbox_{made['id']}_")
    assert len(secret) >= 40 and made["token"] not in stored and secret not in stored
    assert (tmp_path / "functions" / "tokens.json").stat().st_mode & 0o777 == 0o600
    listed = guarded.get("/v2/tokens", headers=bearer(ADMIN)).json()
    assert [t["id"] for t in listed] == [made["id"]] and "token" not in listed[0]
    guarded.put("/v2/functions/billing", json=HELLO, headers=bearer(ADMIN))
    run = guarded.post(
        "/v2/functions/billing/run/hello", json={"parameters": {"name": "a"}}, headers=bearer(made["token"])
    )
    assert run.status_code == 200
    assert guarded.delete(f"/v2/tokens/{made['id']}", headers=bearer(ADMIN)).status_code == 204
    again = guarded.post(
        "/v2/functions/billing/run/hello", json={"parameters": {"name": "a"}}, headers=bearer(made["token"])
    )
    assert again.status_code == 401
    assert guarded.delete(f"/v2/tokens/{made['id']}", headers=bearer(ADMIN)).status_code == 404


def test_scopes_and_workspace_patterns_decide(guarded):
    deploy = make_token(guarded, scopes=["deploy"], workspaces=["team-a-*"])["token"]
    run = make_token(guarded, scopes=["run"], workspaces=["team-a-*"])["token"]
    read = make_token(guarded, scopes=["read"])["token"]
    assert guarded.put("/v2/functions/team-a-x", json=HELLO, headers=bearer(deploy)).status_code == 200
    denied = guarded.put("/v2/functions/team-b", json=HELLO, headers=bearer(deploy))
    assert denied.status_code == 403 and denied.json()["error"] == "Forbidden"
    assert guarded.put("/v2/functions/team-a-y", json=HELLO, headers=bearer(run)).status_code == 403
    assert guarded.post("/v2/functions/team-a-x/run/hello", json={}, headers=bearer(deploy)).status_code == 403
    assert (
        guarded.post(
            "/v2/functions/team-a-x/run/hello", json={"parameters": {"name": "a"}}, headers=bearer(run)
        ).status_code
        == 200
    )
    assert guarded.put("/v2/functions/team-a-x", json=HELLO, headers=bearer(read)).status_code == 403
    assert guarded.get("/v2/functions/team-a-x", headers=bearer(read)).status_code == 200
    assert guarded.get("/v2/functions/team-a-x", headers=bearer(run)).status_code == 403
    assert guarded.post("/v2/tokens", json={"scopes": ["admin"]}, headers=bearer(deploy)).status_code == 403
    assert guarded.get("/v2/tokens", headers=bearer(read)).status_code == 403
    guarded.put("/v2/functions/other", json=HELLO, headers=bearer(ADMIN))
    assert guarded.get("/v2/functions", headers=bearer(deploy)).json() == ["team-a-x"]
    assert guarded.get("/v2/functions", headers=bearer(read)).json() == ["other", "team-a-x"]


def test_a_run_token_reads_only_the_executions_it_started(guarded):
    guarded.put("/v2/functions/team-a-x", json=HELLO, headers=bearer(ADMIN))
    mine = make_token(guarded, scopes=["run"], workspaces=["team-a-*"])["token"]
    theirs = make_token(guarded, scopes=["run"], workspaces=["team-a-*"])["token"]
    read = make_token(guarded, scopes=["read"], workspaces=["team-a-x"])["token"]
    elsewhere = make_token(guarded, scopes=["read"], workspaces=["team-b"])["token"]
    ran = guarded.post("/v2/functions/team-a-x/run/hello", json={"parameters": {"name": "a"}}, headers=bearer(mine))
    execution = ran.headers["X-Execution-Id"]
    for token, seen in [(mine, True), (theirs, False), (read, True), (elsewhere, False), (ADMIN, True)]:
        answer = guarded.get(f"/v2/executions/{execution}", headers=bearer(token))
        assert answer.status_code == (200 if seen else 404), token
        listed = guarded.get("/v2/executions", headers=bearer(token)).json()["executions"]
        assert [e["id"] for e in listed] == ([execution] if seen else [])
        logs = guarded.get(f"/v2/executions/{execution}/logs", headers=bearer(token))
        assert logs.status_code == (200 if seen else 404)
        job = guarded.get(f"/ogcapi/jobs/{execution}", headers=bearer(token))
        assert job.status_code == (200 if seen else 404)
    started = guarded.post(
        "/v2/functions/team-a-x/run/hello?async=true", json={"parameters": {"name": "b"}}, headers=bearer(mine)
    ).json()["id"]
    assert guarded.post(f"/v2/executions/{started}/cancel", headers=bearer(theirs)).status_code == 404
    assert guarded.post(f"/v2/executions/{started}/cancel", headers=bearer(read)).status_code == 403


def test_ogc_api_processes_and_execution_follow_the_token(guarded):
    guarded.put("/v2/functions/team-a-x", json=HELLO, headers=bearer(ADMIN))
    guarded.put("/v2/functions/team-b", json=HELLO, headers=bearer(ADMIN))
    run = make_token(guarded, scopes=["run"], workspaces=["team-a-*"])["token"]
    listed = guarded.get("/ogcapi/processes", headers=bearer(run)).json()["processes"]
    assert [p["id"] for p in listed] == ["team-a-x.hello"]
    body = {"inputs": {"name": "o"}}
    assert guarded.post("/ogcapi/processes/team-a-x.hello/execution", json=body, headers=bearer(run)).status_code == 200
    assert guarded.post("/ogcapi/processes/team-b.hello/execution", json=body, headers=bearer(run)).status_code == 403
    assert guarded.get("/ogcapi/processes/team-b.hello", headers=bearer(run)).status_code == 403


def test_an_expired_token_is_refused(guarded):
    made = make_token(guarded, scopes=["read"], expires_in=0.05)
    time.sleep(0.1)
    assert guarded.get("/v2/functions", headers=bearer(made["token"])).status_code == 401


def test_bad_token_requests_are_refused_with_reasons(guarded):
    for body in [
        {"scopes": []},
        {"scopes": ["root"]},
        {"scopes": ["run"], "workspaces": ["../x"]},
        {"scopes": ["run"], "workspaces": ["[a]"]},
        {"scopes": ["run"], "expires_in": -1},
        {"scopes": ["run"], "expires_in": True},
        {"scopes": ["run"], "owner": "me"},
        ["run"],
    ]:
        answer = guarded.post("/v2/tokens", json=body, headers=bearer(ADMIN))
        assert answer.status_code == 400, body


def test_failed_attempts_are_rate_limited_per_address(guarded):
    for _ in range(10):
        assert guarded.get("/v2/functions", headers=bearer("wrong-token-wrong-token")).status_code == 401
    blocked = guarded.get("/v2/functions", headers=bearer(ADMIN))
    assert blocked.status_code == 401 and int(blocked.headers["Retry-After"]) >= 1
    assert guarded.get("/sys/healthcheck").status_code == 200


def test_the_failure_window_forgets_old_failures():
    failures = FailedAttempts(limit=2, window=0.05)
    failures.fail("a")
    failures.fail("a")
    assert failures.blocked_for("a") > 0 and failures.blocked_for("b") == 0
    time.sleep(0.06)
    assert failures.blocked_for("a") == 0


def test_openapi_describes_the_bearer_scheme(guarded):
    schema = guarded.get("/openapi.json", headers=bearer(ADMIN)).json()
    assert schema["components"]["securitySchemes"]["bearer"] == {"type": "http", "scheme": "bearer"}
    assert schema["security"] == [{"bearer": []}]
    assert schema["paths"]["/sys/healthcheck"]["get"]["security"] == []
    assert "Authorization: Bearer" in guarded.get("/docs", headers=bearer(ADMIN)).text


def test_tokens_survive_a_restart_and_keep_access_control_on(tmp_path):
    store = TokenStore(tmp_path, admin_token=None)
    assert not store.enabled
    made = store.create({"scopes": ["read"], "workspaces": ["a*"]})
    again = TokenStore(tmp_path)
    assert again.enabled
    principal = again.authenticate(made["token"])
    assert principal is not None and principal.covers("ab") and not principal.covers("b")
    forged = made["token"][:-4] + ("AAAA" if not made["token"].endswith("AAAA") else "BBBB")
    assert again.authenticate(forged) is None
    assert again.authenticate("fnbox_0000000000000000_" + "x" * 43) is None


def test_every_route_has_a_rule_and_unknown_ones_need_admin(guarded):
    assert required("GET", "/sys/healthcheck") == (None, None)
    assert required("PATCH", "/v2/functions/x") == (("admin",), None)
    assert required("GET", "/v2/functions/x/secrets") == (("deploy",), "x")
    assert all(rule.path.pattern for rule in RULES)


def test_start_warns_when_open_louder_off_loopback(make_client, caplog):
    with caplog.at_level("WARNING", logger="fnbox"):
        make_client(HOST="0.0.0.0")
    assert any(r.levelname == "CRITICAL" and "ACCESS CONTROL IS OFF" in r.message for r in caplog.records)


def test_the_ogc_api_refuses_as_problems(guarded):
    answer = guarded.get("/ogcapi/processes")
    assert answer.status_code == 401 and answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["status"] == 401 and answer.headers["WWW-Authenticate"].startswith("Bearer")
    run = make_token(guarded, scopes=["run"], workspaces=["a"])["token"]
    refused = guarded.post("/ogcapi/processes/b.f/execution", json={}, headers=bearer(run))
    assert refused.status_code == 403 and refused.json()["status"] == 403
