import asyncio

import pytest

from sandboxes.base import FunctionSource, Limits
from sandboxes.errors import Overloaded
from sandboxes.pool import SandboxKey, SandboxPool
from tests.fakes import FakeFactory

LIMITS = Limits(timeout=1.0, memory=64 * 2**20)


def key(workspace: str, version: str = "v1") -> SandboxKey:
    return SandboxKey(workspace, "javascript", version)


def functions(code: str) -> list[FunctionSource]:
    return [FunctionSource(name="f", code=code)]


def test_a_sandbox_is_built_once_and_kept_warm():
    factory, pool = FakeFactory(), SandboxPool(max_sandboxes=10, idle_timeout=60)

    async def scenario():
        return [await pool.run(key("a"), lambda: factory(functions("count")), "f", {}, LIMITS) for _ in range(3)]

    results = asyncio.run(scenario())
    assert [r.result for r in results] == [1, 2, 3]
    assert len(factory.built) == 1


def test_concurrent_first_calls_compile_once():
    factory, pool = FakeFactory(), SandboxPool(max_sandboxes=10, idle_timeout=60)

    async def scenario():
        build = lambda: factory(functions("count"))  # noqa: E731
        return await asyncio.gather(*(pool.run(key("a"), build, "f", {}, LIMITS) for _ in range(5)))

    assert sorted(r.result for r in asyncio.run(scenario())) == [1, 2, 3, 4, 5]
    assert len(factory.built) == 1


def test_least_recently_used_is_evicted_and_closed():
    factory, pool = FakeFactory(), SandboxPool(max_sandboxes=2, idle_timeout=60)

    async def scenario():
        for name in ("a", "b", "a", "c"):
            await pool.run(key(name), lambda: factory(functions("count")), "f", {}, LIMITS)

    asyncio.run(scenario())
    a, b, c = factory.built
    assert b.closed and not a.closed and not c.closed
    assert key("b") not in pool and key("a") in pool and key("c") in pool


def test_idle_sandboxes_are_dropped_after_the_idle_timeout():
    now = [0.0]
    factory, pool = FakeFactory(), SandboxPool(max_sandboxes=10, idle_timeout=30, clock=lambda: now[0])

    async def scenario():
        await pool.run(key("a"), lambda: factory(functions("count")), "f", {}, LIMITS)
        now[0] = 20.0
        await pool.run(key("b"), lambda: factory(functions("count")), "f", {}, LIMITS)
        now[0] = 40.0
        pool.sweep()

    asyncio.run(scenario())
    a, b = factory.built
    assert a.closed and not b.closed
    assert len(pool) == 1


def test_a_new_version_replaces_the_old_after_calls_in_flight_finish():
    factory, pool = FakeFactory(), SandboxPool(max_sandboxes=10, idle_timeout=60)

    async def scenario():
        slow = asyncio.create_task(pool.run(key("a", "v1"), lambda: factory(functions("sleep 0.2")), "f", {}, LIMITS))
        await asyncio.sleep(0.05)
        pool.install(key("a", "v2"), factory(functions("echo")))
        old = factory.built[0]
        assert not old.closed  # still running
        assert (await slow).result == "slept"
        return old

    old = asyncio.run(scenario())
    assert old.closed
    assert key("a", "v1") not in pool and key("a", "v2") in pool


def test_a_broken_sandbox_is_replaced_by_a_fresh_one():
    factory, pool = FakeFactory(), SandboxPool(max_sandboxes=10, idle_timeout=60)
    codes = iter(["break", "count"])

    async def scenario():
        build = lambda: factory(functions(next(codes)))  # noqa: E731
        with pytest.raises(Exception, match="wedged"):
            await pool.run(key("a"), build, "f", {}, LIMITS)
        return await pool.run(key("a"), build, "f", {}, LIMITS)

    assert asyncio.run(scenario()).result == 1
    assert factory.built[0].closed


def test_a_full_queue_answers_overloaded():
    factory, pool = FakeFactory(), SandboxPool(max_sandboxes=10, idle_timeout=60, max_queue=2)

    async def scenario():
        build = lambda: factory(functions("sleep 0.2"))  # noqa: E731
        return await asyncio.gather(
            *(pool.run(key("a"), build, "f", {}, LIMITS) for _ in range(3)), return_exceptions=True
        )

    outcomes = asyncio.run(scenario())
    assert sum(isinstance(o, Overloaded) for o in outcomes) == 1
    assert sum(getattr(o, "result", None) == "slept" for o in outcomes) == 2


def test_waiting_longer_than_the_timeout_answers_overloaded():
    factory, pool = FakeFactory(), SandboxPool(max_sandboxes=10, idle_timeout=60)
    short = Limits(timeout=0.2, memory=2**20)

    async def scenario():
        build = lambda: factory(functions("sleep 0.5"))  # noqa: E731
        return await asyncio.gather(
            pool.run(key("a"), build, "f", {}, LIMITS), pool.run(key("a"), build, "f", {}, short), return_exceptions=True
        )

    first, second = asyncio.run(scenario())
    assert first.result == "slept"
    assert isinstance(second, Overloaded)


def test_drop_closes_every_sandbox_of_a_workspace():
    factory, pool = FakeFactory(), SandboxPool(max_sandboxes=10, idle_timeout=60)
    pool.install(key("a"), factory(functions("echo")))
    pool.install(SandboxKey("a", "python", "v1"), factory(functions("echo")))
    pool.install(key("b"), factory(functions("echo")))
    pool.drop("a")
    assert [s.closed for s in factory.built] == [True, True, False]
