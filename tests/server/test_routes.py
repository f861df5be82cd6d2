"""The REST API, end to end through the real sandboxes."""

import time

HELLO = {"functions": {"hello": {"code": 'return "Hello " + name;', "parameters": {"name": {"type": "string"}}}}}


def test_the_model_service_walk_through_works_verbatim(client):
    saved = client.post("/v2/functions/test", json=HELLO)
    assert saved.status_code == 200
    assert saved.json() == HELLO
    ran = client.post("/v2/functions/test/run/hello", json={"parameters": {"name": "world"}})
    assert ran.status_code == 200
    body = ran.json()
    assert body["result"] == "Hello world" and body["logs"] == []
    assert isinstance(body["duration"], float) and body["duration"] >= 0


def test_both_languages_in_one_workspace(client):
    document = {
        "functions": {
            "js": {
                "code": "console.log('from js'); return n * 2;",
                "parameters": {"n": {"type": "integer", "default": 2}},
            },
            "py": {
                "language": "python",
                "code": "print('from py')\nreturn n * 3",
                "parameters": {"n": {"type": "integer", "default": 2}},
            },
        }
    }
    assert client.put("/v2/functions/mixed", json=document).status_code == 200
    js = client.post("/v2/functions/mixed/run/js", json={"parameters": {"n": 5}}).json()
    py = client.post("/v2/functions/mixed/run/py", json={}).json()
    assert js["result"] == 10 and [e["message"] for e in js["logs"]] == ["from js"]
    assert py["result"] == 6 and [e["message"] for e in py["logs"]] == ["from py"]
    assert js["logs"][0]["level"] == py["logs"][0]["level"] == "info"


def test_a_thrown_error_answers_function_error_with_logs_and_line(client):
    client.post(
        "/v2/functions/w", json={"functions": {"boom": {"code": "console.warn('about to');\nthrow new Error('boom');"}}}
    )
    answer = client.post("/v2/functions/w/run/boom", json={})
    assert answer.status_code == 500
    body = answer.json()
    assert body["error"] == "FunctionError" and "boom" in body["message"]
    assert body["details"]["line"] == 2
    assert body["logs"][0]["level"] == "warn" and isinstance(body["duration"], float)


def test_a_syntax_error_is_refused_at_save_time_and_the_old_version_keeps_serving(client):
    client.post("/v2/functions/w", json=HELLO)
    bad = {
        "functions": {"hello": {"code": "return 'fine';"}, "broken": {"code": "let x = ;", "language": "javascript"}}
    }
    answer = client.post("/v2/functions/w", json=bad)
    assert answer.status_code == 400
    assert answer.json()["error"] == "CompilationError"
    assert answer.json()["details"]["function"] == "broken" and answer.json()["details"]["line"] == 1
    assert (
        client.post("/v2/functions/w/run/hello", json={"parameters": {"name": "again"}}).json()["result"]
        == "Hello again"
    )
    assert client.get("/v2/functions/w").json() == HELLO


def test_wrong_parameter_type_answers_invalid_parameters(client):
    client.post("/v2/functions/w", json=HELLO)
    answer = client.post("/v2/functions/w/run/hello", json={"parameters": {"name": 42}})
    assert answer.status_code == 400
    assert answer.json()["error"] == "InvalidParameters" and answer.json()["details"]["parameter"] == "name"


def test_list_get_with_etag_and_delete(client):
    client.post("/v2/functions/b", json=HELLO)
    client.post("/v2/functions/a", json=HELLO)
    assert client.get("/v2/functions").json() == ["a", "b"]
    got = client.get("/v2/functions/a")
    assert got.status_code == 200 and got.json() == HELLO and got.headers["etag"]
    assert client.get("/v2/functions/a", headers={"If-None-Match": got.headers["etag"]}).status_code == 304
    assert client.delete("/v2/functions/a").status_code == 204
    assert client.get("/v2/functions/a").status_code == 404
    missing = client.post("/v2/functions/a/run/hello", json={})
    assert missing.status_code == 404 and missing.json()["error"] == "NotFound"
    assert client.get("/v2/functions").json() == ["b"]


def test_not_found_and_bad_requests(client):
    assert client.post("/v2/functions/nope/run/hello", json={}).json()["error"] == "NotFound"
    client.post("/v2/functions/w", json=HELLO)
    assert client.post("/v2/functions/w/run/nope", json={}).status_code == 404
    bad_json = client.post("/v2/functions/w", content=b"{not json", headers={"content-type": "application/json"})
    assert bad_json.status_code == 400 and bad_json.json()["error"] == "InvalidRequest"
    assert client.post("/v2/functions/w", json=[1, 2]).json()["error"] == "InvalidRequest"
    assert client.post("/v2/functions/bad name!", json=HELLO).status_code in (400, 404)
    nested = b"[" * 5000 + b"]" * 5000
    assert client.post("/v2/functions/w/run/hello", content=nested).json()["error"] == "InvalidRequest"


