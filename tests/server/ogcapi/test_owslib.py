"""A standard client, OWSLib, drives the OGC API - Processes face of a real server."""

import time

import httpx2 as httpx
import pytest
from owslib.ogcapi.processes import Processes

from tests.processes import running_server

pytestmark = pytest.mark.slow  # a real server, worker processes or a subprocess

WORKSPACE = {
    "functions": {
        "hello": {
            "description": "Greets someone",
            "code": "console.log('hi ' + name); return 'Hello ' + name;",
            "parameters": {"name": {"type": "string", "default": "world", "description": "who to greet"}},
        },
        "area": {
            "language": "python",
            "code": "return {'area': width * height, 'unit': unit}",
            "parameters": {
                "width": {"type": "number"},
                "height": {"type": "number"},
                "unit": {"type": "string", "default": "m2"},
            },
        },
        "slow": {
            "code": "await new Promise(r => setTimeout(r, 300)); return n * 2;",
            "parameters": {"n": {"type": "integer"}},
        },
    }
}


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    with running_server(tmp_path_factory.mktemp("owslib") / "functions", FUNCTIONS_WORKERS="1") as server:
        assert httpx.post(f"{server.url}/v2/functions/geo", json=WORKSPACE).status_code == 200
        yield server.url


@pytest.fixture
def processes(url):
    return Processes(f"{url}/ogcapi")


def test_owslib_reads_the_landing_page_conformance_and_api_definition(processes):
    assert {"service-desc", "conformance", "processes"} <= {link["rel"] for link in processes.links}
    conformance = processes.conformance()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/core" in conformance
    assert "/ogcapi/processes" in processes.api()["paths"]


def test_owslib_lists_and_describes_processes(processes):
    assert [process["id"] for process in processes.processes()] == ["geo.area", "geo.hello", "geo.slow"]
    area = processes.process("geo.area")
    assert area["inputs"]["width"]["minOccurs"] == 1 and area["inputs"]["unit"]["minOccurs"] == 0
    assert area["inputs"]["unit"]["schema"] == {"type": "string", "default": "m2"}
    assert list(area["outputs"]) == ["result"]


def test_owslib_executes_synchronously(processes):
    assert processes.execute("geo.hello", inputs={"name": "OWSLib"}) == {"result": "Hello OWSLib"}
    answer = processes.execute("geo.area", inputs={"width": 3, "height": 4}, response="raw")
    assert answer == {"area": 12, "unit": "m2"}


def test_owslib_executes_asynchronously_and_follows_the_job_to_its_results(processes):
    info = processes.execute("geo.slow", inputs={"n": 21}, async_=True)
    assert info["status"] in ("accepted", "running")
    location = processes.response_headers["Location"]
    assert location.endswith(f"/ogcapi/jobs/{info['jobID']}")
    deadline = time.monotonic() + 10
    while info["status"] not in ("successful", "failed", "dismissed") and time.monotonic() < deadline:
        time.sleep(0.05)
        info = processes._request(path=f"jobs/{info['jobID']}")  # OWSLib has no job call: its generic request
    assert info["status"] == "successful", info
    results = next(link["href"] for link in info["links"] if link["rel"].endswith("/results"))
    assert processes._request(path=results.split("/ogcapi/", 1)[1]) == {"result": 42}
    jobs = processes._request(path="jobs?processID=geo.slow")["jobs"]
    assert info["jobID"] in [job["jobID"] for job in jobs]


def test_owslib_sees_a_failure_as_an_error(processes):
    with pytest.raises(RuntimeError, match="invalid-parameter"):
        processes.execute("geo.area", inputs={"width": "wide", "height": 1})
