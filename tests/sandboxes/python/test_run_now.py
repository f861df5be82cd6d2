"""Python runs a worker makes in the read that brought their frames (worker.Calls with `at_once`,
SandboxPool.run_now, PythonSandbox.run_now): no task for them, the same answers as through one."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest

from fnbox.sandboxes import protocol
from fnbox.sandboxes.base import FunctionSource, Limits, Parameter
from fnbox.sandboxes.languages import sandbox_factory
from fnbox.sandboxes.pool import SandboxKey, SandboxPool
from fnbox.sandboxes.python.inline import INLINE_AFTER, INLINE_HOLD
from fnbox.sandboxes.worker import Calls

KEY = SandboxKey("w", "python", "v1")
OTHER = SandboxKey("other", "python", "v1")
LIMITS = [2.0, 64 * 2**20]
SOURCES = [
    FunctionSource("hello", 'return "Hello " + name', (Parameter("name"),)),
    FunctionSource("fails", "return 1 / 0", ()),
    FunctionSource("talks", "print('hi')\nreturn 2", ()),
    # Short until told otherwise: past INLINE_HOLD, then it is stopped and made again on a thread.
    FunctionSource("long", "t = 0\nfor i in range(n):\n    t += i\nreturn t", (Parameter("n"),)),
]


pytestmark = pytest.mark.usefixtures("inline_runs")  # (conftest.py)


class Worker:
    """A worker's reading of frames (Calls), on a real pool of Python sandboxes, writing its
    frames to a real pipe whose other end the test reads as it likes."""

    def __init__(self, *, at_once: bool = True) -> None:
        self.pool = SandboxPool(factories={"python": sandbox_factory("python")}, max_sandboxes=4, idle_timeout=60)
        self.at_once = at_once
        self.data = bytearray()
        self.tasks: dict[Any, asyncio.Task[None]] = {}

    async def __aenter__(self) -> Worker:
        loop = asyncio.get_running_loop()
        self._answers, write_end = os.pipe()
        os.set_blocking(self._answers, False)
        self._transport, stream = await loop.connect_write_pipe(
            asyncio.streams.FlowControlMixin, os.fdopen(write_end, "wb", 0)
        )
        self.writer = protocol.FrameWriter(asyncio.StreamWriter(self._transport, stream, None, loop))
        self.calls = Calls(self.pool, self.writer, self.tasks, at_once=self.at_once)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._transport.close()
        await self.pool.close()
        os.close(self._answers)

    def frames(self) -> list[dict[str, Any]]:
        """Every frame the worker wrote so far."""
        try:
            while chunk := os.read(self._answers, 1 << 20):
                self.data += chunk
        except BlockingIOError:
            pass
        return protocol.FrameParser().feed(bytes(self.data))

    async def warm(self, key: SandboxKey = KEY) -> None:
        """Compile the workspace, and make its runs short enough for the loop thread."""
        for _ in range(INLINE_AFTER):
            result = await self.pool.run(key, SOURCES, "hello", {"name": "x"}, protocol.limits_from_json(LIMITS))
            assert result.result == "Hello x"

    def read(self, *messages: dict[str, Any]) -> None:
        self.calls.data_received(b"".join(protocol.encode(message) for message in messages))

    async def answers(self, count: int) -> list[dict[str, Any]]:
        """The first `count` answers (reports left out), once written."""
        for _ in range(500):
            answers = [frame for frame in self.frames() if frame.keys() & {"result", "error", "cancelled"}]
            if len(answers) >= count:
                return answers
            await asyncio.sleep(0.01)
        raise AssertionError(f"{count} answers expected, got {self.frames()}")


def run(call: int, function: str = "hello", **extra: Any) -> dict[str, Any]:
    parameters = {"name": f"n{call}"} if function == "hello" else {}
    return (
        {"op": "run", "id": call, "key": list(KEY), "function": function, "parameters": parameters}
        | {"limits": LIMITS}
        | extra
    )


def test_runs_read_together_are_answered_in_the_read_in_order_without_a_task() -> None:
    async def scenario() -> None:
        async with Worker() as worker:
            await worker.warm()
            worker.read(*(run(call) for call in range(5)))
            assert worker.tasks == {}  # none made: each run was made as it was read
            worker.writer.flush()  # what the read queued, with no turn of the loop since
            answers = [frame for frame in worker.frames() if "result" in frame]  # ("started" if the read was late)
            assert [(answer["id"], answer["result"]["result"]) for answer in answers] == [
                (call, f"Hello n{call}") for call in range(5)
            ]

    asyncio.run(scenario())


def test_without_at_once_each_run_gets_a_task_and_the_same_answer() -> None:
    async def scenario() -> None:
        async with Worker(at_once=False) as worker:
            await worker.warm()
            worker.read(run(1))
            assert list(worker.tasks) == [1]
            answers = await worker.answers(1)
            assert answers[0]["result"]["result"] == "Hello n1"

    asyncio.run(scenario())


def test_a_failing_run_in_the_read_answers_its_error_and_the_next_frame_is_still_answered() -> None:
    async def scenario() -> None:
        async with Worker() as worker:
            await worker.warm()
            worker.read(run(1, "fails"), run(2), run(3, "missing"))
            answers = await worker.answers(3)
            assert answers[0]["id"] == 1 and answers[0]["error"]["error"] == "FunctionError"
            assert "ZeroDivisionError" in answers[0]["error"]["message"]
            assert answers[1] == {
                "id": 2,
                "result": {"result": "Hello n2", "logs": [], "duration": answers[1]["result"]["duration"]},
            }
            # An unknown function goes through a task, whose run says why (one owner of that error).
            assert answers[2]["id"] == 3 and answers[2]["error"]["error"] == "NotFound"

    asyncio.run(scenario())


def test_runs_that_follow_their_logs_or_find_no_warm_sandbox_go_through_a_task() -> None:
    async def scenario() -> None:
        async with Worker() as worker:
            sources = protocol.sources_to_json(SOURCES)
            worker.read(run(1, sources=sources))  # cold: compiled first, in a task
            assert list(worker.tasks) == [1]
            await worker.answers(1)
            await worker.warm()
            worker.read(run(2, "talks", logs=True))
            assert list(worker.tasks) == [2]
            frames = [frame for frame in (await worker.answers(2) and worker.frames()) if frame.get("id") == 2]
            assert [frame["log"]["message"] for frame in frames if "log" in frame] == ["hi"]
            assert frames[-1]["result"]["result"] == 2

    asyncio.run(scenario())


def test_a_cancel_in_the_same_read_as_a_run_made_at_once_finds_it_answered() -> None:
    async def scenario() -> None:
        async with Worker() as worker:
            await worker.warm()
            worker.read(run(1), {"op": "cancel", "call": 1}, run(2))
            await worker.answers(2)
            await asyncio.sleep(0.05)
            answers = await worker.answers(2)
            assert [(answer["id"], answer["result"]["result"]) for answer in answers] == [
                (1, "Hello n1"),
                (2, "Hello n2"),
            ]

    asyncio.run(scenario())


def test_a_run_stopped_at_the_hold_in_the_read_is_made_again_through_a_task_on_a_thread() -> None:
    async def scenario() -> None:
        async with Worker() as worker:
            await worker.warm(KEY)
            await worker.warm(OTHER)
            long = run(1, "long", parameters={"n": 10**9})  # far longer than INLINE_HOLD, stopped at its timeout
            worker.read(long, run(2, key=list(OTHER)))
            assert list(worker.tasks) == [1]  # stopped in the read and given to a task; the other made at once
            answers = await worker.answers(2)
            assert [answer["id"] for answer in answers] == [2, 1]
            assert answers[0]["result"]["result"] == "Hello n2"
            assert answers[1]["error"]["error"] == "TimeoutExceeded"
            assert answers[1]["error"]["duration"] >= 1000 * LIMITS[0] - 50  # its whole timeout, on a thread
            worker.read(run(3))
            assert list(worker.tasks) == [3]  # that sandbox's runs go to threads from then on
            assert (await worker.answers(3))[2]["result"]["result"] == "Hello n3"

    asyncio.run(scenario())


def test_the_pool_makes_nothing_at_once_for_a_sandbox_another_call_is_using() -> None:
    async def scenario() -> None:
        pool = SandboxPool(factories={"python": sandbox_factory("python")}, max_sandboxes=4, idle_timeout=60)
        limits = Limits(timeout=2.0, memory=64 * 2**20)
        for _ in range(INLINE_AFTER):
            await pool.run(KEY, SOURCES, "hello", {"name": "x"}, limits)
        started: list[str] = []
        now = pool.run_now(KEY, "hello", {"name": "a"}, limits, label="call-1", on_start=lambda: started.append("a"))
        assert now is not None and now.result == "Hello a" and started == ["a"]
        # A run whose logs are followed goes to a thread: in flight while the loop goes on.
        slow = asyncio.ensure_future(pool.run(KEY, SOURCES, "long", {"n": 10**9}, limits, on_log=lambda entry: None))
        await asyncio.sleep(INLINE_HOLD * 4)
        assert not slow.done()
        later = pool.run_now(KEY, "hello", {"name": "b"}, limits, label="call-2", on_start=lambda: started.append("b"))
        assert later is None and started == ["a"]  # nothing done: `run` makes it, after the one in flight
        assert pool.run_now(SandboxKey("cold", "python", "v1"), "hello", {"name": "c"}, limits, label=None) is None
        slow.cancel()
        await asyncio.gather(slow, return_exceptions=True)
        await pool.close()

    asyncio.run(scenario())
