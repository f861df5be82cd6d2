"""Executions over HTTP: records, asynchronous runs, wait, cancel, logs, bounds."""

import time

import pytest

ASYNC = {"Prefer": "respond-async"}

WORKSPACE = {
    "functions": {
        "hello": {
            "code": "console.log('hi ' + name); return 'Hello ' + name;",
            "parameters": {"name": {"type": "string", "default": "world"}},
        },
        "fail": {"code": "console.warn('about to throw'); throw new Error('boom');"},
        "nap": {
            "code": "console.log('a'); await new Promise(r => setTimeout(r, ms)); console.log('b'); return ms;",
            "parameters": {"ms": {"type": "integer", "default": 800}},
        },
        "spin": {"code": "console.log('spinning'); while (true) {}", "timeout": 15000},
        "mark": {"code": "cache.marks = (cache.marks || 0) + 1; return cache.marks;"},
        "marks": {"code": "return cache.marks || 0;"},
        "pyspin": {"language": "python", "code": "print('spinning')\nwhile True:\n    pass", "timeout": 15000},
        "pyhello": {
            "language": "python",
            "code": "print('hi')\nreturn 'py ' + name",
            "parameters": {"name": {"type": "string", "default": "x"}},
        },
    }
}


@pytest.fixture
def client(make_client):
    client = make_client()
    assert client.post("/v2/functions/w", json=WORKSPACE).status_code == 200
    return client


def start(client, function, body=None, **headers):
    answer = client.post(f"/v2/functions/w/run/{function}", json=body or {}, headers={**ASYNC, **headers})
    assert answer.status_code == 202, answer.text
    return answer


def wait(client, execution_id, timeout=10):
    answer = client.get(f"/v2/executions/{execution_id}/wait", params={"timeout": timeout})
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_a_synchronous_run_is_recorded_under_the_id_in_its_header(client):
    answer = client.post("/v2/functions/w/run/hello", json={"parameters": {"name": "you"}})
    assert answer.json()["result"] == "Hello you"
    record = client.get(f"/v2/executions/{answer.headers['X-Execution-Id']}").json()
    assert record["status"] == "successful"
    assert (record["workspace"], record["function"], record["result"]) == ("w", "hello", "Hello you")
    assert record["parameters"] == {"name": "you"}
    assert record["logs"][0]["message"] == "hi you"
    assert record["version"] == client.get("/v2/functions/w").headers["ETag"].strip('"')
    assert record["duration"] == answer.json()["duration"]
    assert record["created"] <= record["started"] <= record["finished"]


def test_a_failed_synchronous_run_is_recorded_with_its_error_and_logs(client):
    answer = client.post("/v2/functions/w/run/fail", json={})
    assert answer.status_code == 500
    execution_id = answer.headers["X-Execution-Id"]
    assert answer.json()["details"]["execution"] == execution_id
    record = client.get(f"/v2/executions/{execution_id}").json()
    assert record["status"] == "failed"
    assert record["error"]["error"] == "FunctionError" and "boom" in record["error"]["message"]
    assert record["logs"][0]["message"] == "about to throw"


def test_a_request_refused_before_running_gets_no_record(client):
    answer = client.post("/v2/functions/w/run/missing", json={})
    assert answer.status_code == 404 and "X-Execution-Id" not in answer.headers


def test_recording_synchronous_runs_can_be_turned_off(make_client):
    client = make_client(EXECUTIONS_RECORD_RUNS="no")
    client.post("/v2/functions/w", json=WORKSPACE)
    answer = client.post("/v2/functions/w/run/hello", json={})
    assert answer.status_code == 200 and "X-Execution-Id" not in answer.headers
    assert client.get("/v2/executions").json()["executions"] == []
    accepted = start(client, "hello")  # asynchronous runs are still recorded: they are read back by id
    assert wait(client, accepted.json()["id"])["status"] == "successful"


@pytest.mark.parametrize(
    "how", [{"headers": ASYNC}, {"params": {"async": "true"}}, {"headers": {"Prefer": "wait=5, respond-async"}}]
)
def test_an_asynchronous_run_answers_202_then_its_execution_ends(client, how):
    answer = client.post("/v2/functions/w/run/hello", json={"parameters": {"name": "later"}}, **how)
    assert answer.status_code == 202
    body = answer.json()
    assert body["status"] == "accepted"
    assert answer.headers["Location"] == f"/v2/executions/{body['id']}"
    assert answer.headers["Preference-Applied"] == "respond-async"
    ended = wait(client, body["id"])
    assert (ended["status"], ended["result"]) == ("successful", "Hello later")


