"""Hostile runs in a batch: JavaScript runs queued for a busy isolate go out in one eval.

A run of the batch that loops forever, fills its memory, throws, tampers with what the
runtime uses, gives up or waits on the network must cost the other runs of its batch no more
than it would one at a time: each gets its own outcome, and its own timeout, counted from
its own start. That holds too for the run at the head of a batch formed on a free isolate,
when its worker read runs for the same sandbox right after it (see sandboxes/arrivals.py).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fnbox.sandboxes import arrivals
from fnbox.sandboxes.base import FunctionSource, Limits
from fnbox.sandboxes.js.overlap import compile_overlapping
from fnbox.sandboxes.network import EgressSettings
from tests.targets import http_target

LIMITS = Limits(timeout=1.0, memory=64 << 20)
#: For a run that fills its memory (in 60-90 ms here): its timeout far enough that only its
#: memory can stop it, even on a machine so busy that filling it takes ten times as long.
HOG_LIMITS = Limits(timeout=10.0, memory=64 << 20)
GATE = "const end = Date.now() + 150; while (Date.now() < end) {} return 'gate';"
ECHO = "cache.n = (cache.n || 0) + 1; console.log('echo', params.i); return params.i;"


def _batch(functions: dict[str, str], calls: list[tuple[str, dict[str, Any]]], limits: Limits = LIMITS) -> list[Any]:
    """Outcomes of `calls`, queued behind a gate run so that they go out together."""
    sandbox = compile_overlapping([FunctionSource(name, code) for name, code in {"gate": GATE, **functions}.items()])

    async def main() -> list[Any]:
        gate = asyncio.ensure_future(sandbox.run("gate", {}, LIMITS))
        await asyncio.sleep(0.05)
        queued = [asyncio.ensure_future(sandbox.run(name, params, limits)) for name, params in calls]
        return await asyncio.gather(gate, *queued, return_exceptions=True)

    try:
        gate, *outcomes = asyncio.run(main())
    finally:
        sandbox.close()
    assert gate.result == "gate"
    return outcomes


def _read_together(
    functions: dict[str, str], calls: list[tuple[str, dict[str, Any]]], limits: Limits = LIMITS
) -> list[Any]:
    """Outcomes of `calls` started together on a free isolate, as a worker starts the runs of one read."""
    sandbox = compile_overlapping([FunctionSource(name, code) for name, code in functions.items()])

    async def main() -> list[Any]:
        arrivals.follow()  # as a worker tells the runs of one read: their tasks start with this context
        return await asyncio.gather(
            *(sandbox.run(name, params, limits) for name, params in calls), return_exceptions=True
        )

    try:
        return asyncio.run(main())
    finally:
        sandbox.close()


def _results(outcomes: list[Any]) -> list[Any]:
    return [getattr(outcome, "result", type(outcome).__name__) for outcome in outcomes]


def test_a_run_that_loops_forever_times_out_alone():
    calls = [("echo", {"i": i}) for i in range(3)] + [("spin", {})] + [("echo", {"i": i}) for i in range(3, 6)]
    outcomes = _batch({"echo": ECHO, "spin": "while (true) {}"}, calls, Limits(timeout=0.3, memory=64 << 20))
    assert _results(outcomes) == [0, 1, 2, "TimeoutExceeded", 3, 4, 5]
    assert [outcome.logs[0]["message"] for i, outcome in enumerate(outcomes) if i != 3] == [
        f"echo {i}" for i in range(6)
    ]


def test_a_run_that_fills_its_memory_is_the_one_blamed():
    hog = "const a = []; while (true) a.push(new Array(100000).fill(Math.random()));"
    calls = [("echo", {"i": 0}), ("hog", {}), ("echo", {"i": 1}), ("echo", {"i": 2})]
    outcomes = _batch({"echo": ECHO, "hog": hog}, calls, HOG_LIMITS)
    assert _results(outcomes) == [0, "MemoryLimitExceeded", 1, 2]


def test_a_run_that_throws_gets_its_own_error_and_the_others_their_results():
    calls = [("echo", {"i": 0}), ("boom", {}), ("echo", {"i": 1})]
    outcomes = _batch({"echo": ECHO, "boom": "console.log('before'); throw new Error('boom');"}, calls)
    assert _results(outcomes) == [0, "FunctionError", 1]
    assert "boom" in outcomes[1].message
    assert [entry["message"] for entry in outcomes[1].logs] == ["before"]


def test_each_run_of_a_batch_has_its_whole_timeout_from_its_own_start():
    slow = "const end = Date.now() + 200; while (Date.now() < end) {} return params.i;"
    calls = [("slow", {"i": i}) for i in range(4)]  # 0.8 s together, 0.3 s each at most
    outcomes = _batch({"slow": slow}, calls, Limits(timeout=0.3, memory=64 << 20))
    assert _results(outcomes) == [0, 1, 2, 3]


def test_a_run_that_tampers_with_the_runtime_built_ins_cannot_mix_up_the_others_outcomes():
    tamper = (
        "String.prototype.slice = () => '{\"i\": 666}';"
        "String.fromCharCode = () => 'x';"
        "Atomics.compareExchange = () => 0;"
        "Atomics.store = () => 0;"
        "JSON.parse = () => ({i: 666});"
        "JSON.stringify = () => '666';"
        "Object.defineProperty(Array.prototype, '0', {set() { throw new Error('no'); }, configurable: true});"
        "Promise.prototype.then = function () { return this; };"
        "return 'tampered';"
    )
    calls = [("echo", {"i": 0}), ("tamper", {}), ("echo", {"i": 1}), ("echo", {"i": 2})]
    outcomes = _batch({"echo": ECHO, "tamper": tamper}, calls)
    assert _results(outcomes) == [0, "tampered", 1, 2]


def test_a_run_that_calls_the_runtime_entry_points_itself_costs_the_others_nothing():
    meddle = (
        "try { $fnbox.goBatch(); } catch (e) {}"
        "try { $fnbox.go(); } catch (e) {}"
        "try { $fnbox.abandon(1); } catch (e) {}"
        "return 'meddled';"
    )
    calls = [("echo", {"i": 0}), ("meddle", {}), ("echo", {"i": 1}), ("echo", {"i": 2})]
    outcomes = _batch({"echo": ECHO, "meddle": meddle}, calls)
    assert _results(outcomes)[0] == 0
    assert _results(outcomes)[2:] == [1, 2]  # run once each, on this isolate or a fresh one


def test_a_queued_run_whose_caller_gives_up_never_runs():
    sandbox = compile_overlapping([FunctionSource("gate", GATE), FunctionSource("echo", ECHO)])

    async def main() -> tuple[list[Any], Any]:
        gate = asyncio.ensure_future(sandbox.run("gate", {}, LIMITS))
        await asyncio.sleep(0.05)
        queued = [asyncio.ensure_future(sandbox.run("echo", {"i": i}, LIMITS)) for i in range(4)]
        await asyncio.sleep(0)
        queued[1].cancel()
        outcomes = await asyncio.gather(gate, *queued, return_exceptions=True)
        count = await sandbox.run("echo", {"i": 9}, LIMITS)
        return outcomes, count

    try:
        outcomes, count = asyncio.run(main())
    finally:
        sandbox.close()
    assert _results(outcomes) == ["gate", 0, "CancelledError", 2, 3]
    assert [entry["message"] for entry in count.logs] == ["echo 9"]
    assert count.result == 9


def test_runs_queued_behind_one_that_waits_on_the_network_do_not_wait_for_it():
    def slow(handler):
        time.sleep(0.6)
        return 200, {}, b"late"

    fetcher = "return await (await fetch(params.base + '/slow')).text();"
    with http_target({"/slow": slow}) as base:
        sandbox = compile_overlapping(
            [FunctionSource("gate", GATE), FunctionSource("echo", ECHO), FunctionSource("fetcher", fetcher)]
        )
        outbound = EgressSettings(policy="127.0.0.1").build().for_workspace(None)
        ended: dict[str, float] = {}

        async def call(name: str, params: dict[str, Any], key: str) -> Any:
            outcome = await sandbox.run(name, params, LIMITS, outbound=outbound)
            ended[key] = time.perf_counter()
            return outcome.result

        async def main() -> list[Any]:
            gate = asyncio.ensure_future(call("gate", {}, "gate"))
            await asyncio.sleep(0.05)
            queued = [asyncio.ensure_future(call("fetcher", {"base": base}, "fetcher"))]
            queued += [asyncio.ensure_future(call("echo", {"i": i}, f"echo{i}")) for i in range(3)]
            return await asyncio.gather(gate, *queued)

        try:
            results = asyncio.run(main())
        finally:
            sandbox.close()
    assert results == ["gate", "late", 0, 1, 2]
    assert max(ended[f"echo{i}"] for i in range(3)) < ended["fetcher"]


def test_a_run_that_ends_itself_and_starts_the_next_of_its_batch_still_times_out():
    # It guesses its own id, drops itself, asks the runtime to start its batch again (to have
    # the next run begin while it goes on looping): its deadline holds all the same.
    hijack = (
        "for (let id = 1; id < 100000; id++) $fnbox.abandon(id);try { $fnbox.goBatch(); } catch (e) {}while (true) {}"
    )
    calls = [("echo", {"i": 0}), ("hijack", {}), ("echo", {"i": 1}), ("echo", {"i": 2})]
    started = time.perf_counter()
    outcomes = _batch({"echo": ECHO, "hijack": hijack}, calls, Limits(timeout=0.5, memory=64 << 20))
    assert time.perf_counter() - started < 5
    results = _results(outcomes)
    assert results[:2] == [0, "TimeoutExceeded"]
    assert results[2:] == [1, 2]  # a batch starts once: the runs it did not reach go out again


def test_a_run_that_writes_another_run_s_id_where_the_runtime_keeps_it_gets_nothing_of_that_run():
    spoof = "for (let id = 1; id < 1000; id++) { try { $fnbox.run(id, 0, '{}'); } catch (e) {} } while (true) {}"
    calls = [("echo", {"i": 0}), ("spoof", {}), ("echo", {"i": 1})]
    outcomes = _batch({"echo": ECHO, "spoof": spoof}, calls, Limits(timeout=0.3, memory=64 << 20))
    assert _results(outcomes) == [0, "TimeoutExceeded", 1]


def test_a_batched_run_whose_caller_gives_up_while_it_runs_is_stopped_and_the_rest_go_on():
    spin = "cache.spun = true; while (true) {}"
    sandbox = compile_overlapping(
        [FunctionSource("gate", GATE), FunctionSource("echo", ECHO), FunctionSource("spin", spin)]
    )

    async def main() -> tuple[list[Any], float]:
        gate = asyncio.ensure_future(sandbox.run("gate", {}, LIMITS))
        await asyncio.sleep(0.05)
        limits = Limits(timeout=30.0, memory=64 << 20)
        queued = [
            asyncio.ensure_future(sandbox.run(name, {"i": i}, limits))
            for i, name in enumerate(["echo", "spin", "echo"])
        ]
        await gate
        await asyncio.sleep(0.2)  # the spin runs
        started = time.perf_counter()
        queued[1].cancel()
        outcomes = await asyncio.gather(*queued, return_exceptions=True)
        return outcomes, time.perf_counter() - started

    try:
        outcomes, took = asyncio.run(main())
    finally:
        sandbox.close()
    assert _results(outcomes) == [0, "CancelledError", 2]
    assert took < 5  # not its 30 s timeout


def test_a_run_heading_a_batch_of_one_read_that_loops_forever_times_out_alone():
    calls = [("spin", {})] + [("echo", {"i": i}) for i in range(3)]
    started = time.monotonic()
    outcomes = _read_together({"echo": ECHO, "spin": "while (true) {}"}, calls)
    assert _results(outcomes) == ["TimeoutExceeded", 0, 1, 2]
    assert time.monotonic() - started < 5 * LIMITS.timeout


def test_a_run_heading_a_batch_of_one_read_that_fills_its_memory_is_the_one_blamed():
    hog = "const a = []; while (true) a.push(new Array(100000).fill(Math.random()));"
    calls = [("hog", {}), ("echo", {"i": 0}), ("echo", {"i": 1})]
    outcomes = _read_together({"echo": ECHO, "hog": hog}, calls, HOG_LIMITS)
    assert _results(outcomes) == ["MemoryLimitExceeded", 0, 1]


def test_a_run_heading_a_batch_of_one_read_that_meddles_with_the_runtime_costs_the_others_nothing():
    meddle = (
        "try { $fnbox.goBatch(); } catch (e) {}"
        "try { $fnbox.go(); } catch (e) {}"
        "try { $fnbox.abandon(1); } catch (e) {}"
        "JSON.stringify = () => '666';"
        "return 'meddled';"
    )
    outcomes = _read_together(
        {"echo": ECHO, "meddle": meddle}, [("meddle", {})] + [("echo", {"i": i}) for i in range(3)]
    )
    assert _results(outcomes)[1:] == [0, 1, 2]  # run once each, on this isolate or a fresh one
