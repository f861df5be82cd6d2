"""A JavaScript workspace's runs overlap in isolates of their own while they wait on the network."""

from __future__ import annotations

import asyncio
import threading
import time

from fnbox.sandboxes.base import FunctionSource, Limits
from fnbox.sandboxes.js.overlap import compile_overlapping
from fnbox.sandboxes.network import EgressSettings
from tests.targets import http_target

LIMITS = Limits(timeout=5.0, memory=64 << 20)
LOCAL = EgressSettings(policy="127.0.0.1").build()


def test_runs_that_wait_overlap_each_with_its_own_env_and_logs():
    lock = threading.Lock()
    seen = {"now": 0, "most": 0}

    def slow(handler):
        with lock:
            seen["now"] += 1
            seen["most"] = max(seen["most"], seen["now"])
        time.sleep(0.3)
        with lock:
            seen["now"] -= 1
        return 200, {}, b"late"

    code = (
        "console.log('start', process.env.WHO);"
        "const text = await (await fetch(params.base + '/slow')).text();"
        "console.log('end', process.env.WHO);"
        "return [process.env.WHO, text];"
    )
    with http_target({"/slow": slow}) as base:
        sandbox = compile_overlapping([FunctionSource("f", code)])

        async def main():
            runs = [sandbox.run("f", {"base": base}, LIMITS, env={"WHO": str(i)}, outbound=LOCAL) for i in range(8)]
            return await asyncio.gather(*runs)

        try:
            outcomes = asyncio.run(main())
        finally:
            sandbox.close()
    for i, outcome in enumerate(outcomes):
        assert outcome.result == [str(i), "late"]
        messages = [entry["message"] for entry in outcome.logs]
        assert messages[0] == f"start {i}" and messages[-1] == f"end {i}" and "-> 200 in" in messages[1]
    assert seen["most"] >= 4  # eight waits of 0.3 s, not one after the other


def test_runs_queued_behind_one_that_waits_on_the_network_get_isolates_of_their_own():
    # No env and no live logs: these runs may queue for a batch behind the first one. Once it
    # waits on the network they must leave that queue, or they wait for its answer.
    arrived = threading.Semaphore(0)
    release = threading.Event()

    def held(handler):
        arrived.release()
        release.wait(10)
        return 200, {}, b"released"

    code = "return await (await fetch(params.base + '/held')).text();"
    with http_target({"/held": held}) as base:
        sandbox = compile_overlapping([FunctionSource("f", code)])

        async def main():
            runs = asyncio.gather(*(sandbox.run("f", {"base": base}, LIMITS, outbound=LOCAL) for _ in range(8)))
            deadline = time.monotonic() + 4
            count = 0
            while count < 8 and time.monotonic() < deadline:
                if arrived.acquire(blocking=False):
                    count += 1
                else:
                    await asyncio.sleep(0.01)
            release.set()
            return count, await runs

        try:
            count, outcomes = asyncio.run(main())
        finally:
            release.set()
            sandbox.close()
    assert count == 8  # all at the target while the first was still held
    assert [outcome.result for outcome in outcomes] == ["released"] * 8


def test_runs_that_compute_take_turns_in_the_first_isolate_and_share_its_cache():
    sandbox = compile_overlapping([FunctionSource("f", "cache.n = (cache.n || 0) + 1; return cache.n;")])

    async def main():
        return await asyncio.gather(*(sandbox.run("f", {}, LIMITS, outbound=LOCAL) for _ in range(5)))

    try:
        assert sorted(outcome.result for outcome in asyncio.run(main())) == [1, 2, 3, 4, 5]
    finally:
        sandbox.close()


def test_runs_waiting_behind_one_that_broke_the_isolate_get_a_fresh_one():
    sources = [
        FunctionSource("wedge", "let a = []; for (;;) a.push(new Array(1e6).fill(0));"),
        FunctionSource("hello", "return 'hi';"),
    ]
    sandbox = compile_overlapping(sources)

    async def main():
        wedge = asyncio.ensure_future(sandbox.run("wedge", {}, Limits(timeout=2, memory=2**26)))
        await asyncio.sleep(0.05)
        queued = [sandbox.run("hello", {}, LIMITS) for _ in range(3)]
        return await asyncio.gather(wedge, *queued, return_exceptions=True)

    try:
        wedged, *hellos = asyncio.run(main())
    finally:
        sandbox.close()
    assert type(wedged).__name__ == "MemoryLimitExceeded"
    assert [outcome.result for outcome in hellos] == ["hi"] * 3


def test_runs_queued_for_the_first_isolate_get_their_whole_timeout_once_they_start():
    code = "const end = Date.now() + 150; while (Date.now() < end) {} return 1;"
    sandbox = compile_overlapping([FunctionSource("f", code)])
    limits = Limits(timeout=0.25, memory=64 << 20)

    async def main():
        return await asyncio.gather(*(sandbox.run("f", {}, limits) for _ in range(3)))

    try:
        assert [outcome.result for outcome in asyncio.run(main())] == [1, 1, 1]  # the last waited 0.3 s
    finally:
        sandbox.close()


def test_a_run_that_waits_too_long_for_its_turn_is_overloaded_and_leaves_the_queue(monkeypatch):
    from fnbox.sandboxes.errors import Overloaded
    from fnbox.sandboxes.js import overlap

    monkeypatch.setattr(overlap, "QUEUE_WAIT", 0.2)
    code = (
        "const end = Date.now() + params.ms; while (Date.now() < end) {} cache.n = (cache.n || 0) + 1; return cache.n;"
    )
    sandbox = compile_overlapping([FunctionSource("f", code)])
    woken = []

    async def main():
        busy = asyncio.ensure_future(sandbox.run("f", {"ms": 600}, Limits(timeout=5.0, memory=64 << 20)))
        await asyncio.sleep(0.05)
        try:
            await sandbox.run("f", {"ms": 0}, Limits(timeout=0.1, memory=64 << 20), on_wait=lambda: woken.append(1))
        except Overloaded as exc:
            assert "without getting one" in exc.message
            still_busy = not busy.done()  # its own bound (QUEUE_WAIT here) ended its wait, not the busy run
        first = await busy
        return still_busy, first.result, (await sandbox.run("f", {"ms": 0}, LIMITS)).result, list(sandbox._waiters)

    try:
        still_busy, first, after, waiters = asyncio.run(main())
    finally:
        sandbox.close()
    assert (still_busy, first, after, waiters, woken) == (True, 1, 2, [], [1])
