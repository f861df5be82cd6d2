"""Payloads against the metrics every call updates: a tenant must not grow their series.

Runs and requests are counted by labels whose values are few (a language, an outcome that is
one of the error codes, a route template, a method, a status). A tenant that chooses its
errors' names, codes and messages, or a client that sends any path and method, must not add
a series per choice: each would stay in the server's memory and in every scrape for good.
"""

import itertools

import pytest
from prometheus_client.parser import text_string_to_metric_families

from fnbox.sandboxes import errors

pytestmark = pytest.mark.slow  # the hostile suite's real server

CODES = {cls.code for cls in vars(errors).values() if isinstance(cls, type) and issubclass(cls, errors.FnboxError)}
_runs = itertools.count()


def series(service, family: str) -> set[tuple[tuple[str, str], ...]]:
    text = service.client.get("/metrics").text
    found = set()
    for metric in text_string_to_metric_families(text):
        if metric.name == family:
            found |= {tuple(sorted(sample.labels.items())) for sample in metric.samples}
    return found


def run_many(service, language: str, code: str, times: int) -> None:
    workspace = f"labels{next(_runs)}"
    document = {"functions": {"f": {"language": language, "code": code}}}
    assert service.client.put(f"/v2/functions/{workspace}", json=document).status_code == 200
    for index in range(times):
        service.client.post(f"/v2/functions/{workspace}/run/f", json={"parameters": {"i": index}})


def test_errors_a_tenant_names_itself_add_no_run_series(service):
    run_many(
        service,
        "javascript",
        "const e = new Error('m' + params.i); e.name = 'N' + params.i; e.code = 'C' + params.i; throw e;",
        30,
    )
    run_many(service, "javascript", "throw {code: 'C' + params.i, name: 'N' + params.i, message: 'x'};", 30)
    run_many(
        service,
        "python",
        "class E(Exception):\n    code = 'C' + str(params['i'])\nraise E('m' + str(params['i']))",
        30,
    )
    outcomes = {dict(labels)["outcome"] for labels in series(service, "fnbox_runs")}
    assert outcomes <= CODES | {"ok"}, outcomes - CODES
    languages = {dict(labels)["language"] for labels in series(service, "fnbox_run_duration_seconds")}
    assert languages <= {"javascript", "python"}


def test_any_path_and_method_add_no_request_series_of_their_own(service):
    before = series(service, "fnbox_http_requests")
    for index in range(40):
        service.client.request("POST", f"/v2/functions/ws{index}/run/f{index}", json={})
        service.client.request("GET", f"/nowhere/{index}/x")
        service.client.request("PATCH", f"/v2/functions/ws{index}")
        service.client.request("PROPFIND", f"/v2/functions/ws{index}/run/f{index}")
    after = series(service, "fnbox_http_requests")
    routes = {dict(labels)["route"] for labels in after}
    assert not any("ws3" in route or "nowhere/3" in route for route in routes), routes
    assert len(after - before) <= 12, sorted(after - before)  # a few templates, methods and statuses, not 160