def test_health_openapi_and_docs(client):
    assert client.get("/sys/healthcheck").status_code == 200
    schema = client.get("/openapi.json").json()
    assert "/v2/functions/{workspace}/run/{function}" in schema["paths"]
    docs = client.get("/docs")
    assert docs.status_code == 200 and "text/html" in docs.headers["content-type"]
    assert "/v2/functions/{workspace}/run/{function}" in docs.text and "TimeoutExceeded" in docs.text


def test_every_route_is_documented_with_well_formed_answers(client):
    schema = client.get("/openapi.json").json()
    for path in ("/v2/executions", "/v2/executions/{id}/logs", "/v2/functions/{workspace}/archive"):
        assert path in schema["paths"]
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            assert operation.get("summary"), f"{method} {path} has no summary"
            for status, answer in operation["responses"].items():
                assert set(answer) <= {"description", "content", "headers"}, f"{method} {path} {status}: {answer}"


def test_a_body_over_the_limit_answers_413(make_client):
    client = make_client(REQUEST_MAX_SIZE="1kb")
    big = {"functions": {"hello": {"code": "return 1;" + " " * 2000}}}
    answer = client.post("/v2/functions/w", json=big)
    assert answer.status_code == 413 and answer.json()["error"] == "PayloadTooLarge"

    def chunks():
        yield b'{"functions": {"hello": {"code": "'
        yield b" " * 2000
        yield b'"}}}'

    chunked = client.post("/v2/functions/w", content=chunks(), headers={"content-type": "application/json"})
    assert chunked.status_code == 413


def test_infinite_loops_time_out_and_the_workspace_answers_right_after(make_client):
    client = make_client(FUNCTIONS_RUN_TIMEOUT="1000", PYTHON_FUNCTIONS_RUN_TIMEOUT="1000")
    client.post(
        "/v2/functions/w",
        json={
            "functions": {
                "jsloop": {"code": "while(true){}"},
                "pyloop": {"language": "python", "code": "while True:\n    pass"},
                "ok": {"code": "return 'ok';"},
                "pyok": {"language": "python", "code": "return 'ok'"},
            }
        },
    )
    for loop, healthy in (("jsloop", "ok"), ("pyloop", "pyok")):
        started = time.monotonic()
        answer = client.post(f"/v2/functions/w/run/{loop}", json={})
        elapsed = time.monotonic() - started
        assert answer.status_code == 504 and answer.json()["error"] == "TimeoutExceeded"
        assert elapsed < 1.5
        assert client.post(f"/v2/functions/w/run/{healthy}", json={}).json()["result"] == "ok"


def test_a_per_function_timeout_is_honoured(make_client):
    client = make_client(FUNCTIONS_RUN_TIMEOUT="5000")
    client.post("/v2/functions/w", json={"functions": {"loop": {"code": "while(true){}", "timeout": 300}}})
    started = time.monotonic()
    assert client.post("/v2/functions/w/run/loop", json={}).status_code == 504
    assert time.monotonic() - started < 1.0


def test_a_js_allocation_loop_answers_memory_limit_exceeded(make_client):
    client = make_client(NODE_WORKER_MAX_OLD_GENERATION_SIZE_MB="64")
    client.post(
        "/v2/functions/w",
        json={
            "functions": {
                "hog": {"code": "let a = []; while (true) a.push(new Array(1e5).fill(1.5));"},
                "ok": {"code": "return 'ok';"},
            }
        },
    )
    answer = client.post("/v2/functions/w/run/hog", json={})
    assert answer.status_code == 500 and answer.json()["error"] == "MemoryLimitExceeded"
    assert client.post("/v2/functions/w/run/ok", json={}).json()["result"] == "ok"


def test_update_scripts_on_startup_logs_each_failure(make_client, tmp_path, caplog):
    folder = tmp_path / "functions" / "old"
    folder.mkdir(parents=True)
    (folder / "workspace.yaml").write_text(
        "functions:\n  bad:\n    code: 'let x = ;'\n  good:\n    code: 'return 1;'\n"
    )
    with caplog.at_level("ERROR", logger="fnbox"):
        client = make_client(UPDATE_SCRIPTS_ON_STARTUP="yes")
    assert any("bad" in record.getMessage() and "old" in record.getMessage() for record in caplog.records)
    assert client.post("/v2/functions/old/run/good", json={}).json()["result"] == 1
    assert client.post("/v2/functions/old/run/bad", json={}).json()["error"] == "CompilationError"


