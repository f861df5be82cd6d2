"""OGC API - Processes under /ogcapi: processes, execution, jobs, problems, HTML."""

import time

import pytest

BASE = "http://testserver/ogcapi"
OGC = "http://www.opengis.net/def/exceptions/ogcapi-processes-1/1.0/"
ASYNC = {"Prefer": "respond-async"}

WORKSPACE = {
    "functions": {
        "hello": {
            "description": "Greets someone",
            "code": "console.log('hi ' + name); return 'Hello ' + name;",
            "parameters": {"name": {"type": "string", "default": "world", "description": "who to greet"}},
        },
        "add": {
            "language": "python",
            "code": "return a + b",
            "parameters": {"a": {"type": "number", "minimum": 0}, "b": {"type": "number", "default": 1}},
        },
        "shape": {"code": "return {keys: Object.keys(o)};", "parameters": {"o": {"type": "object"}}},
        "fail": {"code": "console.warn('about to throw'); throw new Error('boom');"},
        "nap": {
            "code": "await new Promise(r => setTimeout(r, ms)); return ms;",
            "parameters": {"ms": {"type": "integer", "default": 600}},
        },
    }
}


@pytest.fixture
def client(make_client):
    client = make_client()
    assert client.post("/v2/functions/w", json=WORKSPACE).status_code == 200
    return client


def rels(document):
    return {link["rel"]: link["href"] for link in document["links"]}


def execute(client, process, inputs=None, headers=None, **body):
    return client.post(f"/ogcapi/processes/{process}/execution", json={"inputs": inputs or {}, **body}, headers=headers)


def start(client, process, inputs=None):
    answer = execute(client, process, inputs, headers=ASYNC)
    assert answer.status_code == 201, answer.text
    return answer.json()["jobID"]


def wait(client, job_id, until=("successful", "failed", "dismissed"), timeout=10):
    deadline = time.monotonic() + timeout
    while True:
        info = client.get(f"/ogcapi/jobs/{job_id}").json()
        if info["status"] in until or time.monotonic() > deadline:
            return info
        time.sleep(0.02)


def assert_problem(answer, status, kind):
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert problem["type"] == kind and problem["status"] == status and problem["title"] and problem["detail"]
    return problem


# ---- 1. landing page, conformance, processes ----------------------------------------------


def test_the_landing_page_links_the_api_definition_conformance_processes_and_jobs(client):
    for path in ("/ogcapi", "/ogcapi/"):
        landing = client.get(path).json()
        links = rels(landing)
        assert links["self"].startswith(f"{BASE}/")
        assert links["service-desc"] == "http://testserver/openapi.json"
        assert (
            links["conformance"] == links["http://www.opengis.net/def/rel/ogc/1.0/conformance"] == f"{BASE}/conformance"
        )
        assert links["processes"] == f"{BASE}/processes"
        assert links["http://www.opengis.net/def/rel/ogc/1.0/job-list"] == f"{BASE}/jobs"
        assert all(link["type"] for link in landing["links"])
    service_desc = next(link for link in landing["links"] if link["rel"] == "service-desc")
    assert service_desc["type"] == "application/vnd.oai.openapi+json;version=3.0"
    assert "/ogcapi/processes/{processID}/execution" in client.get("/openapi.json").json()["paths"]


def test_links_follow_the_base_url_of_the_request(client):
    links = rels(client.get("/ogcapi/", headers={"Host": "fnbox.example:8080"}).json())
    assert links["processes"] == "http://fnbox.example:8080/ogcapi/processes"


def test_conformance_lists_the_classes_implemented(client):
    classes = client.get("/ogcapi/conformance").json()["conformsTo"]
    prefix = "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/"
    names = ("core", "json", "oas30", "ogc-process-description", "job-list", "dismiss", "html")
    assert sorted(classes) == sorted(prefix + name for name in names)


def test_every_function_is_a_process_named_workspace_dot_function(client):
    version = client.get("/v2/functions/w").headers["ETag"].strip('"')
    listing = client.get("/ogcapi/processes").json()
    ids = [summary["id"] for summary in listing["processes"]]
    assert ids == ["w.add", "w.fail", "w.hello", "w.nap", "w.shape"]
    hello = listing["processes"][2]
    assert (hello["title"], hello["description"], hello["version"]) == ("hello", "Greets someone", version)
    assert hello["jobControlOptions"] == ["sync-execute", "async-execute", "dismiss"]
    assert hello["outputTransmission"] == ["value"]
    assert rels(hello)["self"] == f"{BASE}/processes/w.hello"
    assert "self" in rels(listing) and "next" not in rels(listing)


