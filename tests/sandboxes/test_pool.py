import asyncio
import time

import pytest

from fnbox.sandboxes.base import FunctionSource, Limits
from fnbox.sandboxes.errors import Overloaded
from fnbox.sandboxes.pool import SandboxKey, SandboxPool
from tests.fakes import FakeFactory

LIMITS = Limits(timeout=1.0, memory=64 * 2**20)


def key(workspace: str, version: str = "v1") -> SandboxKey:
    return SandboxKey(workspace, "javascript", version)


def make_pool(**options) -> tuple[FakeFactory, SandboxPool]:
    factory = FakeFactory()
    options = {"max_sandboxes": 10, "idle_timeout": 60, **options}
    return factory, SandboxPool(factories={"javascript": factory, "python": factory}, **options)


def functions(code: str) -> list[FunctionSource]:
    return [FunctionSource(name="f", code=code)]


def test_a_sandbox_is_built_once_and_kept_warm():
    factory, pool = make_pool()

    async def scenario():
        return [await pool.run(key("a"), functions("count"), "f", {}, LIMITS) for _ in range(3)]

    results = asyncio.run(scenario())
    assert [r.result for r in results] == [1, 2, 3]
    assert len(factory.built) == 1


def test_concurrent_first_calls_compile_once():
    factory, pool = make_pool()

    async def scenario():
        return await asyncio.gather(*(pool.run(key("a"), functions("count"), "f", {}, LIMITS) for _ in range(5)))

    assert sorted(r.result for r in asyncio.run(scenario())) == [1, 2, 3, 4, 5]
    assert len(factory.built) == 1


def test_least_recently_used_is_evicted_and_closed():
    factory, pool = make_pool(max_sandboxes=2, idle_timeout=60)

    async def scenario():
        for name in ("a", "b", "a", "c"):
            await pool.run(key(name), functions("count"), "f", {}, LIMITS)

    asyncio.run(scenario())
    a, b, c = factory.built
    assert b.closed and not a.closed and not c.closed
    assert key("b") not in pool and key("a") in pool and key("c") in pool


def test_idle_sandboxes_are_dropped_after_the_idle_timeout():
    now = [0.0]
    factory, pool = make_pool(max_sandboxes=10, idle_timeout=30, clock=lambda: now[0])

    async def scenario():
        await pool.run(key("a"), functions("count"), "f", {}, LIMITS)
        now[0] = 20.0
        await pool.run(key("b"), functions("count"), "f", {}, LIMITS)
        now[0] = 40.0
        pool.sweep()

    asyncio.run(scenario())
    a, b = factory.built
    assert a.closed and not b.closed
    assert len(pool) == 1


def test_a_new_version_replaces_the_old_after_calls_in_flight_finish():
    factory, pool = make_pool()

    async def scenario():
        slow = asyncio.create_task(pool.run(key("a", "v1"), functions("sleep 0.2"), "f", {}, LIMITS))
        await asyncio.sleep(0.05)
        assert await pool.compile(key("a", "v2"), functions("echo")) == {}
        old = factory.built[0]
        assert not old.closed  # still running
        assert (await slow).result == "slept"
        return old

    old = asyncio.run(scenario())
    assert old.closed
    assert key("a", "v1") not in pool and key("a", "v2") in pool


def test_a_broken_sandbox_is_replaced_by_a_fresh_one():
    factory, pool = make_pool()
    sources = [FunctionSource(name="f", code="break"), FunctionSource(name="g", code="count")]

    async def scenario():
        with pytest.raises(Exception, match="wedged"):
            await pool.run(key("a"), sources, "f", {}, LIMITS)
        return await pool.run(key("a"), sources, "g", {}, LIMITS)

    assert asyncio.run(scenario()).result == 1
    assert factory.built[0].closed and len(factory.built) == 2


def test_a_full_queue_answers_overloaded():
    factory, pool = make_pool(max_queue=2)

    async def scenario():
        return await asyncio.gather(
            *(pool.run(key("a"), functions("sleep 0.2"), "f", {}, LIMITS) for _ in range(3)), return_exceptions=True
        )

    outcomes = asyncio.run(scenario())
    assert sum(isinstance(o, Overloaded) for o in outcomes) == 1
    assert sum(getattr(o, "result", None) == "slept" for o in outcomes) == 2


def test_waiting_longer_than_the_timeout_and_the_queue_wait_answers_overloaded():
    factory, pool = make_pool(queue_wait=0)
    short = Limits(timeout=0.2, memory=2**20)

    async def scenario():
        slow = functions("sleep 0.5")
        return await asyncio.gather(
            pool.run(key("a"), slow, "f", {}, LIMITS), pool.run(key("a"), slow, "f", {}, short), return_exceptions=True
        )

    first, second = asyncio.run(scenario())
    assert first.result == "slept"
    assert isinstance(second, Overloaded)