COUNTER = {"functions": {"count": {"code": "cache.n = (cache.n || 0) + 1; return cache.n;"}}}


def test_cache_is_kept_across_runs_and_never_shared_between_workspaces(client):
    client.post("/v2/functions/a", json=COUNTER)
    client.post("/v2/functions/b", json=COUNTER)
    assert [client.post("/v2/functions/a/run/count", json={}).json()["result"] for _ in range(3)] == [1, 2, 3]
    assert client.post("/v2/functions/b/run/count", json={}).json()["result"] == 1


def test_a_third_workspace_evicts_the_least_recently_used_and_resets_its_cache(make_client):
    client = make_client(FUNCTIONS_WORKERS_MAX_LRU="2")
    for name in ("a", "b"):
        client.post(f"/v2/functions/{name}", json=COUNTER)
        client.post(f"/v2/functions/{name}/run/count", json={})
    client.post("/v2/functions/b/run/count", json={})  # a is now the least recently used
    client.post("/v2/functions/c", json=COUNTER)
    assert client.post("/v2/functions/b/run/count", json={}).json()["result"] == 3
    assert client.post("/v2/functions/a/run/count", json={}).json()["result"] == 1


def test_an_idle_sandbox_is_dropped_after_the_inactivity_timeout(make_client):
    client = make_client(INACTIVE_NODE_WORKER_DELETION_TIMEOUT="0.3")
    client.post("/v2/functions/a", json=COUNTER)
    assert client.post("/v2/functions/a/run/count", json={}).json()["result"] == 1
    assert client.post("/v2/functions/a/run/count", json={}).json()["result"] == 2
    time.sleep(0.8)
    assert client.post("/v2/functions/a/run/count", json={}).json()["result"] == 1


def test_a_run_in_flight_finishes_on_the_version_it_started_with(client):
    import threading

    slow = {"functions": {"f": {"code": "await new Promise(r => setTimeout(r, 400)); return 'old';"}}}
    client.post("/v2/functions/w", json=slow)
    answers = []
    thread = threading.Thread(target=lambda: answers.append(client.post("/v2/functions/w/run/f", json={}).json()))
    thread.start()
    time.sleep(0.1)
    client.post("/v2/functions/w", json={"functions": {"f": {"code": "return 'new';"}}})
    assert client.post("/v2/functions/w/run/f", json={}).json()["result"] == "new"
    thread.join()
    assert answers[0]["result"] == "old"


def test_a_per_function_memory_limit_is_honoured(make_client):
    client = make_client(NODE_WORKER_MAX_OLD_GENERATION_SIZE_MB="200")
    grow = "let a = []; for (let i = 0; i < 40; i++) a.push(new Array(1e5).fill(i + 0.5)); return a.length;"
    client.post("/v2/functions/w", json={"functions": {"small": {"code": grow, "memory": 16}, "roomy": {"code": grow}}})
    assert client.post("/v2/functions/w/run/roomy", json={}).json()["result"] == 40
    assert client.post("/v2/functions/w/run/small", json={}).json()["error"] == "MemoryLimitExceeded"


def test_a_lone_surrogate_escape_in_a_body_is_refused_and_a_real_pair_round_trips(client):
    """JSON may spell an unpaired UTF-16 surrogate (\\ud800), which is not Unicode text."""
    headers = {"content-type": "application/json"}
    client.put("/v2/functions/w", json=HELLO)
    bad_save = client.put(
        "/v2/functions/w", content=rb'{"functions": {"hello": {"code": "return \"\ud800\";"}}}', headers=headers
    )
    assert bad_save.status_code == 400 and "lone surrogate (U+D800)" in bad_save.json()["message"]
    assert client.get("/v2/functions/w").json() == HELLO
    for query in ("", "?async=true"):
        bad_run = client.post(
            f"/v2/functions/w/run/hello{query}", content=rb'{"parameters": {"name": "\udc00"}}', headers=headers
        )
        assert bad_run.status_code == 400 and bad_run.json()["error"] == "InvalidRequest"
    pair = client.post(
        "/v2/functions/w/run/hello", content=rb'{"parameters": {"name": "\ud83d\ude00"}}', headers=headers
    )
    assert pair.status_code == 200 and pair.json()["result"].endswith("\U0001f600")