def test_processes_come_in_pages_of_limit_with_a_next_link(client):
    client.post("/v2/functions/other", json={"functions": {"one": {"code": "return 1;"}}})
    seen, url = [], "/ogcapi/processes?limit=2"
    while url:
        page = client.get(url).json()
        assert len(page["processes"]) <= 2
        seen += [summary["id"] for summary in page["processes"]]
        url = rels(page).get("next")
    assert seen == ["other.one", "w.add", "w.fail", "w.hello", "w.nap", "w.shape"]
    assert_problem(client.get("/ogcapi/processes?limit=0"), 400, OGC + "invalid-parameter")
    assert_problem(client.get("/ogcapi/processes?after=nodot"), 400, OGC + "invalid-parameter")


def test_a_process_describes_its_inputs_from_the_declared_parameters(client):
    process = client.get("/ogcapi/processes/w.hello").json()
    assert process["id"] == "w.hello" and process["description"] == "Greets someone"
    assert process["inputs"] == {
        "name": {
            "title": "name",
            "description": "who to greet",
            "schema": {"type": "string", "default": "world"},
            "minOccurs": 0,
            "maxOccurs": 1,
        }
    }
    assert list(process["outputs"]) == ["result"] and "schema" in process["outputs"]["result"]
    assert rels(process)["http://www.opengis.net/def/rel/ogc/1.0/execute"] == f"{BASE}/processes/w.hello/execution"
    add = client.get("/ogcapi/processes/w.add").json()["inputs"]
    assert add["a"]["minOccurs"] == 1 and add["a"]["schema"] == {"type": "number", "minimum": 0}
    assert add["b"]["minOccurs"] == 0 and add["b"]["schema"]["default"] == 1


@pytest.mark.parametrize("process", ["w.missing", "nows.hello", "nodot", "a.b.c", "bad name.x"])
def test_an_unknown_process_is_a_no_such_process_problem(client, process):
    assert_problem(client.get(f"/ogcapi/processes/{process}"), 404, OGC + "no-such-process")
    assert_problem(execute(client, process), 404, OGC + "no-such-process")


# ---- 2. execution -------------------------------------------------------------------------


def test_execution_is_synchronous_and_answers_a_document_by_default(client):
    answer = execute(client, "w.hello", {"name": "OGC"})
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/json"
    assert answer.json() == {"result": "Hello OGC"}
    assert execute(client, "w.add", {"a": 2}, response="document").json() == {"result": 3}


def test_a_raw_response_is_the_bare_value(client):
    answer = execute(client, "w.hello", {"name": "raw"}, response="raw")
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/json"
    assert answer.json() == "Hello raw"
    assert execute(client, "w.add", {"a": 2, "b": 5}, response="raw").text == "7"


def test_qualified_values_outputs_and_unknown_members_are_understood(client):
    answer = execute(
        client,
        "w.add",
        {"a": {"value": 2, "mediaType": "application/json"}},
        outputs={"result": {"transmissionMode": "value"}},
        subscriber={},
    )
    assert answer.json() == {"result": 3}
    assert execute(client, "w.shape", {"o": {"value": 1}}).json() == {
        "result": {"keys": ["value"]}
    }  # an object is its value
    unknown_prefer = {"Prefer": "handling=strict, wait=5"}
    assert execute(client, "w.hello", headers=unknown_prefer).status_code == 200
    assert execute(client, "w.hello", headers={"Prefer": "respond-sync"}).status_code == 200


def test_bad_execute_requests_are_invalid_parameter_problems(client):
    invalid = OGC + "invalid-parameter"
    problem = assert_problem(execute(client, "w.add", {"a": "two"}), 400, invalid)
    assert problem["code"] == "InvalidParameters" and problem["details"]["parameter"] == "a"
    assert "'a' is required" in assert_problem(execute(client, "w.add", {}), 400, invalid)["detail"]
    assert_problem(execute(client, "w.hello", response="both"), 400, invalid)
    assert_problem(execute(client, "w.hello", outputs={"other": {}}), 400, invalid)
    assert_problem(execute(client, "w.hello", outputs={"result": {"transmissionMode": "reference"}}), 400, invalid)
    assert_problem(client.post("/ogcapi/processes/w.hello/execution", json=[1]), 400, invalid)
    assert_problem(client.post("/ogcapi/processes/w.hello/execution", content=b"{nope"), 400, invalid)


def test_a_failed_synchronous_execution_is_a_problem_with_its_error_and_job(client):
    answer = execute(client, "w.fail")
    problem = assert_problem(answer, 500, "about:blank")
    assert problem["code"] == "FunctionError" and "boom" in problem["detail"]
    assert problem["logs"][0]["message"] == "about to throw"
    job = client.get(f"/ogcapi/jobs/{problem['jobID']}").json()
    assert job["status"] == "failed" and "boom" in job["message"]
    assert f"/jobs/{problem['jobID']}" in answer.headers["Link"]


