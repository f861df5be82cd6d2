"""A worker gone bad writes what it likes on its pipe: the supervisor kills it, the call answers, the rest goes on.

Calls leave for a worker in groups within a turn of the loop; a hostile call inside a group,
or calls cancelled while their group is on its way, leave every neighbour its own answer.

Each payload is written on a worker's stdout by a fake sandbox (as code that reached the
pipe would), among the answers of other calls. The call answers SandboxCrashed, the worker
is killed and restarted, and a healthy call of another workspace gets its answer; nothing
of the payload reaches any caller.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from fnbox.sandboxes import protocol
from fnbox.sandboxes.base import FunctionSource, Limits
from fnbox.sandboxes.errors import SandboxCrashed
from fnbox.sandboxes.pool import SandboxKey
from fnbox.sandboxes.supervisor import FRAMES_AT_ONCE, WorkerOptions, WorkerPool

pytestmark = pytest.mark.slow  # worker processes

LIMITS = Limits(timeout=5.0, memory=2**26)


def _frame(body: bytes) -> bytes:
    return len(body).to_bytes(4, "big") + body


PAYLOADS = {
    "over the cap": (protocol.MAX_FRAME + 1).to_bytes(4, "big") + b"{",
    "the largest length": b"\xff\xff\xff\xff" + b"{}",
    "not JSON": _frame(b"{{{{{"),
    "an array": _frame(b"[1, 2]"),
    "a string": _frame(b'"answer"'),
    "empty": _frame(b""),
    "not UTF-8": _frame(b'{"id": "\xff\xfe"}'),
    "nested past recursion": _frame(b"[" * 20_000 + b"]" * 20_000),
    "a lone surrogate escape": _frame(b'{"id": 0, "result": "\\ud800"}') + _frame(b"]"),
    "a frame, then garbage": _frame(b'{"id": 999999, "result": {"result": 1}}') + b"\x00\x00\x00\x05[[[[[",
}


@pytest.fixture(autouse=True)
def workers_find_the_fakes(monkeypatch: pytest.MonkeyPatch) -> None:
    root = str(Path(__file__).resolve().parents[2])
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))


@pytest.mark.parametrize("name", list(PAYLOADS))
def test_a_worker_breaking_the_frames_is_killed_and_its_neighbours_go_on(name: str) -> None:
    bad = [FunctionSource(name="bad", code="frame " + PAYLOADS[name].hex())]
    fine = [FunctionSource(name="fine", code="fine")]

    async def scenario() -> tuple[str, str, str]:
        pool = WorkerPool(WorkerOptions(workers=2, languages=("javascript",), factory="tests.fakes:FakeFactory"))
        await pool.start()
        try:
            others = [
                pool.run(SandboxKey(f"other{index}", "javascript", "v1"), fine, "fine", {}, LIMITS)
                for index in range(4)
            ]
            before = [answer.result for answer in await asyncio.gather(*others)]
            with pytest.raises(SandboxCrashed) as crashed:
                await asyncio.wait_for(pool.run(SandboxKey("bad", "javascript", "v1"), bad, "bad", {}, LIMITS), 10)
            others = [
                pool.run(SandboxKey(f"other{index}", "javascript", "v1"), fine, "fine", {}, LIMITS)
                for index in range(4)
            ]
            after = [answer.result for answer in await asyncio.gather(*others)]
            return crashed.value.message, str(before), str(after)
        finally:
            await pool.close()

    message, before, after = asyncio.run(scenario())
    assert before == after == str(["fine"] * 4)
    assert "died" in message


ECHO = [FunctionSource(name="echo", code="echo"), FunctionSource(name="doze", code="sleep 0.4")]


def _one_worker() -> WorkerPool:
    return WorkerPool(WorkerOptions(workers=1, languages=("javascript",), factory="tests.fakes:FakeFactory"))


def test_a_worker_broken_by_a_call_in_the_middle_of_a_group_of_frames_fails_that_call_alone() -> None:
    bad = [FunctionSource(name="bad", code="frame " + PAYLOADS["not JSON"].hex())]
    sent = 2 * FRAMES_AT_ONCE + 1

    async def scenario() -> tuple[list[object], str]:
        pool = _one_worker()
        await pool.start()
        try:
            calls = [
                asyncio.ensure_future(
                    pool.run(SandboxKey(f"n{index}", "javascript", "v1"), ECHO, "echo", {"n": index}, LIMITS)
                )
                for index in range(sent)
            ]
            calls.insert(
                FRAMES_AT_ONCE + 1,
                asyncio.ensure_future(  # inside the second group
                    pool.run(SandboxKey("bad", "javascript", "v1"), bad, "bad", {}, LIMITS)
                ),
            )
            outcomes = await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), 20)
            crashed = outcomes.pop(FRAMES_AT_ONCE + 1)
            assert isinstance(crashed, SandboxCrashed), crashed
            return [getattr(outcome, "result", outcome) for outcome in outcomes], crashed.message
        finally:
            await pool.close()

    answers, message = asyncio.run(scenario())
    assert answers == [{"n": index} for index in range(sent)]  # each its own, none lost
    assert "died" in message


def test_calls_cancelled_while_their_group_of_frames_is_on_its_way_never_take_a_neighbours_answer() -> None:
    async def scenario() -> tuple[list[object], int, int]:
        pool = _one_worker()
        await pool.start()
        try:
            (worker,) = pool.worker_pids("javascript")
            calls = []
            for index in range(4 * FRAMES_AT_ONCE):
                function, parameters = ("doze", {}) if index % 2 else ("echo", {"n": index})
                key = SandboxKey(f"w{index % 3}", "javascript", "v1")
                calls.append(asyncio.ensure_future(pool.run(key, ECHO, function, parameters, LIMITS)))
            await asyncio.sleep(0)  # every frame written: the groups of this turn have left or are queued
            for index, call in enumerate(calls):
                if index % 2:
                    call.cancel()
            outcomes = await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), 20)
            after = await pool.run(SandboxKey("w0", "javascript", "v1"), ECHO, "echo", {"n": "after"}, LIMITS)
            assert after.result == {"n": "after"}
            return (
                [getattr(outcome, "result", type(outcome).__name__) for outcome in outcomes],
                worker,
                pool.worker_pids("javascript")[0],
            )
        finally:
            await pool.close()

    outcomes, before, after = asyncio.run(scenario())
    assert outcomes == ["CancelledError" if index % 2 else {"n": index} for index in range(4 * FRAMES_AT_ONCE)]
    assert before == after  # the cancels reached their runs in time: no worker was killed for them
