"""Runtimes sharing one PostgreSQL database: every run sees the last answered save, wherever it was made."""

import asyncio
import io
import zipfile

import psycopg
import pytest

from fnbox.sandboxes.errors import NotFound, PreconditionFailed
from fnbox.workspaces.runtime import Runtime, RuntimeOptions, make_pool
from tests.fakes import FakeFactory

pytestmark = pytest.mark.slow


def shared_runtime(path, database_url):
    options = RuntimeOptions(database_url=database_url)
    factory = FakeFactory()
    return Runtime(path, options=options, pool=make_pool(options, factories={"javascript": factory, "python": factory}))


def workspace(**functions):
    return {"functions": {name: {"code": code} for name, code in functions.items()}}


def instances(tmp_path, database_url, count=2):
    return [shared_runtime(tmp_path / f"instance{index}", database_url) for index in range(count)]


def test_a_save_through_one_instance_is_run_by_the_next_run_on_another(tmp_path, database_url):
    a, b = instances(tmp_path, database_url)

    async def scenario():
        async with a, b:
            await a.put_workspace("w", workspace(hello="Hello"))
            assert (await b.run("w", "hello")).result == "Hello"
            for index in range(20):  # no wait between the answered save and the run
                writer, reader = (a, b) if index % 2 else (b, a)
                await writer.put_workspace("w", workspace(hello=f"Bonjour {index}"))
                assert (await reader.run("w", "hello")).result == f"Bonjour {index}"
                assert reader.get_workspace("w").document == workspace(hello=f"Bonjour {index}")
            await a.delete_workspace("w")
            with pytest.raises(NotFound):
                await b.run("w", "hello")
            await b.refresh()
            assert b.list_workspaces() == []

    asyncio.run(scenario())


def test_an_instance_started_later_serves_every_stored_workspace(tmp_path, database_url):
    a, b = instances(tmp_path, database_url)

    async def scenario():
        async with a:
            await a.put_workspace("one", workspace(f="1"))
            await a.put_workspace("two", workspace(f="2"))
        async with b:
            assert b.list_workspaces() == ["one", "two"]
            assert (await b.run("two", "f")).result == "2"

    asyncio.run(scenario())


def test_a_save_expecting_an_older_version_is_refused(tmp_path, database_url):
    a, b = instances(tmp_path, database_url)

    async def scenario():
        async with a, b:
            read = await a.put_workspace("w", workspace(f="1"))
            await b.put_workspace("w", workspace(f="2"), expected=read.version)
            with pytest.raises(PreconditionFailed):
                await a.put_workspace("w", workspace(f="3"), expected=read.version)
            with pytest.raises(PreconditionFailed):
                await a.delete_workspace("w", expected=read.version)
            assert (await a.run("w", "f")).result == "2"

    asyncio.run(scenario())


def one_function_zip(name, code):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(f"{name}.js", code)
    return buffer.getvalue()


def test_archives_merged_through_several_instances_at_once_lose_no_function(tmp_path, database_url):
    runtimes = instances(tmp_path, database_url, count=3)

    async def scenario():
        for runtime in runtimes:
            await runtime.start()
        try:
            await asyncio.gather(
                *(
                    runtimes[index % 3].import_archive("w", one_function_zip(f"f{index}", f"code {index}"))
                    for index in range(12)
                )
            )
            for runtime in runtimes:
                await runtime.refresh()
                assert sorted(runtime.get_workspace("w").functions) == sorted(f"f{index}" for index in range(12))
        finally:
            for runtime in runtimes:
                await runtime.close()

    asyncio.run(scenario())


def test_a_cut_connection_is_opened_again_before_the_next_run_starts(tmp_path, database_url):
    a, b = instances(tmp_path, database_url)

    async def scenario():
        async with a, b:
            await a.put_workspace("w", workspace(f="1"))
            assert (await b.run("w", "f")).result == "1"
            with psycopg.connect(database_url, autocommit=True) as connection:
                # every connection of b's change feed and a's pool is cut, as by a restart
                connection.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            await a.put_workspace("w", workspace(f="2"))
            assert (await b.run("w", "f")).result == "2"

    asyncio.run(scenario())


def test_with_a_staleness_bound_a_save_reaches_another_instance_within_it(tmp_path, database_url):
    a = shared_runtime(tmp_path / "a", database_url)
    options = RuntimeOptions(database_url=database_url, database_max_staleness_ms=30_000)
    factory = FakeFactory()
    b = Runtime(tmp_path / "b", options=options, pool=make_pool(options, factories={"javascript": factory}))

    async def scenario():
        async with a, b:
            await a.put_workspace("w", workspace(f="1"))
            assert (await b.run("w", "f")).result == "1"
            b._feed._listener.cancel()  # notifications lost (a reconnect, say): only the bound holds
            await asyncio.gather(b._feed._listener, return_exceptions=True)
            b._feed._fresh_at = float("-inf")
            await b.refresh()  # a pass now, after any late notification of the first save
            await a.put_workspace("w", workspace(f="2"))
            assert (await b.run("w", "f")).result == "1"  # b asked the database less than 30 s ago
            b._feed._fresh_at -= 30  # as if 30 s went by
            assert (await b.run("w", "f")).result == "2"

    asyncio.run(scenario())


def test_with_a_staleness_bound_a_notification_brings_a_save_long_before_the_bound(tmp_path, database_url):
    a = shared_runtime(tmp_path / "a", database_url)
    options = RuntimeOptions(database_url=database_url, database_max_staleness_ms=600_000)
    factory = FakeFactory()
    b = Runtime(tmp_path / "b", options=options, pool=make_pool(options, factories={"javascript": factory}))

    async def scenario():
        async with a, b:
            await a.put_workspace("w", workspace(f="1"))
            while (await b.run("w", "f")).result != "1":
                await asyncio.sleep(0.05)
            await a.put_workspace("w", workspace(f="2"))
            for _ in range(600):  # a minute at most, against a bound of ten
                if (await b.run("w", "f")).result == "2":
                    return
                await asyncio.sleep(0.1)
            raise AssertionError("the notification of the save never came")

    asyncio.run(scenario())
