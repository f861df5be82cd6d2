"""A worker takes the supervisor's frames however the pipe cuts them, and answers each call."""

from __future__ import annotations

import array
import asyncio
import fcntl
import json
import os
import subprocess
import sys
import termios
import time
from typing import Any

import pytest

from fnbox.sandboxes import protocol
from fnbox.sandboxes.pool import SandboxPool
from fnbox.sandboxes.worker import serve
from tests.fakes import FakeFactory

SOURCES = [
    {"name": name, "code": code, "parameters": []}
    for name, code in [("echo", "echo"), ("nap", "sleep 0.1"), ("talk", "talk 0.01"), ("followed", "followed")]
]


def _run(call: int, function: str = "echo", **extra: Any) -> dict[str, Any]:
    frame = {"op": "run", "id": call, "key": ["w", "javascript", "v1"], "function": function}
    return frame | {"parameters": {"call": call}, "limits": [1.0, 2**26], "sources": SOURCES} | extra


async def _serve(chunks: list[bytes], answers_wanted: int) -> list[dict[str, Any]]:
    """Send `chunks` to a worker's serve, one read each, and gather its frames until `answers_wanted` answers."""
    loop = asyncio.get_running_loop()
    request_read, request_write = os.pipe()
    answer_read, answer_write = os.pipe()
    answers = asyncio.StreamReader(limit=protocol.MAX_FRAME)
    answer_transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(answers), os.fdopen(answer_read, "rb", 0)
    )
    transport, stream_protocol = await loop.connect_write_pipe(
        asyncio.streams.FlowControlMixin, os.fdopen(answer_write, "wb", 0)
    )
    writer = protocol.FrameWriter(asyncio.StreamWriter(transport, stream_protocol, None, loop))
    pool = SandboxPool(factories={"javascript": FakeFactory()}, max_sandboxes=4, idle_timeout=60)
    tasks: dict[Any, asyncio.Task[None]] = {}
    serving = asyncio.ensure_future(serve(pool, os.fdopen(request_read, "rb", 0), writer, tasks))
    parser = protocol.FrameParser()
    received: list[dict[str, Any]] = []
    try:
        for chunk in chunks:
            os.write(request_write, chunk)
            await _read_whole(request_read)  # a read of its own
        while sum("op" not in m and not m.keys() & {"log", "waiting", "started"} for m in received) < answers_wanted:
            received += parser.feed(await asyncio.wait_for(answers.read(1 << 20), 5))
    finally:
        os.close(request_write)
        try:
            await serving
        finally:
            transport.close()
            answer_transport.close()
            await pool.close()
    assert tasks == {}
    return received


async def _read_whole(fd: int) -> None:
    """Until the worker has read all that the pipe `fd` holds (on a busy machine a pause of a few
    milliseconds may not be enough: the loop runs due timers before it reads)."""
    pending = array.array("i", [0])
    while True:
        fcntl.ioctl(fd, termios.FIONREAD, pending)
        if pending[0] == 0:
            return
        await asyncio.sleep(0.001)


def test_frames_cut_anywhere_between_reads_are_all_answered_in_order():
    data = b"".join(protocol.encode(_run(call)) for call in range(6))
    chunks = [data[start : start + 23] for start in range(0, len(data), 23)]  # headers and bodies cut alike
    received = asyncio.run(_serve(chunks, 6))
    answers = [message for message in received if "result" in message]  # reports of waits too, when loaded
    assert answers == [
        {"id": call, "result": {"result": {"call": call}, "logs": [], "duration": 0.1}} for call in range(6)
    ]


def test_several_frames_in_one_read_are_all_answered():
    data = b"".join(protocol.encode(_run(call)) for call in range(20))
    received = asyncio.run(_serve([data], 20))
    # Calls queued behind others may also say they wait and start (a slow machine makes them wait long enough).
    answers = [message for message in received if "result" in message]
    assert sorted(message["id"] for message in answers) == list(range(20))
    assert all(message["result"]["result"] == {"call": message["id"]} for message in answers)
    assert all(message.keys() <= {"id", "result", "waiting", "started"} for message in received)


def test_a_run_knows_whether_more_runs_for_its_sandbox_are_about_to_start():
    """What lets a JavaScript run on a free isolate go in one batch with the runs read behind it (js/sandbox.py)."""
    other = ["x", "javascript", "v1"]
    together = [
        _run(1, "followed"),  # run 3 is for its sandbox too
        _run(2, "followed", key=other),  # run 4 is for its sandbox too
        _run(3, "followed"),  # run 6 would have been, but it is cancelled before it starts
        _run(4, "followed", key=other),
        _run(6, "followed"),
        {"op": "cancel", "call": 6},
    ]
    chunks = [b"".join(protocol.encode(frame) for frame in together), protocol.encode(_run(5, "followed"))]
    received = asyncio.run(_serve(chunks, 6))
    answers = {message["id"]: message.get("result", {}).get("result", message.get("cancelled")) for message in received}
    assert answers == {1: True, 2: True, 3: False, 4: False, 5: False, 6: True}  # 6: cancelled