def test_a_call_waits_for_its_turn_past_its_own_timeout_within_the_queue_wait():
    factory, pool = make_pool(queue_wait=5)
    short = Limits(timeout=0.2, memory=2**20)
    waits = []

    async def scenario():
        sources = [FunctionSource(name="slow", code="sleep 0.5"), FunctionSource(name="echo", code="echo")]
        return await asyncio.gather(
            pool.run(key("a"), sources, "slow", {}, LIMITS),
            pool.run(key("a"), sources, "echo", {}, short, on_wait=lambda: waits.append(1)),
        )

    first, second = asyncio.run(scenario())
    assert first.result == "slept" and second.result == {}
    assert waits == [1]


def test_drop_closes_every_sandbox_of_a_workspace():
    factory, pool = make_pool()

    async def scenario():
        for k in (key("a"), SandboxKey("a", "python", "v1"), key("b")):
            await pool.compile(k, functions("echo"))
        await pool.drop("a")

    asyncio.run(scenario())
    assert [s.closed for s in factory.built] == [True, True, False]


def test_a_version_with_compile_errors_is_not_installed_unless_asked():
    factory, pool = make_pool()
    bad = [FunctionSource(name="f", code="syntax error"), FunctionSource(name="g", code="echo")]

    async def scenario():
        await pool.compile(key("a", "v1"), functions("echo"))
        refused = await pool.compile(key("a", "v2"), bad)
        assert key("a", "v1") in pool and key("a", "v2") not in pool
        kept = await pool.compile(key("a", "v3"), bad, keep_on_error=True)
        return refused, kept

    refused, kept = asyncio.run(scenario())
    assert list(refused) == list(kept) == ["f"]
    assert key("a", "v3") in pool and key("a", "v1") not in pool
    assert factory.built[1].closed and not factory.built[2].closed


def test_the_sweeper_drops_idle_sandboxes_in_the_background():
    factory, pool = make_pool(idle_timeout=0.2)

    async def scenario():
        await pool.start()
        await pool.compile(key("a"), functions("echo"))
        await asyncio.sleep(0.5)
        dropped = key("a") not in pool
        await pool.close()
        return dropped

    assert asyncio.run(scenario()) is True
    assert factory.built[0].closed


# Live logs and cancelling


def test_on_log_gets_the_entries_while_the_run_goes_on():
    factory, pool = make_pool()

    async def scenario():
        seen, first = [], asyncio.Event()

        def on_log(entry):
            seen.append(entry)
            first.set()

        task = asyncio.create_task(pool.run(key("a"), functions("talk 0.3"), "f", {}, LIMITS, on_log=on_log))
        await asyncio.wait_for(first.wait(), 5)
        during = [entry["message"] for entry in seen], task.done()
        return during, seen, await task

    during, seen, outcome = asyncio.run(scenario())
    assert during == (["one"], False)
    assert seen == outcome.logs and [entry["message"] for entry in seen] == ["one", "two"]


def test_a_cancelled_call_still_queued_never_runs():
    factory, pool = make_pool()
    sources = [FunctionSource(name="slow", code="sleep 0.2"), FunctionSource(name="count", code="count")]

    async def scenario():
        slow = asyncio.create_task(pool.run(key("a"), sources, "slow", {}, LIMITS))
        await asyncio.sleep(0.05)
        queued = asyncio.create_task(pool.run(key("a"), sources, "count", {}, LIMITS))
        await asyncio.sleep(0.05)
        queued.cancel()
        with pytest.raises(asyncio.CancelledError):
            await queued
        await slow
        return (await pool.run(key("a"), sources, "count", {}, LIMITS)).result

    assert asyncio.run(scenario()) == 1
    assert factory.built[0].runs == ["slow", "count"]


def test_a_cancelled_run_frees_its_sandbox_for_the_next_call():
    factory, pool = make_pool()
    sources = [FunctionSource(name="slow", code="sleep 10"), FunctionSource(name="count", code="count")]

    async def scenario():
        slow = asyncio.create_task(pool.run(key("a"), sources, "slow", {}, Limits(timeout=20, memory=2**20)))
        await asyncio.sleep(0.05)
        slow.cancel()
        with pytest.raises(asyncio.CancelledError):
            await slow
        return (await asyncio.wait_for(pool.run(key("a"), sources, "count", {}, LIMITS), 0.5)).result

    assert asyncio.run(scenario()) == 1
    assert len(factory.built) == 1


def test_a_caller_cancelled_while_its_sandbox_compiles_cancels_neither_the_compile_nor_the_others():
    built = FakeFactory()

    def slow_factory(sources):
        time.sleep(0.2)
        return built(sources)

    pool = SandboxPool(factories={"javascript": slow_factory}, max_sandboxes=10, idle_timeout=60)

    async def scenario():
        first = asyncio.create_task(pool.run(key("a"), functions("count"), "f", {}, LIMITS))
        second = asyncio.create_task(pool.run(key("a"), functions("count"), "f", {}, LIMITS))
        await asyncio.sleep(0.05)
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        return (await second).result

    assert asyncio.run(scenario()) == 1
    assert len(built.built) == 1 and key("a") in pool
