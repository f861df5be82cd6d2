"""LOGS_LOCATION as a directory, in the embedded mode: one JSON file per ended execution."""

import json
import time


def test_each_ended_execution_s_logs_are_written_to_the_directory(make_client, tmp_path):
    client = make_client(LOGS_LOCATION=str(tmp_path / "logs"))
    document = {
        "functions": {"hello": {"code": "console.log('hi'); return 1;"}, "bad": {"code": "throw new Error('no');"}}
    }
    client.put("/v2/functions/w", json=document)
    ok = client.post("/v2/functions/w/run/hello", json={}).headers["x-execution-id"]
    failed = client.post("/v2/functions/w/run/bad", json={}).headers["x-execution-id"]
    started = client.post("/v2/functions/w/run/hello", json={}, headers={"Prefer": "respond-async"}).json()["id"]
    assert client.get(f"/v2/executions/{started}/wait").json()["status"] == "successful"
    paths = {
        ok: tmp_path / "logs" / "w" / "hello" / f"{ok}.json",
        failed: tmp_path / "logs" / "w" / "bad" / f"{failed}.json",
        started: tmp_path / "logs" / "w" / "hello" / f"{started}.json",
    }
    deadline = time.monotonic() + 30
    while not all(path.is_file() for path in paths.values()) and time.monotonic() < deadline:
        time.sleep(0.02)
    written = {execution_id: json.loads(path.read_text()) for execution_id, path in paths.items()}
    assert written[ok]["status"] == "successful" and written[ok]["logs"][0]["message"] == "hi"
    assert written[failed]["status"] == "failed" and written[failed]["error"]["error"] == "FunctionError"
    assert written[started]["status"] == "successful" and written[started]["logs"][0]["message"] == "hi"