def test_unknown_preferences_are_ignored(client):
    answer = client.post("/v2/functions/w/run/hello", json={}, headers={"Prefer": "handling=lenient"})
    assert answer.status_code == 200 and answer.json()["result"] == "Hello world"


def test_a_client_given_id_is_used_once(client):
    answer = start(client, "hello", {"id": "order-42.retry_1"})
    assert answer.json()["id"] == "order-42.retry_1"
    wait(client, "order-42.retry_1")
    again = client.post("/v2/functions/w/run/hello", json={"id": "order-42.retry_1"}, headers=ASYNC)
    assert again.status_code == 409 and again.json()["error"] == "Conflict"


@pytest.mark.parametrize("bad", ["../x", "", "a" * 65, 12, "a b"])
def test_a_bad_client_id_is_refused(client, bad):
    answer = client.post("/v2/functions/w/run/hello", json={"id": bad}, headers=ASYNC)
    assert answer.status_code == 400 and answer.json()["error"] == "InvalidRequest"


def test_an_id_on_a_synchronous_run_is_refused_with_what_to_do(client):
    answer = client.post("/v2/functions/w/run/hello", json={"id": "mine"})
    assert answer.status_code == 400 and "respond-async" in answer.json()["message"]


def test_an_asynchronous_run_with_bad_parameters_is_refused_at_once(client):
    answer = client.post("/v2/functions/w/run/nap", json={"parameters": {"ms": "slow"}}, headers=ASYNC)
    assert answer.status_code == 400 and answer.json()["error"] == "InvalidParameters"


def test_a_failed_asynchronous_run_keeps_its_error(client):
    ended = wait(client, start(client, "fail").json()["id"])
    assert ended["status"] == "failed" and ended["error"]["error"] == "FunctionError"


def test_wait_answers_the_current_state_at_its_timeout(client):
    execution_id = start(client, "nap", {"parameters": {"ms": 3000}}).json()["id"]
    began = time.monotonic()
    state = wait(client, execution_id, timeout=0.3)
    assert state["status"] in ("accepted", "running") and time.monotonic() - began < 2
    client.post(f"/v2/executions/{execution_id}/cancel")


def test_list_filters_and_pages_without_repeats(client):
    for _ in range(3):
        client.post("/v2/functions/w/run/hello", json={})
    client.post("/v2/functions/w/run/fail", json={})
    client.post("/v2/functions/w/run/pyhello", json={})
    everything = client.get("/v2/executions").json()["executions"]
    assert len(everything) == 5
    assert [e["created"] for e in everything] == sorted((e["created"] for e in everything), reverse=True)
    assert {e["function"] for e in client.get("/v2/executions", params={"function": "hello"}).json()["executions"]} == {
        "hello"
    }
    failed = client.get("/v2/executions", params={"status": "failed"}).json()["executions"]
    assert [e["function"] for e in failed] == ["fail"]
    assert client.get("/v2/executions", params={"workspace": "other"}).json()["executions"] == []
    seen, after = [], None
    while True:
        page = client.get("/v2/executions", params={"limit": 2, **({"after": after} if after else {})}).json()
        seen += [e["id"] for e in page["executions"]]
        after = page["next"]
        if after is None:
            break
    assert seen == [e["id"] for e in everything]


@pytest.mark.parametrize(
    "query", [{"status": "sleeping"}, {"limit": "0"}, {"limit": "many"}, {"after": "not-a-cursor"}]
)
def test_bad_list_queries_are_refused(client, query):
    assert client.get("/v2/executions", params=query).status_code == 400


def test_unknown_executions_are_not_found(client):
    for path in ("/v2/executions/nope", "/v2/executions/nope/wait", "/v2/executions/nope/logs"):
        assert client.get(path).status_code == 404
    assert client.post("/v2/executions/nope/cancel").status_code == 404