def test_asynchronous_execution_creates_a_job_to_follow(client):
    answer = execute(client, "w.hello", {"name": "later"}, headers={"Prefer": "wait=1, respond-async"})
    assert answer.status_code == 201
    info = answer.json()
    assert answer.headers["Location"] == f"{BASE}/jobs/{info['jobID']}"
    assert answer.headers["Preference-Applied"] == "respond-async"
    assert info["status"] in ("accepted", "running") and info["type"] == "process" and info["processID"] == "w.hello"
    assert wait(client, info["jobID"])["status"] == "successful"
    assert client.get(f"{answer.headers['Location']}/results").json() == {"result": "Hello later"}


# ---- 3. jobs ------------------------------------------------------------------------------


def test_a_job_has_a_status_info_with_times_progress_and_links(client):
    job_id = start(client, "w.hello", {"name": "status"})
    info = wait(client, job_id)
    assert info["jobID"] == job_id and info["processID"] == "w.hello" and info["type"] == "process"
    assert info["status"] == "successful" and info["progress"] == 100 and info["message"].startswith("successful")
    assert info["created"] <= info["started"] <= info["finished"] <= info["updated"]
    links = rels(info)
    assert links["http://www.opengis.net/def/rel/ogc/1.0/results"] == f"{BASE}/jobs/{job_id}/results"
    assert links["logs"] == f"{BASE}/jobs/{job_id}/logs" and links["describedby"] == f"{BASE}/jobs/{job_id}/metadata"


def test_jobs_include_synchronous_runs_and_filter_by_process_and_status(client):
    execute(client, "w.hello", {"name": "one"})
    execute(client, "w.add", {"a": 1})
    execute(client, "w.fail")
    native = client.post("/v2/functions/w/run/hello", json={}).headers["X-Execution-Id"]
    jobs = client.get("/ogcapi/jobs").json()["jobs"]
    assert [job["processID"] for job in jobs] == ["w.hello", "w.fail", "w.add", "w.hello"]
    assert jobs[0]["jobID"] == native
    hello = client.get("/ogcapi/jobs", params={"processID": "w.hello"}).json()["jobs"]
    assert [job["processID"] for job in hello] == ["w.hello", "w.hello"]
    failed = client.get("/ogcapi/jobs", params={"status": "failed"}).json()["jobs"]
    assert [job["processID"] for job in failed] == ["w.fail"]
    assert client.get("/ogcapi/jobs", params={"processID": "nodot"}).json()["jobs"] == []
    assert client.get("/ogcapi/jobs", params={"type": "openeo"}).json()["jobs"] == []
    assert_problem(client.get("/ogcapi/jobs", params={"status": "finished"}), 400, OGC + "invalid-parameter")


def test_jobs_come_in_pages_of_limit_with_self_and_next_links(client):
    for n in range(5):
        execute(client, "w.add", {"a": n})
    seen, url = [], "/ogcapi/jobs?limit=2&processID=w.add"
    while url:
        page = client.get(url).json()
        assert rels(page)["self"].startswith(f"{BASE}/jobs?")
        seen += [job["jobID"] for job in page["jobs"]]
        url = rels(page).get("next")
    assert len(seen) == len(set(seen)) == 5


def test_results_are_not_ready_while_a_job_waits_or_runs(client):
    job_id = start(client, "w.nap", {"ms": 800})
    problem = assert_problem(client.get(f"/ogcapi/jobs/{job_id}/results"), 404, OGC + "result-not-ready")
    assert job_id in problem["detail"]
    info = client.get(f"/ogcapi/jobs/{job_id}").json()
    assert info["progress"] in (0, 50) and "results" not in " ".join(rels(info))
    assert wait(client, job_id)["status"] == "successful"
    assert client.get(f"/ogcapi/jobs/{job_id}/results").json() == {"result": 800}


def test_the_results_of_a_failed_job_are_its_error(client):
    job_id = start(client, "w.fail")
    assert wait(client, job_id)["status"] == "failed"
    problem = assert_problem(client.get(f"/ogcapi/jobs/{job_id}/results"), 500, "about:blank")
    assert problem["code"] == "FunctionError" and "boom" in problem["detail"] and problem["jobID"] == job_id


def test_dismissing_a_running_job_cancels_it(client):
    job_id = start(client, "w.nap", {"ms": 10000})
    wait(client, job_id, until=("running",))
    began = time.monotonic()
    answer = client.delete(f"/ogcapi/jobs/{job_id}")
    assert answer.status_code == 200 and answer.json()["status"] == "dismissed"
    assert time.monotonic() - began < 2
    assert client.get(f"/ogcapi/jobs/{job_id}").json()["status"] == "dismissed"
    again = client.delete(f"/ogcapi/jobs/{job_id}")
    assert again.status_code == 200 and again.json()["status"] == "dismissed"
    assert assert_problem(client.get(f"/ogcapi/jobs/{job_id}/results"), 410, "about:blank")["jobID"] == job_id


