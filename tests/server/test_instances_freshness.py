"""Three real instances on one database: a run never answers with a version older than the last answered save.

Runs need no query of their own while their instance holds its lease; these tests take
away what a lease rests on (the notifications, the process's turn on the CPU, the process
itself) and check that saves still answer and runs still see them.
"""

from __future__ import annotations

import itertools
import os
import signal

import httpx2 as httpx
import psycopg
import pytest

from tests.server.test_instances import hello, instances, run

pytestmark = pytest.mark.slow  # real servers and a real PostgreSQL


def cut_listener(database_url: str, pid: int) -> int:
    """End an instance's LISTEN connection, as a proxy or a restart would: its notifications are lost."""
    with psycopg.connect(database_url, autocommit=True) as connection:
        rows = connection.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            (f"fnbox-listener-{pid}",),
        ).fetchall()
    return len(rows)


def leases(database_url: str) -> int:
    with psycopg.connect(database_url) as connection:
        row = connection.execute("SELECT count(*) FROM fnbox_instances WHERE lease_until > now()").fetchone()
    assert row is not None
    return int(row[0])


def test_a_save_on_one_instance_is_what_the_next_runs_on_the_two_others_run(tmp_path, database_url):
    with instances(tmp_path, database_url) as servers, httpx.Client(timeout=30) as client:
        assert leases(database_url) == 3
        writers = itertools.cycle(servers)
        for index in range(30):
            writer = next(writers)
            assert client.put(f"{writer.url}/v2/functions/w", json=hello(f"v{index}")).status_code == 200
            for reader in servers:
                assert run(client, reader).json()["result"] == f"v{index} B", (index, reader.url)
        for server in servers:
            scrape = client.get(f"{server.url}/metrics").text
            assert "fnbox_database_lease_held 1.0" in scrape  # runs there need no query of their own
            assert 'fnbox_change_waits_total{outcome="bound"}' not in scrape


def test_lost_notifications_only_delay_saves(tmp_path, database_url):
    with instances(tmp_path, database_url) as (a, b, c), httpx.Client(timeout=30) as client:
        assert client.put(f"{a.url}/v2/functions/w", json=hello("first")).status_code == 200
        for index in range(8):
            cut_listener(database_url, b.process.pid)  # b hears of no change until it listens again
            assert client.put(f"{a.url}/v2/functions/w", json=hello(f"v{index}")).status_code == 200
            assert run(client, b).json()["result"] == f"v{index} B"
            assert run(client, c).json()["result"] == f"v{index} B"
        assert "Traceback" not in b.log()


def test_an_instance_paused_past_its_lease_asks_the_database_before_its_next_run(tmp_path, database_url):
    with (
        instances(tmp_path, database_url, FNBOX_DATABASE_LEASE_MS="1000") as (a, b, c),
        httpx.Client(timeout=30) as client,
    ):
        assert client.put(f"{a.url}/v2/functions/w", json=hello("before")).status_code == 200
        assert run(client, c).json()["result"] == "before B"
        os.kill(c.process.pid, signal.SIGSTOP)  # it cannot acknowledge anything
        try:
            assert client.put(f"{a.url}/v2/functions/w", json=hello("while paused")).status_code == 200
            assert run(client, b).json()["result"] == "while paused B"
        finally:
            os.kill(c.process.pid, signal.SIGCONT)
        assert run(client, c).json()["result"] == "while paused B"  # its lease ran out while it slept


def test_saves_go_on_when_an_instance_is_killed_and_skip_it_once_its_lease_ran_out(tmp_path, database_url):
    with (
        instances(tmp_path, database_url, FNBOX_DATABASE_LEASE_MS="1000") as (a, b, c),
        httpx.Client(timeout=30) as client,
    ):
        assert client.put(f"{a.url}/v2/functions/w", json=hello("before")).status_code == 200
        c.process.kill()
        c.process.wait()
        for index in range(3):  # the first waits for c's lease to run out, the others not at all
            assert client.put(f"{a.url}/v2/functions/w", json=hello(f"v{index}")).status_code == 200
            assert run(client, b).json()["result"] == f"v{index} B"
        assert leases(database_url) == 2


def test_an_instance_stopped_cleanly_leaves_at_once(tmp_path, database_url):
    with instances(tmp_path, database_url, count=2) as (a, b):
        assert leases(database_url) == 2
        b.process.send_signal(signal.SIGTERM)
        b.process.wait(timeout=30)
        with psycopg.connect(database_url) as connection:
            assert connection.execute("SELECT count(*) FROM fnbox_instances").fetchone() == (1,)
