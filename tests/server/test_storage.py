"""The data directory under stress: big records, a full disk, a read-only or damaged directory."""

import os

from tests.executions.test_opening import damage
from tests.filesystems import fill, read_only, small_filesystem

HELLO = {"functions": {"hello": {"language": "python", "code": "return 'hi'"}}}
BIG = {
    "functions": {
        "big": {"language": "python", "code": "for i in range(300):\n    print('x' * 4000)\nreturn 'r' * 300000"},
    }
}


def test_a_big_result_is_answered_whole_and_its_record_is_cut(make_client):
    client = make_client(EXECUTIONS_MAX_RECORD_BYTES="64kb")
    assert client.post("/v2/functions/w", json=BIG).status_code == 200
    answer = client.post("/v2/functions/w/run/big", json={})
    assert answer.status_code == 200 and answer.json()["result"] == "r" * 300000
    record = client.get(f"/v2/executions/{answer.headers['x-execution-id']}").json()
    assert record["result"] == {"truncated": True, "size": 300002}
    assert record["logs"][-1]["level"] == "warn" and "of 300 entries kept" in record["logs"][-1]["message"]


def test_a_full_disk_answers_507_to_saves_and_leaves_runs_of_other_tenants_working(make_client, tmp_path):
    with small_filesystem(tmp_path / "fs", "2m") as root:
        client = make_client(FUNCTIONS_STORAGE_FILESYSTEM_DIRPATH=str(root))
        assert client.post("/v2/functions/kept", json=HELLO).status_code == 200
        fill(root)
        big = {"functions": {"f": {"code": "return 1;", "description": "d" * 100_000}}}
        answer = client.post("/v2/functions/newcomer", json=big)
        assert answer.status_code == 507 and answer.json()["error"] == "InsufficientStorage"
        assert not (root / "newcomer").exists()
        for _ in range(20):
            run = client.post("/v2/functions/kept/run/hello", json={})
            assert run.status_code == 200 and run.json()["result"] == "hi"
        assert client.get("/v2/functions/kept").status_code == 200


def test_a_read_only_data_directory_serves_its_workspaces_and_refuses_saves(make_client, tmp_path):
    with small_filesystem(tmp_path / "fs") as root:
        first = make_client(FUNCTIONS_STORAGE_FILESYSTEM_DIRPATH=str(root))
        assert first.post("/v2/functions/kept", json=HELLO).status_code == 200
        first.__exit__(None, None, None)
        read_only(root)
        client = make_client(FUNCTIONS_STORAGE_FILESYSTEM_DIRPATH=str(root))
        assert client.get("/v2/functions").json() == ["kept"]
        assert client.post("/v2/functions/kept/run/hello", json={}).json()["result"] == "hi"
        answer = client.put("/v2/functions/kept", json=HELLO)
        assert answer.status_code == 507 and "read-only" in answer.json()["message"]
        assert client.delete("/v2/functions/kept").status_code == 507


def test_a_damaged_execution_database_does_not_stop_the_start(make_client, tmp_path):
    data = tmp_path / "functions"
    first = make_client(FUNCTIONS_STORAGE_FILESYSTEM_DIRPATH=str(data))
    assert first.post("/v2/functions/kept", json=HELLO).status_code == 200
    first.__exit__(None, None, None)
    os.remove(data / "executions.sqlite3")
    damage(data / "executions.sqlite3")
    client = make_client(FUNCTIONS_STORAGE_FILESYSTEM_DIRPATH=str(data))
    answer = client.post("/v2/functions/kept/run/hello", json={})
    assert answer.status_code == 200
    assert client.get(f"/v2/executions/{answer.headers['x-execution-id']}").status_code == 200
    assert any(".damaged-" in name for name in os.listdir(data))
