"""A worker gone bad writes what it likes on its pipe: the supervisor kills it, the call answers, the rest goes on.

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
from fnbox.sandboxes.supervisor import WorkerOptions, WorkerPool

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
