"""Leases and acknowledgements against a real PostgreSQL: who a save waits for, and when a lease is held."""

import asyncio

import psycopg
import pytest

from fnbox.database import Database
from fnbox.workspaces.presence import Acks, Lease, clock, connect

pytestmark = pytest.mark.slow  # a real PostgreSQL


@pytest.fixture
def migrated(database_url):
    database = Database(database_url)
    database.open()
    database.close()
    return database_url


def other(url, name, seen, lease_seconds):
    """Another instance's row, as its renewals leave it."""
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(
            "INSERT INTO fnbox_instances (id, seen, lease_until) VALUES (%s, %s, now() + make_interval(secs => %s))"
            " ON CONFLICT (id) DO UPDATE SET seen = excluded.seen, lease_until = excluded.lease_until",
            (name, seen, lease_seconds),
        )


async def renew(lease, url, seen):
    connection = await connect(url, "test")
    async with connection, lease.renewing(connection, clock()) as renewal:
        renewal.seen = seen


def test_a_new_instance_holds_no_lease_until_a_renewal_after_the_one_that_put_its_row_in(migrated):
    lease = Lease("me", 60)

    async def scenario():
        await renew(lease, migrated, 1)
        assert not lease.holds()  # a save that read the table before the row was in did not wait for it
        await renew(lease, migrated, 1)
        assert lease.holds()
        connection = await connect(migrated, "test")
        async with connection:
            await lease.leave(connection)
        assert not lease.holds()

    asyncio.run(scenario())


def test_a_save_waits_for_live_instances_that_have_not_seen_it_and_for_no_others(migrated):
    other(migrated, "gone", 0, -1)  # its lease ran out: not waited for
    other(migrated, "behind", 3, 60)

    async def scenario():
        acks = Acks(migrated, "me", bound=0.5)
        try:
            assert await acks.wait(3)
            assert not await acks.wait(4)  # "behind" never saw it: answered at the bound all the same
            waiting = asyncio.create_task(acks.wait(4))
            await asyncio.sleep(0.1)
            assert not waiting.done()
            other(migrated, "behind", 4, 60)
            acks.wake()
            assert await waiting
        finally:
            await acks.close()

    asyncio.run(scenario())


def test_a_renewal_in_flight_when_a_save_looks_is_waited_for(migrated):
    """The renewal of an instance whose lease had run out began before the save's change committed."""
    other(migrated, "paused", 0, -1)

    async def scenario():
        acks = Acks(migrated, "me", bound=30)
        try:
            renewal = await connect(migrated, "test")
            async with renewal:
                async with renewal.transaction():
                    await renewal.execute("SELECT 1 FROM fnbox_instances WHERE id = 'paused' FOR UPDATE")
                    waiting = asyncio.create_task(acks.wait(1))
                    await asyncio.sleep(0.3)  # the save reads the rows meanwhile
                    await renewal.execute(
                        "UPDATE fnbox_instances SET lease_until = now() + interval '60 seconds' WHERE id = 'paused'"
                    )
                for _ in range(5):
                    acks.wake()
                    await asyncio.sleep(0.1)
                assert not waiting.done()  # renewed on a snapshot without the change: it must see it first
            other(migrated, "paused", 1, 60)
            acks.wake()
            assert await waiting
        finally:
            await acks.close()

    asyncio.run(scenario())
