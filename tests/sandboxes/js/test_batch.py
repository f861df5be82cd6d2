"""Runs queued for a busy isolate go out together, in one eval (see batch.py)."""

from __future__ import annotations

import asyncio
import ctypes
import itertools
import os
from typing import Any

from fnbox.sandboxes import arrivals
from fnbox.sandboxes.base import FunctionSource, Limits, Parameter
from fnbox.sandboxes.js import handoff
from fnbox.sandboxes.js.batch import BATCH_REQUEST
from fnbox.sandboxes.js.mailbox import CAPACITY
from fnbox.sandboxes.js.overlap import compile_overlapping

LIMITS = Limits(timeout=2.0, memory=64 << 20)
GATE = FunctionSource("gate", "const end = Date.now() + 100; while (Date.now() < end) {} return 'gate';", ())
HELLO = FunctionSource("hello", "console.log('hi', name); return 'Hello ' + name;", (Parameter("name"),))
BIG = FunctionSource("big", f"return 'x'.repeat({CAPACITY * 2});", ())


def _behind_gate(sandbox: Any, calls: list[tuple[str, dict[str, Any], dict[str, Any]]]) -> list[Any]:
    async def main() -> list[Any]:
        gate = asyncio.ensure_future(sandbox.run("gate", {}, LIMITS))
        await asyncio.sleep(0.03)
        queued = [asyncio.ensure_future(sandbox.run(name, params, **options)) for name, params, options in calls]
        return await asyncio.gather(gate, *queued, return_exceptions=True)

    gate, *outcomes = asyncio.run(asyncio.wait_for(main(), 20))
    assert gate.result == "gate"
    return [getattr(outcome, "result", type(outcome).__name__) for outcome in outcomes]


def test_swap_is_a_compare_and_swap() -> None:
    word = ctypes.c_int32(0)
    address = ctypes.addressof(word)
    assert handoff.native.swap(address, 0, 1) == 0 and word.value == 1
    assert handoff.native.swap(address, 0, 2) == 1 and word.value == 1  # lost: unchanged


def _evals_of_runs_read_together(followed: bool) -> tuple[list[Any], list[Any]]:
    """Four runs started together on a free isolate, each told by its worker (or not) that a run for it came right after."""
    sandbox = compile_overlapping([HELLO])
    context = sandbox._first._context
    evals: list[Any] = []
    start_eval = context.engine.start_eval

    def counted(code: Any, on_done: Any, **options: Any) -> int:
        evals.append(code)
        return start_eval(code, on_done, **options)

    async def main() -> list[Any]:
        if followed:
            arrivals.follow()  # the tasks of the runs start with this context
        runs = [sandbox.run("hello", {"name": str(i)}, LIMITS) for i in range(4)]
        return list(await asyncio.gather(*runs))

    context.engine.start_eval = counted  # type: ignore[method-assign]
    try:
        outcomes = asyncio.run(asyncio.wait_for(main(), 20))
    finally:
        sandbox.close()
    assert [outcome.result for outcome in outcomes] == [f"Hello {i}" for i in range(4)]
    assert [[line["message"] for line in outcome.logs] for outcome in outcomes] == [[f"hi {i}"] for i in range(4)]
    return evals, [code for code in evals if code is context.go_batch]


def test_runs_read_together_by_a_worker_go_in_one_eval_the_first_included() -> None:
    evals, batches = _evals_of_runs_read_together(followed=True)
    assert len(evals) == len(batches) == 1


def test_a_run_that_finds_its_isolate_free_and_nothing_behind_it_goes_alone() -> None:
    evals, batches = _evals_of_runs_read_together(followed=False)
    assert len(evals) == 2 and len(batches) == 1  # the first alone, the three queued behind it together


def test_queued_runs_with_their_own_logs_limits_and_env() -> None:
    sandbox = compile_overlapping([GATE, HELLO, FunctionSource("env", "return process.env.WHO || null;", ())])
    lines: list[Any] = []
    calls = [
        ("hello", {"name": "a"}, {"limits": LIMITS}),
        ("hello", {"name": "b"}, {"limits": Limits(timeout=1.0, memory=32 << 20)}),
        ("hello", {"name": "c"}, {"limits": LIMITS, "on_log": lines.append}),
        ("env", {}, {"limits": LIMITS, "env": {"WHO": "me"}}),
        ("env", {}, {"limits": LIMITS}),
        ("hello", {"name": "d"}, {"limits": LIMITS}),
    ]
    try:
        assert _behind_gate(sandbox, calls) == ["Hello a", "Hello b", "Hello c", "me", None, "Hello d"]
    finally:
        sandbox.close()
    assert [line["message"] for line in lines] == ["hi c"]


