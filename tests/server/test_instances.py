"""Several real `fnbox serve` instances on one PostgreSQL database, as behind a load balancer."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx2 as httpx
import pytest

from tests.processes import RunningServer, running_server

pytestmark = pytest.mark.slow  # real servers and a real PostgreSQL


def hello(greeting: str) -> dict:
    return {
        "functions": {"hello": {"code": f'return "{greeting} " + name;', "parameters": {"name": {"type": "string"}}}}
    }


@contextmanager
def instances(tmp_path: Path, database_url: str, count: int = 3, **environ: str) -> Iterator[list[RunningServer]]:
    """`count` servers started at once (their migrations race), each with a data directory of its own."""
    managers = [
        running_server(tmp_path / f"instance{index}", FNBOX_DATABASE_URL=database_url, FUNCTIONS_WORKERS="0", **environ)
        for index in range(count)
    ]
    with ThreadPoolExecutor(count) as threads:
        started = list(threads.map(lambda manager: manager.__enter__(), managers))
    try:
        yield started
    finally:
        for manager in managers:
            manager.__exit__(None, None, None)


def run(client: httpx.Client, server: RunningServer, workspace: str = "w") -> httpx.Response:
    return client.post(f"{server.url}/v2/functions/{workspace}/run/hello", json={"parameters": {"name": "B"}})


def test_a_save_on_one_instance_is_what_the_next_run_on_any_other_runs(tmp_path, database_url):
    with instances(tmp_path, database_url) as servers, httpx.Client(timeout=10) as client:
        a, b, c = servers
        assert client.put(f"{a.url}/v2/functions/w", json=hello("Hello")).status_code == 200
        assert run(client, b).json()["result"] == "Hello B"
        assert run(client, c).json()["result"] == "Hello B"
        pairs = itertools.permutations(servers, 2)
        for index, (writer, reader) in enumerate(itertools.islice(itertools.cycle(pairs), 30)):
            assert client.put(f"{writer.url}/v2/functions/w", json=hello(f"Bonjour{index}")).status_code == 200
            assert run(client, reader).json()["result"] == f"Bonjour{index} B"
            assert client.get(f"{reader.url}/v2/functions/w").json() == hello(f"Bonjour{index}")
        assert client.delete(f"{c.url}/v2/functions/w").status_code == 204
        assert run(client, a).status_code == 404
        assert client.get(f"{b.url}/v2/functions").json() == []


def test_of_two_saves_expecting_the_same_version_through_two_instances_one_wins(tmp_path, database_url):
    with instances(tmp_path, database_url, count=2) as (a, b), httpx.Client(timeout=10) as client:
        etag = client.put(f"{a.url}/v2/functions/w", json=hello("Hello")).headers["etag"]
        first = client.put(f"{a.url}/v2/functions/w", json=hello("Bonjour"), headers={"If-Match": etag})
        second = client.put(f"{b.url}/v2/functions/w", json=hello("Hola"), headers={"If-Match": etag})
        assert (first.status_code, second.status_code) == (200, 412)
        assert second.json()["details"]["version"] == first.headers["etag"].strip('"')
        assert run(client, b).json()["result"] == "Bonjour B"


def test_a_synchronous_run_s_record_is_read_through_any_instance(tmp_path, database_url):
    with instances(tmp_path, database_url, count=2) as (a, b), httpx.Client(timeout=10) as client:
        client.put(f"{a.url}/v2/functions/w", json=hello("Hello"))
        execution_id = run(client, a).headers["x-execution-id"]
        assert client.get(f"{a.url}/v2/executions/{execution_id}").json()["result"] == "Hello B"  # from memory
        deadline = time.monotonic() + 30  # written in batches, every 0.2 s
        while (answer := client.get(f"{b.url}/v2/executions/{execution_id}")).status_code == 404:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert answer.json()["status"] == "successful"
        listed = client.get(f"{b.url}/v2/executions", params={"workspace": "w"}).json()["executions"]
        assert [item["id"] for item in listed] == [execution_id]