def test_a_cancel_right_behind_its_call_answers_cancelled_and_its_neighbours_run():
    data = protocol.encode(_run(1)) + protocol.encode(_run(2)) + protocol.encode({"op": "cancel", "call": 2})
    received = asyncio.run(_serve([data + protocol.encode(_run(3))], 3))
    assert {message["id"]: message.get("cancelled", False) for message in received} == {1: False, 2: True, 3: False}


def test_a_cancel_in_a_later_read_stops_a_running_call_and_one_for_no_call_is_ignored():
    chunks = [protocol.encode(_run(1, "nap")), protocol.encode({"op": "cancel", "call": 1})]
    received = asyncio.run(_serve([*chunks, protocol.encode({"op": "cancel", "call": 9})], 1))
    assert received == [{"id": 1, "cancelled": True}]


def test_a_queued_call_says_it_waits_then_starts_and_a_call_with_logs_sends_them_live():
    calls = [_run(1, "nap"), _run(2, "nap"), _run(3, "talk", logs=True)]
    received = asyncio.run(_serve([b"".join(map(protocol.encode, calls))], 3))
    assert [m for m in received if m["id"] == 2 and "result" not in m] == [
        {"id": 2, "waiting": True},
        {"id": 2, "started": True},
    ]
    logs = [m["log"]["message"] for m in received if m["id"] == 3 and "log" in m]
    assert logs == ["one", "two"]


def test_a_frame_over_the_cap_or_a_pipe_closed_inside_a_frame_ends_serving_with_a_protocol_error():
    with pytest.raises(protocol.ProtocolError, match="over the"):
        asyncio.run(_serve([(protocol.MAX_FRAME + 1).to_bytes(4, "big")], 0))
    with pytest.raises(protocol.ProtocolError, match="broken frame"):
        asyncio.run(_serve([protocol.encode(_run(1))[:-3]], 0))


def test_the_parser_gives_frames_as_they_complete_and_gathers_a_big_one():
    parser = protocol.FrameParser()
    data = protocol.encode({"id": 1}) + protocol.encode({"id": 2})
    out = [parser.feed(data[index : index + 1]) for index in range(len(data))]
    assert [messages for messages in out if messages] == [[{"id": 1}], [{"id": 2}]]
    parser.end()  # between frames: a clean close
    big = protocol.encode({"id": 3, "text": "x" * 1_000_000})
    pieces = [big[start : start + 4096] for start in range(0, len(big), 4096)]
    assert [message for piece in pieces for message in parser.feed(piece)] == [{"id": 3, "text": "x" * 1_000_000}]
    assert parser.feed(big[:6]) == []
    with pytest.raises(protocol.ProtocolError, match="broken frame"):
        parser.end()
    with pytest.raises(protocol.ProtocolError, match="not a JSON object"):
        protocol.FrameParser().feed(b"\x00\x00\x00\x03[1]")


def _worker() -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "fnbox.sandboxes.worker", "--language", "javascript"]
    command += [
        "--max-sandboxes",
        "4",
        "--idle-timeout",
        "60",
        "--max-queue",
        "8",
        "--factory",
        "tests.fakes:FakeFactory",
    ]
    return subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)


@pytest.mark.slow
def test_a_worker_process_answers_then_exits_when_the_supervisor_closes_the_pipe():
    with _worker() as worker:
        assert worker.stdin is not None and worker.stdout is not None
        frame = protocol.encode(_run(1))
        worker.stdin.write(frame[:7])
        worker.stdin.flush()
        time.sleep(0.05)  # the rest of the frame in a read of its own
        worker.stdin.write(frame[7:] + protocol.encode(_run(2)))
        worker.stdin.flush()
        answers = []
        while len(answers) < 2:
            length = int.from_bytes(worker.stdout.read(4), "big")
            frame = json.loads(worker.stdout.read(length))
            if "result" in frame:  # not a report that a call waits or starts (a loaded machine has them)
                answers.append(frame)
        worker.stdin.close()
        assert worker.wait(timeout=10) == 0
    assert [answer["id"] for answer in answers] == [1, 2]


@pytest.mark.slow
def test_a_worker_process_given_a_frame_over_the_cap_exits_with_an_error():
    with _worker() as worker:
        assert worker.stdin is not None
        worker.stdin.write((protocol.MAX_FRAME + 1).to_bytes(4, "big"))
        worker.stdin.flush()
        assert worker.wait(timeout=10) != 0
        worker.stdin.close()
