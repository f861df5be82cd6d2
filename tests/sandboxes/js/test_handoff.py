"""A run's end handed from V8's thread to the loop: through `_handoff`, and the pure-Python path without it."""

from __future__ import annotations

import asyncio
import gc
import itertools
import os
import struct
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from fnbox.sandboxes.base import FunctionSource, Limits, Parameter, RunResult
from fnbox.sandboxes.errors import FunctionError, TimeoutExceeded
from fnbox.sandboxes.js import context as js_context
from fnbox.sandboxes.js import handoff
from fnbox.sandboxes.js.mailbox import HELD, READY, Mail
from fnbox.sandboxes.js.overlap import OverlappingJsSandbox, compile_overlapping
from fnbox.sandboxes.js.sandbox import JsSandbox, compile_workspace

LIMITS = Limits(timeout=2.0, memory=64 << 20)
HELLO = FunctionSource("hello", "console.log('hi', name); return 'Hello ' + name;", (Parameter("name"),))


def _drop_spare() -> None:
    """Engines pick their path when made: the spare blank made earlier must not be handed out."""
    with js_context._spare_changed:
        js_context._spare_changed.wait_for(lambda: not js_context._spare_building, timeout=10)
        spare, js_context._spare = js_context._spare, None
    if spare is not None:
        spare.engine.close()


@pytest.fixture(params=["native", "python"])
def path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    if request.param == "python":
        monkeypatch.setattr(handoff, "native", None)
    _drop_spare()
    yield request.param
    _drop_spare()


@pytest.fixture
def compile(path: str) -> Iterator[Any]:
    sandboxes: list[JsSandbox] = []

    def make(*functions: FunctionSource) -> JsSandbox:
        sandboxes.append(compile_workspace(functions or (HELLO,)))
        assert sandboxes[-1]._context.engine.native == (path == "native")
        return sandboxes[-1]

    yield make
    for sandbox in sandboxes:
        sandbox.close()


def run(sandbox: JsSandbox, function: str = "hello", params: dict[str, Any] | None = None, **options: Any) -> RunResult:
    return asyncio.run(sandbox.run(function, params or {"name": "you"}, options.pop("limits", LIMITS), **options))


def test_the_extension_is_built() -> None:
    # The package's build compiles it wherever a C compiler is (CI included): without it,
    # the native path would go untested.
    assert handoff.native is not None


def test_a_run_answers_its_result_logs_and_duration(compile: Any) -> None:
    sandbox = compile()
    for _ in range(3):
        result = run(sandbox)
        assert result.result == "Hello you"
        assert [entry["message"] for entry in result.logs] == ["hi you"]
        assert 0 < result.duration < 2000


def test_live_log_entries_arrive_during_the_run(compile: Any) -> None:
    sandbox = compile(FunctionSource("chatty", "for (let i = 0; i < 3; i++) console.log('n', i); return 3;", ()))
    seen: list[Any] = []
    result = run(sandbox, "chatty", on_log=seen.append)
    assert result.result == 3 and seen == result.logs
    assert [entry["message"] for entry in seen] == ["n 0", "n 1", "n 2"]


def test_a_run_that_ends_after_its_eval(compile: Any) -> None:
    code = "await new Promise((r) => setTimeout(r, 20)); console.log('late'); return 'done';"
    sandbox = compile(FunctionSource("later", code, ()))
    result = run(sandbox, "later")
    assert result.result == "done" and [entry["message"] for entry in result.logs] == ["late"]


def test_an_outcome_too_big_for_the_mailbox(compile: Any) -> None:
    sandbox = compile(FunctionSource("big", "console.log('x'); return 'y'.repeat(200000);", ()))
    result = run(sandbox, "big")
    assert result.result == "y" * 200000 and len(result.logs) == 1


def test_a_failed_run(compile: Any) -> None:
    sandbox = compile(FunctionSource("oops", "console.log('before');\nthrow new TypeError('no');", ()))
    with pytest.raises(FunctionError) as info:
        run(sandbox, "oops")
    assert info.value.message == "TypeError: no" and [entry["message"] for entry in info.value.logs] == ["before"]


def test_a_timed_out_run_leaves_the_isolate_to_the_next(compile: Any) -> None:
    sandbox = compile(FunctionSource("spin", "console.log('spinning'); while (true) {}", ()), HELLO)
    with pytest.raises(TimeoutExceeded) as info:
        run(sandbox, "spin", limits=Limits(timeout=0.2, memory=64 << 20))
    assert [entry["message"] for entry in info.value.logs] == ["spinning"]
    assert run(sandbox).result == "Hello you" and not sandbox.broken


