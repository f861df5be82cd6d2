"""Conditional saves and deletes: If-Match with the ETag of GET."""

HELLO = {"functions": {"hello": {"code": "return 'Hello';"}}}
BONJOUR = {"functions": {"hello": {"code": "return 'Bonjour';"}}}


def test_a_save_with_the_etag_read_succeeds_and_a_stale_one_answers_412(client):
    etag = client.put("/v2/functions/w", json=HELLO).headers["etag"]
    assert client.get("/v2/functions/w").headers["etag"] == etag
    saved = client.put("/v2/functions/w", json=BONJOUR, headers={"If-Match": etag})
    assert saved.status_code == 200
    refused = client.put("/v2/functions/w", json=HELLO, headers={"If-Match": etag})
    assert refused.status_code == 412
    assert refused.json()["error"] == "PreconditionFailed"
    assert refused.json()["details"]["version"] == saved.headers["etag"].strip('"')
    assert client.post("/v2/functions/w/run/hello", json={}).json()["result"] == "Bonjour"
    assert client.delete("/v2/functions/w", headers={"If-Match": etag}).status_code == 412
    assert client.delete("/v2/functions/w", headers={"If-Match": saved.headers["etag"]}).status_code == 204


def test_if_match_any_needs_the_workspace_to_exist(client):
    assert client.put("/v2/functions/w", json=HELLO, headers={"If-Match": "*"}).status_code == 412
    client.put("/v2/functions/w", json=HELLO)
    assert client.put("/v2/functions/w", json=BONJOUR, headers={"If-Match": "*"}).status_code == 200
    assert client.put("/v2/functions/w", json=HELLO, headers={"If-Match": 'W/"0000"'}).status_code == 412
