"""Access tokens in the shared database: hashes only, followed by every instance through the change feed."""

import asyncio

import pytest

from fnbox.sandboxes.errors import NotFound
from fnbox.server.pgtokens import PgTokenStore, open_tokens
from fnbox.workspaces.runtime import Runtime, RuntimeOptions, make_pool
from tests.fakes import FakeFactory

pytestmark = pytest.mark.slow  # a real PostgreSQL


def shared_runtime(path, database_url):
    options = RuntimeOptions(database_url=database_url)
    factory = FakeFactory()
    return Runtime(path, options=options, pool=make_pool(options, factories={"javascript": factory, "python": factory}))


def test_a_token_made_or_revoked_through_one_instance_counts_on_another_after_its_catch_up(tmp_path, database_url):
    a, b = shared_runtime(tmp_path / "a", database_url), shared_runtime(tmp_path / "b", database_url)
    tokens_a = open_tokens(a, tmp_path / "a", admin_token=None)
    tokens_b = open_tokens(b, tmp_path / "b", admin_token=None)
    assert isinstance(tokens_a, PgTokenStore) and tokens_b.shared

    async def scenario():
        async with a, b:
            assert not tokens_b.enabled
            made = await asyncio.to_thread(tokens_a.create, {"scopes": ["run"], "workspaces": ["w*"]})
            await tokens_a.publish()  # as the routes do: answered once every instance holding a lease has it
            await tokens_b.refresh()
            assert tokens_b.enabled and tokens_b.authenticate(made["token"]).workspaces == ("w*",)
            assert [item["id"] for item in tokens_b.list()] == [made["id"]]
            principal = tokens_b.authenticate(made["token"])
            await asyncio.to_thread(tokens_b.revoke, made["id"])
            await tokens_b.publish()
            await tokens_a.refresh()
            assert tokens_a.authenticate(made["token"]) is None and not tokens_a.active(principal)
            with pytest.raises(NotFound):
                await asyncio.to_thread(tokens_a.revoke, made["id"])
            with a.database.connection() as connection:
                kept = connection.execute("SELECT count(*) FROM fnbox_tokens").fetchone()[0]
            assert kept == 0

    asyncio.run(scenario())


def test_only_the_hash_is_stored(tmp_path, database_url):
    runtime = shared_runtime(tmp_path, database_url)
    tokens = open_tokens(runtime, tmp_path, admin_token="admin-token-0123456789")

    async def scenario():
        async with runtime:
            made = await asyncio.to_thread(tokens.create, {"scopes": ["read"]})
            with runtime.database.connection() as connection:
                row = connection.execute("SELECT t::text FROM fnbox_tokens t").fetchone()[0]
            secret = made["token"].removeprefix(f"fnbox_{made['id']}_")
            assert made["token"] not in row and secret not in row and "admin-token" not in row

    asyncio.run(scenario())
