"""Payloads against the shared database: SQL in every value that reaches a query, NUL characters,
regular-expression characters in token patterns, and garbage If-Match headers."""

import time
from urllib.parse import quote

import pytest
from cryptography.fernet import Fernet

from fnbox.workspaces.pgsecrets import SecretsKeyError

pytestmark = pytest.mark.slow  # a real PostgreSQL

ADMIN = "hostile-admin-token-0123456789"
INJECTIONS = ["' OR '1'='1", "w'; DROP TABLE fnbox_executions; --", "%", "_", "\\", "w\x00x", "$1", "*"]


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def shared(database_url, make_client):  # the database outlives the client's Runtime
    return make_client(FNBOX_DATABASE_URL=database_url)


def test_sql_in_filters_ids_and_names_is_only_ever_a_value(shared):
    shared.put("/v2/functions/w", json={"functions": {"f": {"code": "return 1;"}}})
    execution = shared.post("/v2/functions/w/run/f", json={}, headers={"Prefer": "respond-async"}).json()["id"]
    assert shared.get(f"/v2/executions/{execution}/wait").json()["status"] == "successful"
    for value in INJECTIONS:
        for field in ("workspace", "function"):
            answer = shared.get("/v2/executions", params={field: value})
            assert answer.status_code == 200 and answer.json()["executions"] == [], (field, value)
        assert shared.get("/v2/executions", params={"status": value}).status_code == 400
        assert shared.get("/v2/executions", params={"after": value}).status_code == 400
        assert shared.get(f"/v2/functions/{quote(value, safe='')}").status_code in (400, 404)
        assert shared.post(f"/v2/functions/w/run/{quote(value, safe='')}", json={}).status_code in (400, 404)
        assert shared.get(f"/v2/executions/{quote(value, safe='')}").status_code in (400, 404)
    listed = shared.get("/v2/executions").json()["executions"]
    assert [item["id"] for item in listed] == [execution]  # nothing was dropped or changed
    assert shared.get("/v2/functions").json() == ["w"]


def test_nul_characters_in_code_parameters_results_and_logs_round_trip(shared):
    code = "console.log('a\\u0000b'); return s + '\\u0000';  // \x00 in a comment"
    document = {"functions": {"f": {"code": code, "parameters": {"s": {"type": "string"}}}}}
    assert shared.put("/v2/functions/nul", json=document).status_code == 200
    assert shared.get("/v2/functions/nul").json() == document
    started = shared.post(
        "/v2/functions/nul/run/f", json={"parameters": {"s": "x\x00y"}}, headers={"Prefer": "respond-async"}
    ).json()["id"]
    ended = shared.get(f"/v2/executions/{started}/wait").json()
    assert ended["result"] == "x\x00y\x00" and ended["logs"][0]["message"] == "a\x00b"
    assert ended["parameters"] == {"s": "x\x00y"}


def test_a_token_s_workspace_pattern_is_a_glob_never_a_regular_expression(database_url, make_client):
    client = make_client(FNBOX_DATABASE_URL=database_url, FNBOX_ADMIN_TOKEN=ADMIN)
    admin = bearer(ADMIN)
    for name in ("a-c", "abc", "a-cx", "za-c"):
        client.put(f"/v2/functions/{name}", json={"functions": {"f": {"code": "return 1;"}}}, headers=admin)
        client.post(f"/v2/functions/{name}/run/f", json={}, headers=admin)
    token = client.post("/v2/tokens", json={"scopes": ["read"], "workspaces": ["a-c*"]}, headers=admin).json()["token"]
    deadline = time.monotonic() + 30  # synchronous runs are written in batches
    while len(client.get("/v2/executions", headers=admin).json()["executions"]) < 4:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    seen = client.get("/v2/executions", headers=bearer(token)).json()["executions"]
    assert sorted(item["workspace"] for item in seen) == ["a-c", "a-cx"]


@pytest.mark.parametrize(
    "header",
    ['"', '""', "W/", 'W/"', '"a", "b"', "*, *", "x" * 8000, '"\u00e9"', "\t", "' OR 1=1 --"],
)
def test_garbage_if_match_headers_are_refused_and_change_nothing(shared, header):
    original = {"functions": {"f": {"code": "return 1;"}}}
    shared.put("/v2/functions/w", json=original)
    answer = shared.put("/v2/functions/w", json={"functions": {}}, headers={"If-Match": header.encode("utf-8")})
    assert answer.status_code == 412, answer.text
    assert shared.delete("/v2/functions/w", headers={"If-Match": header.encode("utf-8")}).status_code == 412
    assert shared.get("/v2/functions/w").json() == original