def test_a_run_whose_eval_fails_moves_to_a_fresh_isolate(compile: Any) -> None:
    # Work left behind calls the runtime itself: the next run's eval throws, and that error
    # reaches Python on both paths.
    code = "(async () => { for (let i = 0; i < 3; i++) await null; $fnbox.run(1e9, 0, '{}'); })(); return 1;"
    stall = FunctionSource("stall", "await new Promise(() => {});", ())
    sandbox = compile(stall, FunctionSource("hijack", code, ()), HELLO)
    assert run(sandbox, "hijack").result == 1
    assert run(sandbox).result == "Hello you" and not sandbox.broken


def test_runs_from_different_event_loops(compile: Any) -> None:
    sandbox = compile()
    assert run(sandbox).result == "Hello you"
    assert run(sandbox).result == "Hello you"  # a new loop: its own pipe
    answers: list[Any] = []

    def in_thread() -> None:
        answers.extend(asyncio.run(many(sandbox, 20)))

    threads = [threading.Thread(target=in_thread) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert answers == ["Hello you"] * 40


async def many(sandbox: JsSandbox | OverlappingJsSandbox, count: int) -> list[Any]:
    results = await asyncio.gather(*(sandbox.run("hello", {"name": "you"}, LIMITS) for _ in range(count)))
    return [result.result for result in results]


def test_queued_runs_each_get_their_turn_and_a_cancelled_one_passes_it_on(path: str) -> None:
    sandbox = compile_overlapping(
        [HELLO, FunctionSource("slow", "let t = Date.now(); while (Date.now() - t < 100) {}", ())]
    )

    async def main() -> list[Any]:
        slow = asyncio.create_task(sandbox.run("slow", {}, LIMITS))
        await asyncio.sleep(0.02)
        queued = [asyncio.create_task(sandbox.run("hello", {"name": str(i)}, LIMITS)) for i in range(8)]
        await asyncio.sleep(0.02)
        queued[0].cancel()
        queued[5].cancel()
        await slow
        done = await asyncio.gather(*queued, return_exceptions=True)
        return [each if isinstance(each, asyncio.CancelledError) else each.result for each in done]

    try:
        answers = asyncio.run(asyncio.wait_for(main(), 10))
    finally:
        sandbox.close()
    assert isinstance(answers[0], asyncio.CancelledError) and isinstance(answers[5], asyncio.CancelledError)
    assert [answers[i] for i in (1, 2, 3, 4, 6, 7)] == [f"Hello {i}" for i in (1, 2, 3, 4, 6, 7)]


def test_a_loops_pipe_is_closed_once_the_loop_is_gone() -> None:
    _drop_spare()
    fds: list[int] = []

    async def main() -> None:
        sandbox = compile_workspace([HELLO])
        assert sandbox._context.engine.native
        try:
            assert (await sandbox.run("hello", {"name": "you"}, LIMITS)).result == "Hello you"
        finally:
            sandbox.close()
        pipe = handoff.pipe_for(asyncio.get_running_loop())
        fds.extend((pipe.read_fd, pipe.write_fd))

    asyncio.run(main())
    gc.collect()
    for fd in fds:
        with pytest.raises(OSError):
            os.fstat(fd)


def test_mail_from_a_copy_reads_as_the_mailbox() -> None:
    text = "ab[1],\u00e9{...}xyz"
    header = struct.pack("<16i", 7, READY, 6, 6, 5, *([0] * 11))
    mail = Mail.from_copy(header + text.encode("utf-16-le"))
    assert mail == Mail(7, READY, "ab[1],", "\u00e9{...")
    held = Mail.from_copy(struct.pack("<16i", 8, HELD, 99, -3, 5, *([0] * 11)) + b"a\0")
    assert held == Mail(8, HELD, "a", None)  # lengths past the copy are clamped, as in the mailbox


def test_run_ids_go_round_within_the_mailbox(compile: Any) -> None:
    sandbox = compile()
    sandbox._run_ids = itertools.count(2**31 - 2)  # as after two billion runs
    assert [run(sandbox).result for _ in range(4)] == ["Hello you"] * 4


def test_a_full_pipe_hands_the_run_over_through_python() -> None:
    _drop_spare()
    sandbox = compile_workspace([HELLO])
    assert sandbox._context.engine.native

    async def main() -> Any:
        loop = asyncio.get_running_loop()
        pipe = handoff.pipe_for(loop)
        loop.remove_reader(pipe.read_fd)  # nothing reads it: the run can only end through Python
        empty = bytes(32)  # a record with no copy: read and dropped like a stale one
        while True:
            try:
                os.write(pipe.write_fd, empty)
            except BlockingIOError:
                break
        try:
            return (await sandbox.run("hello", {"name": "you"}, LIMITS)).result
        finally:
            loop.add_reader(pipe.read_fd, pipe.drain)

    try:
        assert asyncio.run(main()) == "Hello you"
        assert run(sandbox).result == "Hello you"
    finally:
        sandbox.close()
