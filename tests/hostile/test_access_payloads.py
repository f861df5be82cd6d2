"""Attacks on secrets and access control: another workspace's secrets, forged and revoked tokens, escalation.

Most run in-process (fast); the cross-workspace reads from functions also run against the
real server with worker processes, where many workspaces share one worker.
"""

import json
import tarfile
from io import BytesIO

import pytest

ADMIN = "hostile-admin-token-0123456789"
SECRET = "sk-victim-5f1c2a9e7d"
VICTIM = {"functions": {"uses": {"code": "return process.env.KEY === undefined ? 'none' : 'set';"}}}


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def world(make_client):
    """A guarded service: workspace `victim` with a secret and a run of it, tokens of the attacker for `attacker`."""
    client = make_client(FNBOX_ADMIN_TOKEN=ADMIN)
    admin = bearer(ADMIN)
    assert client.put("/v2/functions/victim", json=VICTIM, headers=admin).status_code == 200
    assert client.put("/v2/functions/victim/secrets/KEY", json=SECRET, headers=admin).status_code == 200
    ran = client.post("/v2/functions/victim/run/uses", json={}, headers=admin)
    tokens = {
        scope: client.post("/v2/tokens", json={"scopes": [scope], "workspaces": ["attacker*"]}, headers=admin).json()
        for scope in ("deploy", "run", "read")
    }
    client.victim_execution = ran.headers["X-Execution-Id"]
    client.tokens = {scope: made["token"] for scope, made in tokens.items()}
    client.ids = {scope: made["id"] for scope, made in tokens.items()}
    return client


def no_secret(answer):
    assert SECRET not in answer.text, answer.text
    return answer


def test_secrets_of_another_workspace_through_the_api(world):
    for token in world.tokens.values():
        auth = bearer(token)
        assert no_secret(world.get("/v2/functions/victim/secrets", headers=auth)).status_code == 403
        assert no_secret(world.put("/v2/functions/victim/secrets/KEY", json="x", headers=auth)).status_code == 403
        assert no_secret(world.delete("/v2/functions/victim/secrets/KEY", headers=auth)).status_code == 403
        assert no_secret(world.get("/v2/functions/victim/archive", headers=auth)).status_code == 403
        assert no_secret(world.get("/v2/functions/victim", headers=auth)).status_code == 403
    # the admin sees names, never values, anywhere
    admin = bearer(ADMIN)
    assert no_secret(world.get("/v2/functions/victim/secrets", headers=admin)).status_code == 200
    archive = world.get("/v2/functions/victim/archive", headers=admin).content
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        assert all(SECRET.encode() not in (tar.extractfile(member) or BytesIO()).read() for member in tar.getmembers())
    assert no_secret(world.get("/openapi.json", headers=admin)).status_code == 200


def test_path_tricks_do_not_reach_another_workspace(world):
    auth = bearer(world.tokens["deploy"])
    for path in [
        "/v2/functions/attacker%2F..%2Fvictim/secrets",
        "/v2/functions/attacker/../victim/secrets",
        "/v2/functions/attacker%2Fvictim/secrets",
        "/v2/functions/ATTACKER/secrets/KEY",
        "/v2/functions/victim%00attacker/secrets",
    ]:
        answer = world.get(path, headers=auth)
        assert answer.status_code in (400, 403, 404), path
        no_secret(answer)


def test_secrets_of_another_workspace_through_functions(world):
    deploy, run = bearer(world.tokens["deploy"]), bearer(world.tokens["run"])
    probes = {
        "js_env": {"code": "return JSON.stringify(process.env);"},
        "js_globals": {
            "code": "return Object.getOwnPropertyNames(globalThis).map(n => {"
            " try { return n + '=' + JSON.stringify(globalThis[n]); } catch (e) { return n; } }).join(';');"
        },
        "js_setenv": {"code": "try { $fnbox.setEnv('{}'); } catch (e) {} return JSON.stringify(process.env);"},
        "py_env": {"language": "python", "code": "return {'env': dict(env), 'keys': list(env)}"},
        "py_cache": {"language": "python", "code": "return str(cache) + str(env)"},
    }
    assert world.put("/v2/functions/attacker", json={"functions": probes}, headers=deploy).status_code == 200
    for name in probes:
        answer = world.post(f"/v2/functions/attacker/run/{name}", json={}, headers=run)
        assert answer.status_code in (200, 500), answer.text
        no_secret(answer)
    # the victim's own function still sees its secret
    assert world.post("/v2/functions/victim/run/uses", json={}, headers=bearer(ADMIN)).json()["result"] == "set"