def test_dismissing_an_ended_job_is_a_conflict_and_keeps_it(client):
    job_id = start(client, "w.hello")
    wait(client, job_id)
    problem = assert_problem(client.delete(f"/ogcapi/jobs/{job_id}"), 409, "about:blank")
    assert problem["code"] == "Conflict"
    assert client.get(f"/ogcapi/jobs/{job_id}").json()["status"] == "successful"


def test_a_job_has_logs_and_metadata(client):
    version = client.get("/v2/functions/w").headers["ETag"].strip('"')
    job_id = start(client, "w.hello", {"name": "meta"})
    wait(client, job_id)
    logs = client.get(f"/ogcapi/jobs/{job_id}/logs").json()
    assert logs["jobID"] == job_id and [entry["message"] for entry in logs["logs"]] == ["hi meta"]
    meta = client.get(f"/ogcapi/jobs/{job_id}/metadata").json()
    assert (meta["workspace"], meta["function"], meta["language"], meta["version"]) == (
        "w",
        "hello",
        "javascript",
        version,
    )
    assert meta["parameters"] == {"name": "meta"} and meta["duration"] >= 0
    assert meta["created"] <= meta["started"] <= meta["finished"]


@pytest.mark.parametrize(
    "method, tail", [("GET", ""), ("GET", "/results"), ("GET", "/logs"), ("GET", "/metadata"), ("DELETE", "")]
)
def test_an_unknown_job_is_a_no_such_job_problem(client, method, tail):
    assert_problem(client.request(method, f"/ogcapi/jobs/missing{tail}"), 404, OGC + "no-such-job")


# ---- 4. problems stay under /ogcapi -------------------------------------------------------


def test_unknown_paths_and_methods_under_ogcapi_are_problems_and_the_native_api_is_unchanged(client):
    assert assert_problem(client.get("/ogcapi/nothing"), 404, "about:blank")["instance"] == "/ogcapi/nothing"
    assert_problem(client.put("/ogcapi/jobs"), 405, "about:blank")
    native = client.get("/v2/executions/missing")
    assert native.status_code == 404 and native.json()["error"] == "NotFound"
    assert native.headers["content-type"] == "application/json"


# ---- 5. HTML ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/ogcapi/", "/ogcapi/conformance", "/ogcapi/processes", "/ogcapi/processes/w.hello", "/ogcapi/jobs", "JOB"]
)
def test_browsers_get_linked_html_pages(client, path):
    if path == "JOB":
        path = f"/ogcapi/jobs/{start(client, 'w.hello')}"
    browser = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
    page = client.get(path, headers=browser)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src" not in page.headers["content-security-policy"]  # default-src 'none': no script at all
    assert f'href="{BASE}/processes?f=html"' in page.text
    assert client.get(path, params={"f": "html"}).headers["content-type"].startswith("text/html")
    assert client.get(path, params={"f": "json"}, headers=browser).headers["content-type"] == "application/json"
    assert client.get(path).headers["content-type"] == "application/json"  # curl, OWSLib: */*


def test_html_pages_show_what_matters_and_escape_tenant_data(client):
    hostile = {
        "functions": {
            "x": {
                "description": "<script>alert(1)</script>",
                "code": "return 1;",
                "parameters": {"p": {"type": "string", "default": '"><img src=x onerror=alert(1)>'}},
            }
        }
    }
    client.post("/v2/functions/evil", json=hostile)
    for path in ("/ogcapi/processes", "/ogcapi/processes/evil.x"):
        page = client.get(path, params={"f": "html"}).text
        assert "<script>" not in page and "<img" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    process = client.get("/ogcapi/processes/w.hello?f=html").text
    assert "who to greet" in process and f"{BASE}/processes/w.hello/execution" in process
    job_id = start(client, "w.hello")
    wait(client, job_id)
    jobs = client.get("/ogcapi/jobs?f=html").text
    assert f'href="{BASE}/jobs/{job_id}?f=html"' in jobs and "successful" in jobs
    job = client.get(f"/ogcapi/jobs/{job_id}?f=html").text
    assert f"{BASE}/jobs/{job_id}/results" in job and f"{BASE}/jobs/{job_id}/logs" in job


def test_an_unknown_format_is_an_invalid_parameter_problem(client):
    assert_problem(client.get("/ogcapi/processes?f=xml"), 400, OGC + "invalid-parameter")
