"""What operators watch: /metrics, request ids and JSON log lines."""

import json
import logging

from prometheus_client.parser import text_string_to_metric_families

from fnbox import logs, metrics

ADMIN = "admin-token-0123456789abcdef"
DOC = {
    "functions": {
        "js": {"code": "return 1;"},
        "py": {"language": "python", "code": "return 2"},
        "boom": {"code": "throw new Error('x');"},
    }
}


def samples(text):
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(text, name, **labels):
    return samples(text).get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_count_runs_compiles_sandboxes_and_requests_by_template(client):
    before = client.get("/metrics").text
    client.put("/v2/functions/metrics-w", json=DOC)
    client.post("/v2/functions/metrics-w/run/js", json={})
    client.post("/v2/functions/metrics-w/run/py", json={})
    client.post("/v2/functions/metrics-w/run/boom", json={})
    after = client.get("/metrics")
    assert after.headers["content-type"].startswith("text/plain")
    text = after.text
    for labels, delta in [
        ({"language": "javascript", "outcome": "ok"}, 1),
        ({"language": "python", "outcome": "ok"}, 1),
        ({"language": "javascript", "outcome": "FunctionError"}, 1),
    ]:
        assert value(text, "fnbox_runs_total", **labels) - value(before, "fnbox_runs_total", **labels) == delta
    assert value(text, "fnbox_run_duration_seconds_count", language="python") >= 1
    assert value(text, "fnbox_compiles_total", language="javascript", outcome="ok") >= 1
    assert value(text, "fnbox_warm_sandboxes", language="javascript") >= 1
    assert ("fnbox_sandbox_queue_depth", (("language", "javascript"),)) in samples(text)
    route = "/v2/functions/{workspace}/run/{function}"
    assert value(text, "fnbox_http_requests_total", route=route, method="POST", status="200") >= 2
    assert "metrics-w" not in text  # no workspace names in labels by default


def test_per_workspace_series_only_when_asked(make_client):
    client = make_client(METRICS_PER_WORKSPACE="yes")
    client.put("/v2/functions/per-ws", json=DOC)
    client.post("/v2/functions/per-ws/run/js", json={})
    text = client.get("/metrics").text
    assert value(text, "fnbox_workspace_runs_total", workspace="per-ws", function="js", outcome="ok") == 1


def test_metrics_need_a_read_or_admin_token_when_access_control_is_on(make_client):
    client = make_client(FNBOX_ADMIN_TOKEN=ADMIN)
    assert client.get("/metrics").status_code == 401
    auth = {"Authorization": f"Bearer {ADMIN}"}
    run = client.post("/v2/tokens", json={"scopes": ["run"]}, headers=auth).json()["token"]
    read = client.post("/v2/tokens", json={"scopes": ["read"]}, headers=auth).json()["token"]
    assert client.get("/metrics", headers={"Authorization": f"Bearer {run}"}).status_code == 403
    assert client.get("/metrics", headers={"Authorization": f"Bearer {read}"}).status_code == 200
    assert client.get("/metrics", headers=auth).status_code == 200


def test_workers_samples_add_up_with_the_servers():
    worker = "\n".join(
        [
            "# TYPE fnbox_compiles_total counter",
            'fnbox_compiles_total{language="python",outcome="ok"} 3.0',
            "# TYPE fnbox_brand_new gauge",
            "fnbox_brand_new 2.0",
        ]
    )
    base = value(metrics.exposition().decode(), "fnbox_compiles_total", language="python", outcome="ok")
    merged = metrics.merged_exposition([worker, worker]).decode()
    assert value(merged, "fnbox_compiles_total", language="python", outcome="ok") == base + 6
    assert value(merged, "fnbox_brand_new") == 4


def test_restart_reasons_have_few_values():
    from fnbox.sandboxes.supervisor import NEIGHBOUR_OVERRAN, RECYCLED

    assert metrics.restart_reason("timeout: the call overran") == "timeout"
    assert metrics.restart_reason("memory: its RSS passed 600 MB") == "memory"
    assert metrics.restart_reason(NEIGHBOUR_OVERRAN) == "neighbour_overran"
    assert metrics.restart_reason(RECYCLED) == "recycled"
    assert metrics.restart_reason("broke the protocol: a broken frame") == "protocol"
    assert metrics.restart_reason("the worker exited with status -9") == "exited"
    assert metrics.restart_reason(None) == "exited"


def test_a_request_id_is_kept_or_made_and_answered(client):
    assert client.get("/sys/healthcheck", headers={"X-Request-Id": "req-42"}).headers["X-Request-Id"] == "req-42"
    made = client.get("/sys/healthcheck").headers["X-Request-Id"]
    assert len(made) == 32
    hostile = client.get("/sys/healthcheck", headers={"X-Request-Id": "a\tb" + "x" * 200}).headers["X-Request-Id"]
    assert hostile != "a\tb" + "x" * 200 and len(hostile) == 32


def test_json_lines_carry_the_request_and_its_workspace():
    record = logging.LogRecord("fnbox", logging.WARNING, __file__, 1, "ran %s", ("it",), None)
    scope = {"path_params": {"workspace": "w", "function": "f"}}
    token = logs.CONTEXT.set({"request_id": "r1", "scope": scope})
    try:
        line = json.loads(logs.JsonFormatter().format(record))
    finally:
        logs.CONTEXT.reset(token)
    assert line["message"] == "ran it" and line["level"] == "warning"
    assert line["request_id"] == "r1" and line["workspace"] == "w" and line["function"] == "f"
    assert line["time"].endswith("Z")
    scope = {"path_params": {"id": "e1"}}
    token = logs.CONTEXT.set({"request_id": "r2", "scope": scope})
    try:
        line = json.loads(logs.JsonFormatter().format(record))
    finally:
        logs.CONTEXT.reset(token)
    assert line["execution_id"] == "e1"
