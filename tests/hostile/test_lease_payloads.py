"""Tenants against the wait of saves for every instance: none can make a save hang, or a run go stale.

A save is answered once every instance holding a lease has seen it, or once a lease has
passed: an instance a tenant freezes stops renewing and is waited for no longer.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx2 as httpx
import pytest

from tests.server.test_instances import hello, instances, run

pytestmark = pytest.mark.slow  # real servers and a real PostgreSQL

#: Python stuck in C code: with sandboxes in the server's process, its event loop stops for good.
FREEZE = {"functions": {"f": {"language": "python", "code": "return 1.5 in range(10**18)"}}}


def frozen(client: httpx.Client, url: str) -> bool:
    try:
        client.get(f"{url}/sys/healthcheck", timeout=0.5)
    except httpx.TimeoutException:
        return True
    return False


def test_a_tenant_that_freezes_an_instance_holds_saves_on_the_others_up_for_one_lease_at_most(tmp_path, database_url):
    with (
        instances(tmp_path, database_url, FNBOX_DATABASE_LEASE_MS="1000") as (a, b, c),
        httpx.Client(timeout=30) as client,
    ):
        assert client.put(f"{a.url}/v2/functions/freeze", json=FREEZE).status_code == 200
        assert client.put(f"{a.url}/v2/functions/w", json=hello("before")).status_code == 200

        def attack() -> None:
            try:
                client.post(f"{b.url}/v2/functions/freeze/run/f", json={}, timeout=5)
            except httpx.TransportError:
                pass  # it never answers: timed out, or cut when its instance is killed

        attacker = threading.Thread(target=attack)
        attacker.start()
        try:
            for _ in range(100):
                if frozen(client, b.url):
                    break
            else:
                raise AssertionError("the instance never froze")
            for index in range(3):
                assert client.put(f"{a.url}/v2/functions/w", json=hello(f"v{index}")).status_code == 200
                assert run(client, c).json()["result"] == f"v{index} B"
            assert client.delete(f"{c.url}/v2/functions/w").status_code == 204
            assert run(client, a).status_code == 404
        finally:
            b.process.kill()
            attacker.join()


def test_a_flood_of_saves_and_deletes_through_every_instance_leaves_no_run_stale(tmp_path, database_url):
    with instances(tmp_path, database_url) as servers, httpx.Client(timeout=30) as client:

        def save(index: int) -> int:
            writer = servers[index % 3]
            name = f"w{index % 5}"
            if index % 7 == 6:
                return client.delete(f"{writer.url}/v2/functions/{name}").status_code
            return client.put(f"{writer.url}/v2/functions/{name}", json=hello(f"v{index}")).status_code

        with ThreadPoolExecutor(12) as threads:
            assert set(threads.map(save, range(120))) <= {200, 204, 404}
        for index in range(5):
            name = f"w{index}"
            answers = {
                (answer.status_code, answer.json().get("result")) for answer in (run(client, s, name) for s in servers)
            }
            assert len(answers) == 1, answers  # every instance runs the last answered change