@pytest.mark.parametrize("function", ["spin", "pyspin"])
def test_cancel_stops_a_running_execution_within_a_second(client, function):
    execution_id = start(client, function).json()["id"]
    deadline = time.monotonic() + 5
    while client.get(f"/v2/executions/{execution_id}").json()["status"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    time.sleep(0.1)  # inside the loop by now
    began = time.monotonic()
    cancelled = client.post(f"/v2/executions/{execution_id}/cancel")
    assert time.monotonic() - began < 1.0
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "dismissed"
    assert client.get(f"/v2/executions/{execution_id}").json()["status"] == "dismissed"
    again = client.post(f"/v2/executions/{execution_id}/cancel")
    assert again.status_code == 409 and again.json()["error"] == "Conflict"
    assert client.post("/v2/functions/w/run/hello", json={}).json()["result"] == "Hello world"
    assert client.post("/v2/functions/w/run/pyhello", json={}).json()["result"] == "py x"


def test_cancelling_an_ended_execution_is_a_conflict(client):
    execution_id = client.post("/v2/functions/w/run/hello", json={}).headers["X-Execution-Id"]
    assert client.post(f"/v2/executions/{execution_id}/cancel").status_code == 409


def test_a_cancelled_execution_that_waited_for_its_turn_never_starts(make_client):
    client = make_client(EXECUTIONS_PER_WORKSPACE="1")
    client.post("/v2/functions/w", json=WORKSPACE)
    first = start(client, "nap", {"parameters": {"ms": 500}}).json()["id"]
    queued = start(client, "mark").json()["id"]
    assert client.get(f"/v2/executions/{queued}").json()["status"] == "accepted"
    assert client.post(f"/v2/executions/{queued}/cancel").json()["status"] == "dismissed"
    assert wait(client, first)["status"] == "successful"
    record = client.get(f"/v2/executions/{queued}").json()
    assert record["status"] == "dismissed" and record["started"] is None
    assert client.post("/v2/functions/w/run/marks", json={}).json()["result"] == 0


def test_the_queue_depth_bounds_waiting_executions(make_client):
    client = make_client(EXECUTIONS_QUEUE_SIZE="2", EXECUTIONS_PER_WORKSPACE="1")
    client.post("/v2/functions/w", json=WORKSPACE)
    ids = [start(client, "nap", {"parameters": {"ms": 2000}}).json()["id"] for _ in range(2)]
    refused = client.post("/v2/functions/w/run/hello", json={}, headers=ASYNC)
    assert refused.status_code == 503 and refused.json()["error"] == "Overloaded"
    assert client.post("/v2/functions/w/run/hello", json={}).status_code == 200  # synchronous runs go on
    for execution_id in ids:
        client.post(f"/v2/executions/{execution_id}/cancel")


def test_logs_as_json_with_tail_and_follow(client):
    execution_id = start(client, "nap", {"parameters": {"ms": 300}}).json()["id"]
    followed = client.get(f"/v2/executions/{execution_id}/logs", params={"follow": "true"}).json()
    assert followed["status"] == "successful"
    assert [entry["message"] for entry in followed["logs"]] == ["a", "b"]
    tail = client.get(f"/v2/executions/{execution_id}/logs", params={"tail": 1}).json()
    assert [entry["message"] for entry in tail["logs"]] == ["b"]


def test_logs_of_an_ended_execution_as_events(client):
    execution_id = client.post("/v2/functions/w/run/fail", json={}).headers["X-Execution-Id"]
    answer = client.get(f"/v2/executions/{execution_id}/logs", headers={"Accept": "text/event-stream"})
    assert answer.headers["content-type"].startswith("text/event-stream")
    assert answer.text.startswith('id: 0\nevent: log\ndata: {"level": "warn", "message": "about to throw"')
    assert 'event: end\ndata: {"id": "' + execution_id + '", "status": "failed"' in answer.text


def test_records_survive_a_restart(make_client, tmp_path):
    client = make_client()
    client.post("/v2/functions/w", json=WORKSPACE)
    execution_id = client.post("/v2/functions/w/run/hello", json={}).headers["X-Execution-Id"]
    client.__exit__(None, None, None)
    again = make_client()
    assert again.get(f"/v2/executions/{execution_id}").json()["result"] == "Hello world"