def test_an_outcome_too_big_for_the_mailbox_in_a_batch() -> None:
    sandbox = compile_overlapping([GATE, HELLO, BIG])
    calls = [("hello", {"name": "a"}, {"limits": LIMITS}), ("big", {}, {"limits": LIMITS})]
    calls += [("hello", {"name": str(i)}, {"limits": LIMITS}) for i in range(3)]
    try:
        results = _behind_gate(sandbox, calls)
    finally:
        sandbox.close()
    assert results[0] == "Hello a" and results[1] == "x" * CAPACITY * 2
    assert results[2:] == [f"Hello {i}" for i in range(3)]


def test_a_batch_s_run_ids_go_round_within_the_mailbox() -> None:
    sandbox = compile_overlapping([GATE, HELLO])
    sandbox._first._run_ids = itertools.count(2**31 - 3)  # as after two billion runs
    calls = [("hello", {"name": str(i)}, {"limits": LIMITS}) for i in range(6)]
    try:
        assert _behind_gate(sandbox, calls) == [f"Hello {i}" for i in range(6)]
    finally:
        sandbox.close()


def test_a_full_pipe_hands_a_batch_over_through_python() -> None:
    sandbox = compile_overlapping([GATE, HELLO])

    async def main() -> list[Any]:
        loop = asyncio.get_running_loop()
        gate = asyncio.ensure_future(sandbox.run("gate", {}, LIMITS))
        await asyncio.sleep(0.03)
        pipe = handoff.pipe_for(loop)
        loop.remove_reader(pipe.read_fd)  # nothing reads it: the runs can only end through Python
        while True:
            try:
                os.write(pipe.write_fd, bytes(32))  # records with no copy: read and dropped later
            except BlockingIOError:
                break
        try:
            queued = [asyncio.ensure_future(sandbox.run("hello", {"name": str(i)}, LIMITS)) for i in range(5)]
            await gate
            return [outcome.result for outcome in await asyncio.gather(*queued)]
        finally:
            loop.add_reader(pipe.read_fd, pipe.drain)

    try:
        assert asyncio.run(asyncio.wait_for(main(), 20)) == [f"Hello {i}" for i in range(5)]
    finally:
        sandbox.close()


def test_a_run_whose_request_is_too_big_for_a_batch_waits_its_turn_alone() -> None:
    sandbox = compile_overlapping([GATE, HELLO])
    big = "y" * (BATCH_REQUEST + 1)
    calls = [("hello", {"name": "a"}, {"limits": LIMITS}), ("hello", {"name": big}, {"limits": LIMITS})]
    calls += [("hello", {"name": "b"}, {"limits": LIMITS})]
    try:
        assert _behind_gate(sandbox, calls) == ["Hello a", "Hello " + big, "Hello b"]
    finally:
        sandbox.close()


def test_host_calls_and_requests_of_later_runs_of_a_batch_are_their_own() -> None:
    import hashlib

    from fnbox.sandboxes.network import EgressSettings
    from tests.targets import http_target

    digest = FunctionSource(
        "digest", "return require('crypto').createHash('sha256').update(params.s).digest('hex');", ()
    )
    fetcher = FunctionSource("fetcher", "return await (await fetch(params.base + '/echo?' + params.s)).text();", ())

    def echo(handler: Any) -> tuple[int, dict[str, str], bytes]:
        return 200, {}, handler.path.split("?", 1)[1].encode()

    with http_target({"/echo": echo}) as base:
        sandbox = compile_overlapping([GATE, digest, fetcher])
        outbound = EgressSettings(policy="127.0.0.1").build().for_workspace(None)
        calls = []
        for i in range(4):
            calls.append(("digest", {"s": f"d{i}"}, {"limits": LIMITS, "outbound": outbound}))
            calls.append(("fetcher", {"base": base, "s": f"f{i}"}, {"limits": LIMITS, "outbound": outbound}))
        try:
            results = _behind_gate(sandbox, calls)
        finally:
            sandbox.close()
    expected = []
    for i in range(4):
        expected += [hashlib.sha256(f"d{i}".encode()).hexdigest(), f"f{i}"]
    assert results == expected


# A run that keeps V8's thread busy for 100 ms after its outcome is handed over: the batch
# posted after it waits that long for JS to begin it.
LINGER = FunctionSource(
    "linger",
    "let p = Promise.resolve();"
    " for (let i = 0; i < 6; i++) p = p.then(() => 0);"
    " p.then(() => { const end = Date.now() + 100; while (Date.now() < end) {} });"
    " const end = Date.now() + 100; while (Date.now() < end) {}"
    " return 'linger';",
    (),
)


