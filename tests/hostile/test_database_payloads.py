"""Payloads against the shared database: SQL in every value that reaches a query, NUL characters,
regular-expression characters in token patterns, and garbage If-Match headers."""

import time
from urllib.parse import quote

import pytest

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