def test_sql_and_nul_characters_in_token_ids_and_bodies_are_refused_and_change_nothing(database_url, make_client):
    client = make_client(FNBOX_DATABASE_URL=database_url, FNBOX_ADMIN_TOKEN=ADMIN)
    admin = bearer(ADMIN)
    made = client.post("/v2/tokens", json={"scopes": ["read"]}, headers=admin).json()
    # An id of digits alone has no other case.
    other_case = [made["id"].upper()] if made["id"].upper() != made["id"] else []
    for value in [*INJECTIONS, made["id"] + "\x00", made["id"] + "' OR '1'='1", *other_case]:
        answer = client.delete(f"/v2/tokens/{quote(value, safe='')}", headers=admin)
        assert answer.status_code in (400, 404) and answer.json()["error"] in ("InvalidRequest", "NotFound"), value
        body = {"scopes": ["read"], "workspaces": [value]}
        answer = client.post("/v2/tokens", json=body, headers=admin)
        assert answer.status_code in (201, 400), value  # '*' alone is a pattern: every workspace
        if answer.status_code == 201:
            assert client.delete(f"/v2/tokens/{answer.json()['id']}", headers=admin).status_code == 204
        assert client.post("/v2/tokens", json={"scopes": [value]}, headers=admin).status_code == 400
    assert [item["id"] for item in client.get("/v2/tokens", headers=admin).json()] == [made["id"]]
    assert client.get("/v2/functions", headers=bearer(made["token"])).status_code == 200


def test_forged_tokens_against_the_shared_table_are_refused_alike(database_url, make_client):
    client = make_client(FNBOX_DATABASE_URL=database_url, FNBOX_ADMIN_TOKEN=ADMIN)
    real = client.post("/v2/tokens", json={"scopes": ["read"]}, headers=bearer(ADMIN)).json()
    forgeries = [
        real["token"][:-1] + ("A" if real["token"][-1] != "A" else "B"),
        f"fnbox_{real['id']}_" + "A" * 43,
        f"fnbox_{real['id']}_' OR '1'='1' --aaaaaaaaaaaaaaa",
        f"fnbox_{real['id']}\x00_" + "A" * 43,
        "fnbox_' OR 1=1 --_" + "A" * 43,
    ]
    bodies = set()
    for forged in forgeries:
        answer = client.get("/v2/functions", headers={"Authorization": f"Bearer {forged}".encode("latin-1")})
        assert answer.status_code == 401, forged
        bodies.add(answer.text)
    assert len(bodies) == 1  # no oracle on which part was wrong
    assert client.get("/v2/functions", headers=bearer(real["token"])).status_code == 200


def test_sql_and_nul_characters_in_secret_names_and_values(shared):
    shared.put(
        "/v2/functions/w",
        json={"functions": {"f": {"code": "return Object.keys(process.env).map((k) => [k, process.env[k].length]);"}}},
    )
    for value in [*(v for v in INJECTIONS if v != "_"), "K\x00", "K' OR '1'='1", "K;DROP TABLE fnbox_secrets"]:
        answer = shared.put(f"/v2/functions/w/secrets/{quote(value, safe='')}", json="v-0123456789")
        assert answer.status_code in (400, 404) and answer.json()["error"] in ("InvalidRequest", "NotFound"), value
        assert shared.delete(f"/v2/functions/w/secrets/{quote(value, safe='')}").status_code in (400, 404)
    values = {f"K{index}": value + "-0123456789" for index, value in enumerate(INJECTIONS)}
    for name, value in values.items():
        assert shared.put(f"/v2/functions/w/secrets/{name}", json=value).status_code == 200, value
    assert shared.post("/v2/functions/w/run/f", json={}).json()["result"] == [[k, len(v)] for k, v in values.items()]
    assert [item["name"] for item in shared.get("/v2/functions/w/secrets").json()["secrets"]] == sorted(values)


def test_a_key_mismatch_between_instances_answers_clear_errors_and_stops_a_start(tmp_path, database_url, make_client):
    a = make_client(
        FNBOX_DATABASE_URL=database_url,
        FUNCTIONS_STORAGE_FILESYSTEM_DIRPATH=str(tmp_path / "a"),
        FNBOX_SECRETS_KEY=Fernet.generate_key().decode(),
    )
    b = make_client(
        FNBOX_DATABASE_URL=database_url,
        FUNCTIONS_STORAGE_FILESYSTEM_DIRPATH=str(tmp_path / "b"),
        FNBOX_SECRETS_KEY=Fernet.generate_key().decode(),
    )  # both started on a database with no secret yet: nothing told them apart
    a.put("/v2/functions/w", json={"functions": {"f": {"code": "return process.env.K ? 'set' : 'unset';"}}})
    assert a.put("/v2/functions/w/secrets/K", json="sk-from-a-0123456789").status_code == 200
    ran = b.post("/v2/functions/w/run/f", json={})
    assert ran.status_code == 500 and ran.json()["error"] == "InternalError"
    assert "same FNBOX_SECRETS_KEY" in ran.json()["message"] and "sk-from-a" not in ran.text
    refused = b.put("/v2/functions/w/secrets/OTHER", json="sk-from-b-0123456789")
    assert refused.status_code == 500 and refused.json()["error"] == "InternalError"
    assert "same FNBOX_SECRETS_KEY" in refused.json()["message"]
    assert [item["name"] for item in a.get("/v2/functions/w/secrets").json()["secrets"]] == ["K"]
    assert a.post("/v2/functions/w/run/f", json={}).json()["result"] == "set"
    with pytest.raises(SecretsKeyError, match="same FNBOX_SECRETS_KEY"):
        make_client(
            FNBOX_DATABASE_URL=database_url,
            FUNCTIONS_STORAGE_FILESYSTEM_DIRPATH=str(tmp_path / "c"),
            FNBOX_SECRETS_KEY=Fernet.generate_key().decode(),
        )
