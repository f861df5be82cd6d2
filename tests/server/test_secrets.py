"""Workspace secrets through the API: set, list, delete, read by functions, never read back."""

import tarfile
from io import BytesIO

VALUE = "sk-live-0123456789abcdef"
FUNCTIONS = {
    "functions": {
        "js": {"code": "return process.env.API_KEY ? process.env.API_KEY.length : null;"},
        "py": {"language": "python", "code": "return len(env['API_KEY']) if 'API_KEY' in env else None"},
        "leak_js": {"code": "console.log('key=' + process.env.API_KEY); return {k: process.env.API_KEY};"},
        "leak_py": {"language": "python", "code": "print('key=' + env['API_KEY'])\nreturn {'k': env['API_KEY']}"},
        "throw_js": {"code": "throw new Error('bad key ' + process.env.API_KEY);"},
        "throw_py": {"language": "python", "code": "raise ValueError('bad key ' + env['API_KEY'])"},
        "write_py": {"language": "python", "code": "env['API_KEY'] = 'x'\nreturn 1"},
        "write_js": {"code": "process.env.API_KEY = 'x'; return process.env.API_KEY;"},
    }
}


def test_functions_read_secrets_from_the_next_run_without_recompiling(client):
    assert client.put("/v2/functions/w", json=FUNCTIONS).status_code == 200
    assert client.post("/v2/functions/w/run/js", json={}).json()["result"] is None
    assert client.post("/v2/functions/w/run/py", json={}).json()["result"] is None
    saved = client.put("/v2/functions/w/secrets/API_KEY", json=VALUE)
    assert saved.status_code == 200 and VALUE not in saved.text
    assert client.post("/v2/functions/w/run/js", json={}).json()["result"] == len(VALUE)
    assert client.post("/v2/functions/w/run/py", json={}).json()["result"] == len(VALUE)
    client.put("/v2/functions/w/secrets/API_KEY", json="short")
    assert client.post("/v2/functions/w/run/js", json={}).json()["result"] == 5
    assert client.post("/v2/functions/w/run/py", json={}).json()["result"] == 5
    assert client.delete("/v2/functions/w/secrets/API_KEY").status_code == 204
    assert client.post("/v2/functions/w/run/js", json={}).json()["result"] is None
    assert client.delete("/v2/functions/w/secrets/API_KEY").status_code == 404


def test_listing_gives_names_and_times_never_values(client):
    client.put("/v2/functions/w/secrets/API_KEY", json=VALUE)
    client.put("/v2/functions/w/secrets/OTHER", json="another-secret-value")
    listed = client.get("/v2/functions/w/secrets")
    assert [item["name"] for item in listed.json()["secrets"]] == ["API_KEY", "OTHER"]
    assert VALUE not in listed.text and all(set(item) == {"name", "updated"} for item in listed.json()["secrets"])
    assert client.get("/v2/functions/other/secrets").json() == {"secrets": []}


def test_secret_values_are_redacted_from_logs_results_errors_and_records(client):
    client.put("/v2/functions/w", json=FUNCTIONS)
    client.put("/v2/functions/w/secrets/API_KEY", json=VALUE)
    for name in ("leak_js", "leak_py", "throw_js", "throw_py"):
        answer = client.post(f"/v2/functions/w/run/{name}", json={})
        assert VALUE not in answer.text and "***" in answer.text, name
        record = client.get(f"/v2/executions/{answer.headers['X-Execution-Id']}")
        assert VALUE not in record.text and "***" in record.text
        started = client.post(f"/v2/functions/w/run/{name}?async=true", json={}).json()["id"]
        ended = client.get(f"/v2/executions/{started}/wait?timeout=10")
        assert VALUE not in ended.text and "***" in ended.text
        stream = client.get(f"/v2/executions/{started}/logs", headers={"Accept": "text/event-stream"})
        assert VALUE not in stream.text
    listing = client.get("/v2/executions?limit=100")
    assert VALUE not in listing.text


def test_functions_cannot_change_their_secrets(client):
    client.put("/v2/functions/w", json=FUNCTIONS)
    client.put("/v2/functions/w/secrets/API_KEY", json=VALUE)
    refused = client.post("/v2/functions/w/run/write_py", json={})
    assert refused.status_code == 500 and refused.json()["error"] == "FunctionError"
    assert client.post("/v2/functions/w/run/write_js", json={}).json()["result"] == "***"
    assert client.post("/v2/functions/w/run/py", json={}).json()["result"] == len(VALUE)


def test_secrets_never_appear_in_documents_exports_or_openapi(client):
    client.put("/v2/functions/w", json=FUNCTIONS)
    client.put("/v2/functions/w/secrets/API_KEY", json=VALUE)
    assert VALUE not in client.get("/v2/functions/w").text
    archive = client.get("/v2/functions/w/archive").content
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        for member in tar.getmembers():
            extracted = tar.extractfile(member)
            assert extracted is None or VALUE.encode() not in extracted.read()
    assert VALUE not in client.get("/openapi.json").text


def test_bad_names_and_values_are_refused(client):
    assert client.put("/v2/functions/w/secrets/1BAD", json="v").status_code == 400
    assert client.put("/v2/functions/w/secrets/OK", json={"value": "v"}).status_code == 400
    assert client.put("/v2/functions/w/secrets/OK", json="").status_code == 400
    assert client.put("/v2/functions/bad..name/secrets/OK", json="v").status_code in (400, 404)