def test_secrets_of_another_workspace_through_records_logs_and_jobs(world):
    victim = world.victim_execution
    for scope in ("run", "read"):
        auth = bearer(world.tokens[scope])
        for path in [
            f"/v2/executions/{victim}",
            f"/v2/executions/{victim}/wait?timeout=0",
            f"/v2/executions/{victim}/logs",
            f"/ogcapi/jobs/{victim}",
            f"/ogcapi/jobs/{victim}/results",
        ]:
            assert no_secret(world.get(path, headers=auth)).status_code == 404, (scope, path)
        stream = world.get(f"/v2/executions/{victim}/logs", headers={**auth, "Accept": "text/event-stream"})
        assert stream.status_code == 404
        assert world.get("/v2/executions?workspace=victim", headers=auth).json()["executions"] == []
        assert world.get("/ogcapi/jobs?processID=victim.uses", headers=auth).json()["jobs"] == []
        processes = world.get("/ogcapi/processes", headers=auth).json()["processes"]
        assert all(not p["id"].startswith("victim.") for p in processes)
        assert "victim" not in world.get("/v2/functions", headers=auth).json()


def test_secret_values_never_echo_in_errors(world):
    admin = bearer(ADMIN)
    for path, body in [
        ("/v2/functions/victim/secrets/bad name", SECRET),
        ("/v2/functions/victim/secrets/1BAD", SECRET),
        ("/v2/functions/victim/secrets/OK", {"value": SECRET}),
        ("/v2/functions/victim/secrets/OK", [SECRET]),
        ("/v2/functions/bad..ws/secrets/OK", SECRET),
    ]:
        answer = world.put(path, json=body, headers=admin)
        assert answer.status_code in (400, 404), path
        no_secret(answer)
    huge = world.put("/v2/functions/victim/secrets/OK", json=SECRET * 10_000, headers=admin)
    assert huge.status_code == 400 and SECRET not in huge.text


def test_forged_tokens_are_refused_alike(world):
    real = world.tokens["read"]
    token_id = world.ids["read"]
    forgeries = [
        real[:-1] + ("A" if real[-1] != "A" else "B"),  # its secret part changed
        f"fnbox_{token_id}_" + "A" * 43,  # a real id with a made-up secret
        f"fnbox_{'0' * 16}_" + real.split("_", 2)[2],  # a real secret under another id
        real + "x",
        real.upper(),
        ADMIN[:-1],
        ADMIN + "\t" + ADMIN,
        "",
        "null",
        "fnbox_" + token_id,
        b"hostile-admin-token-0123456789".decode("latin-1").swapcase(),
    ]
    bodies = set()
    for forged in forgeries:
        answer = world.get("/v2/functions", headers={"Authorization": f"Bearer {forged}", "X-Forwarded-For": "1.2.3.4"})
        assert answer.status_code == 401, forged
        bodies.add(answer.text)
        if len(bodies) and answer.status_code == 401 and "too many" in answer.text:
            break
    for header in [f"Basic {real}", f"Token {real}", real, f"Bearer  {ADMIN[:4]}"]:
        assert world.get("/v2/functions", headers={"Authorization": header}).status_code == 401
    assert world.get(f"/v2/functions?token={ADMIN}").status_code == 401
    # every miss answers the same (no oracle on which part was wrong) until the address is blocked
    assert len({b for b in bodies if "too many" not in b}) == 1
    # and the address is now blocked, X-Forwarded-For or not: even the right token waits
    blocked = world.get("/v2/functions", headers={**bearer(ADMIN), "X-Forwarded-For": "9.9.9.9"})
    assert blocked.status_code == 401 and "Retry-After" in blocked.headers