def _behind_linger(
    functions: list[FunctionSource], calls: list[tuple[str, str, Limits]], give_up: int | None
) -> tuple[list[Any], bool]:
    """`calls` queued behind a lingering run; the first `give_up` runs of the batch posted as
    it ends (all if None) wait no longer, before JS begins the batch. Then two more calls.
    The outcomes of the queued calls and of the two later ones, and whether the posted
    batch let go of the isolate at once (the next batch was posted, or none is in flight)."""
    from fnbox.sandboxes.errors import Overloaded

    sandbox = compile_overlapping([LINGER, HELLO, *functions])
    isolate = sandbox._first
    context, batches = isolate._context, isolate._batches

    async def main() -> tuple[list[Any], bool]:
        linger = asyncio.ensure_future(isolate.run("linger", {}, LIMITS))
        await asyncio.sleep(0.03)
        queued = [asyncio.ensure_future(isolate.run(fn, {"name": name}, limits)) for fn, name, limits in calls]
        while not batches._posted:  # posted as the lingering run ends: JS is not on it for 100 ms
            await asyncio.sleep(0)
        first = list(batches._posted)
        for item in first[:give_up]:  # their waits for a turn run out
            batches._overdue(item, lambda: Overloaded("waited too long"))
        for _ in range(20):
            await asyncio.sleep(0)
        let_go = not batches._posted or batches._posted[0] is not first[0]
        outcomes = await asyncio.gather(linger, *queued, return_exceptions=True)
        assert outcomes[0].result == "linger"
        later = [isolate.run("hello", {"name": name}, LIMITS) for name in "ef"]
        return [*outcomes[1:], *await asyncio.gather(*later, return_exceptions=True)], let_go

    try:
        outcomes, let_go = asyncio.run(asyncio.wait_for(main(), 20))
        assert isolate._context is context  # never rebooted
    finally:
        sandbox.close()
    names = [type(outcome).__name__ if isinstance(outcome, Exception) else outcome.result for outcome in outcomes]
    return names, let_go


def test_runs_of_a_batch_taken_back_before_js_begins_it_leave_the_later_ones_to_run() -> None:
    calls = [("hello", name, LIMITS) for name in "abcd"]
    outcomes, _ = _behind_linger([], calls, give_up=2)
    assert outcomes == ["Overloaded", "Overloaded", "Hello c", "Hello d", "Hello e", "Hello f"]


def test_a_batch_given_up_before_js_begins_it_leaves_its_eval_to_the_next_batch() -> None:
    waiting = FunctionSource(  # still in flight when the next batch's eval comes
        "waiting",
        "await new Promise((resolve) => setTimeout(resolve, 50)); return 'Later ' + name;",
        (Parameter("name"),),
    )
    other = Limits(timeout=1.0, memory=64 << 20)  # runs with other limits go in a batch of their own
    calls = [("hello", "a", LIMITS), ("hello", "b", LIMITS), ("waiting", "c", other), ("waiting", "d", other)]
    outcomes, let_go = _behind_linger([waiting], calls, give_up=None)
    # Not waiting for JS, the batch let go of the isolate, and the next one was posted: the
    # eval still to come takes it, and the next batch's eval finds none.
    assert let_go
    assert outcomes == ["Overloaded", "Overloaded", "Later c", "Later d", "Hello e", "Hello f"]


def test_a_late_step_through_a_batch_that_ended_cannot_take_the_next_batch_s_runs() -> None:
    """JS claims a batch's entry as runtime.js's next() does: its state, tagged with the id of
    the run it expects there, from QUEUED to TAKEN."""
    from fnbox.sandboxes.js.mailbox import QUEUED, TAKEN

    def claim(entry: int, run_id: int) -> bool:
        tag = (run_id & 0x1FFFFFFF) << 2
        return (
            handoff.native.swap(mailbox._table_address + (entry * 4 + 3) * 4, tag | QUEUED, tag | TAKEN) == tag | QUEUED
        )

    sandbox = compile_overlapping([HELLO])
    mailbox = sandbox._first._context.mailbox
    try:
        assert mailbox.post_batch([(7, 0, "{}"), (8, 0, "{}")])  # a batch that ended,
        assert mailbox.post_batch([(9, 0, "{}"), (10, 0, "{}")])  # then the next, in the same table
        assert not claim(0, 7) and not claim(1, 8)  # a late step through the first takes nothing
        assert not mailbox.taken(0) and mailbox.withdraw(0, handoff.native.swap)  # still Python's to take back
        assert claim(1, 10) and mailbox.taken(1) and not mailbox.withdraw(1, handoff.native.swap)
    finally:
        sandbox.close()
