"""s3:// locations on a real S3-compatible server: archives imported at start, ended executions' logs."""

from __future__ import annotations

import io
import json
import tarfile
import time
import uuid
import zipfile

import httpx2 as httpx
import pytest
import yaml

from tests.processes import running_server

pytestmark = pytest.mark.slow  # real servers, a real S3-compatible server (and PostgreSQL)


def tar_gz(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def zip_(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


def bucket(s3) -> str:
    name = f"b{uuid.uuid4().hex[:12]}"
    s3.client().create_bucket(Bucket=name)
    return name


def test_archives_under_an_s3_prefix_are_imported_at_start(tmp_path, s3):
    name, client = bucket(s3), s3.client()
    document = {"functions": {"hello": {"code": "return 'hello';"}}}
    client.put_object(Bucket=name, Key="archives/billing.tar.gz", Body=tar_gz({"workspace.yaml": yaml.dump(document)}))
    client.put_object(Bucket=name, Key="archives/billing/extra.zip", Body=zip_({"extra.js": "return 'extra';"}))
    client.put_object(Bucket=name, Key="archives/broken.zip", Body=b"not an archive")
    client.put_object(Bucket=name, Key="elsewhere/other.zip", Body=zip_({"f.js": "return 1;"}))
    environ = {**s3.environ, "FUNCTIONS_LOCATION": f"s3://{name}/archives", "FUNCTIONS_WORKERS": "0"}
    with running_server(tmp_path / "data", **environ) as server:
        assert httpx.get(f"{server.url}/v2/functions").json() == ["billing"]
        for function, answer in (("hello", "hello"), ("extra", "extra")):
            assert httpx.post(f"{server.url}/v2/functions/billing/run/{function}", json={}).json()["result"] == answer
        assert "import of s3://" in server.log() and "broken.zip failed" in server.log()


def test_each_ended_execution_s_logs_go_to_s3_as_one_object(tmp_path, s3, database_url):
    name, client = bucket(s3), s3.client()
    environ = {
        **s3.environ,
        "LOGS_LOCATION": f"s3://{name}/logs",
        "FNBOX_DATABASE_URL": database_url,
        "FUNCTIONS_WORKERS": "0",
    }
    document = {"functions": {"hello": {"code": "console.log('hi ' + name); return name;", "parameters": {"name": {}}}}}
    with running_server(tmp_path / "data", **environ) as server, httpx.Client(timeout=30) as http:
        http.put(f"{server.url}/v2/functions/w", json=document)
        synchronous = http.post(f"{server.url}/v2/functions/w/run/hello", json={"parameters": {"name": "a"}})
        sync_id = synchronous.headers["x-execution-id"]
        started = http.post(
            f"{server.url}/v2/functions/w/run/hello",
            json={"parameters": {"name": "b"}},
            headers={"Prefer": "respond-async"},
        )
        async_id = started.json()["id"]
        assert http.get(f"{server.url}/v2/executions/{async_id}/wait").json()["status"] == "successful"
        deadline = time.monotonic() + 30
        while True:
            keys = sorted(item["Key"] for item in client.list_objects_v2(Bucket=name).get("Contents", []))
            if len(keys) == 2 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    assert keys == sorted([f"logs/w/hello/{sync_id}.json", f"logs/w/hello/{async_id}.json"])
    for execution_id, who in ((sync_id, "a"), (async_id, "b")):
        body = json.loads(client.get_object(Bucket=name, Key=f"logs/w/hello/{execution_id}.json")["Body"].read())
        assert body["id"] == execution_id and body["status"] == "successful"
        assert [entry["message"] for entry in body["logs"]] == [f"hi {who}"]