def test_replay_after_revocation_and_after_expiry(world):
    admin = bearer(ADMIN)
    made = world.post("/v2/tokens", json={"scopes": ["admin"]}, headers=admin).json()
    assert world.get("/v2/tokens", headers=bearer(made["token"])).status_code == 200
    assert world.delete(f"/v2/tokens/{made['id']}", headers=admin).status_code == 204
    for _ in range(3):
        assert world.get("/v2/tokens", headers=bearer(made["token"])).status_code == 401
    listed = world.get("/v2/tokens", headers=admin).json()
    assert made["id"] not in {t["id"] for t in listed}
    assert all("token" not in t and "hash" not in t for t in listed)


def test_scope_escalation(world):
    tokens = world.tokens
    for scope, token in tokens.items():
        auth = bearer(token)
        for body in [{"scopes": ["admin"]}, {"scopes": [scope], "workspaces": []}, {"scopes": [scope]}]:
            assert world.post("/v2/tokens", json=body, headers=auth).status_code == 403
        assert world.get("/v2/tokens", headers=auth).status_code == 403
        assert world.delete(f"/v2/tokens/{world.ids['read']}", headers=auth).status_code == 403
        assert world.get("/metrics", headers=auth).status_code == (200 if scope == "read" else 403)
    assert world.post("/v2/functions/attacker/run/x", json={}, headers=bearer(tokens["deploy"])).status_code == 403
    assert world.post("/v2/functions/victim/run/uses", json={}, headers=bearer(tokens["run"])).status_code == 403
    assert world.put("/v2/functions/attacker", json=VICTIM, headers=bearer(tokens["run"])).status_code == 403
    assert world.put("/v2/functions/attacker", json=VICTIM, headers=bearer(tokens["read"])).status_code == 403
    assert world.get("/v2/executions", headers=bearer(tokens["deploy"])).status_code == 403
    assert (
        world.post(f"/v2/executions/{world.victim_execution}/cancel", headers=bearer(tokens["run"])).status_code == 404
    )
    assert world.request("PATCH", "/v2/functions/attacker", headers=bearer(tokens["deploy"])).status_code == 403
    ogc = bearer(tokens["run"])
    assert world.post("/ogcapi/processes/victim.uses/execution", json={}, headers=ogc).status_code == 403
    assert world.delete(f"/ogcapi/jobs/{world.victim_execution}", headers=ogc).status_code == 404


def test_an_execution_id_chosen_by_a_run_token_cannot_take_over_a_record(world):
    deploy, run = bearer(world.tokens["deploy"]), bearer(world.tokens["run"])
    world.put("/v2/functions/attacker", json=VICTIM, headers=deploy)
    taken = world.post("/v2/functions/attacker/run/uses?async=true", json={"id": world.victim_execution}, headers=run)
    assert taken.status_code == 409
    no_secret(taken)
    assert world.get(f"/v2/executions/{world.victim_execution}", headers=run).status_code == 404


@pytest.mark.slow  # the hostile suite's real server with worker processes
def test_functions_in_a_shared_worker_see_only_their_own_secrets(service):
    assert service.client.put("/v2/functions/victim", json=VICTIM).status_code == 200
    assert service.client.put("/v2/functions/victim/secrets/KEY", json=SECRET).status_code == 200
    assert service.client.post("/v2/functions/victim/run/uses", json={}).json()["result"] == "set"
    for language, code in [
        ("javascript", "return JSON.stringify([process.env, Object.getOwnPropertyNames(globalThis)]);"),
        ("python", "return {'env': dict(env), 'cache': str(cache)}"),
    ]:
        outcome = service.attack(language, code, expect=("ok",), keeps_neighbours_warm=True)
        assert SECRET not in json.dumps(outcome.body)
