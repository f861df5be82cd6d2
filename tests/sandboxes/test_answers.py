"""A worker's answers cut out of the chunks its pipe gives and handed on from the read callback, in order."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import pytest

from fnbox.sandboxes import answers, protocol

FRAMES = [protocol.encode({"id": index, "text": "é" * index * 100}) for index in range(40)]
DATA = b"".join(FRAMES)


@pytest.mark.parametrize("cut", [1, 3, 4, 5, 777, len(DATA)])
def test_frames_split_anywhere_between_chunks_come_out_whole_and_in_order(cut: int) -> None:
    parser = protocol.FrameParser()
    received: list[dict[str, Any]] = []
    for start in range(0, len(DATA), cut):
        received += parser.feed(DATA[start : start + cut])
    parser.end()
    assert [message["id"] for message in received] == list(range(40))
    assert received[7]["text"] == "é" * 700


def test_a_big_frame_in_many_chunks_comes_out_once_its_last_byte_is_in() -> None:
    big = protocol.encode({"id": 1, "result": "x" * 1_000_000})
    parser = protocol.FrameParser()
    pieces = [big[start : start + 65536] for start in range(0, len(big), 65536)]
    assert all(parser.feed(piece) == [] for piece in pieces[:-1])
    assert parser.feed(pieces[-1] + FRAMES[0]) == [{"id": 1, "result": "x" * 1_000_000}, {"id": 0, "text": ""}]


def test_a_frame_over_the_cap_is_refused_from_its_header_before_its_body_comes() -> None:
    header = (protocol.MAX_FRAME + 1).to_bytes(4, "big")
    parser = protocol.FrameParser()
    assert parser.feed(FRAMES[1] + header[:2]) == [{"id": 1, "text": "é" * 100}]
    with pytest.raises(protocol.ProtocolError, match="over the"):
        parser.feed(header[2:] + b"{")


@pytest.mark.parametrize("body", [b"[1]", b"{broken", b'"text"'])
def test_a_frame_that_is_not_a_json_object_is_refused(body: bytes) -> None:
    with pytest.raises(protocol.ProtocolError):
        protocol.FrameParser().feed(FRAMES[1] + len(body).to_bytes(4, "big") + body)


def test_a_pipe_closed_inside_a_frame_is_an_error_and_between_frames_is_not() -> None:
    parser = protocol.FrameParser()
    assert parser.feed(FRAMES[2] + FRAMES[3][:6]) == [{"id": 2, "text": "é" * 200}]
    with pytest.raises(protocol.ProtocolError, match="broken frame"):
        parser.end()
    parser = protocol.FrameParser()
    parser.feed(FRAMES[2])
    parser.end()


def _child(script: str) -> list[str]:
    """A process writing to its stdout what `script` writes through `put(bytes)` (flushed, a pause after each)."""
    prelude = "import os, sys, time\ndef put(data):\n    os.write(1, data)\n    time.sleep(0.02)\n"
    return [sys.executable, "-c", prelude + script]


def _answers_of(script: str) -> tuple[list[list[dict[str, Any]]], str | None, int | None]:
    async def scenario() -> tuple[list[list[dict[str, Any]]], str | None, int | None]:
        batches: list[list[dict[str, Any]]] = []
        process, ended = await answers.start_process(_child(script), batches.append)
        reason = await ended
        await process.wait()
        return batches, reason, process.returncode

    return asyncio.run(scenario())


@pytest.mark.slow  # a subprocess
def test_the_frames_of_a_worker_are_dispatched_from_the_read_callback_in_order() -> None:
    data = b"".join(FRAMES[:10])
    cut = len(b"".join(FRAMES[:3]))
    script = f"data = {data!r}\nput(data[:1]); put(data[1:{cut}] + data[{cut}:{cut}+2]); put(data[{cut}+2:])\n"
    batches, reason, status = _answers_of(script)
    received = [message["id"] for batch in batches for message in batch]
    assert (reason, status) == (None, 0)
    assert received == list(range(10))


@pytest.mark.slow  # a subprocess
def test_a_worker_dying_in_the_middle_of_an_answer_ends_its_answers_with_the_reason() -> None:
    script = f"put({FRAMES[4] + FRAMES[5][:9]!r}); os._exit(3)\n"
    batches, reason, status = _answers_of(script)
    assert batches == [[{"id": 4, "text": "é" * 400}]]
    assert reason is not None and "broken frame" in reason and status == 3


@pytest.mark.slow  # a subprocess
def test_a_read_breaking_the_protocol_has_nothing_dispatched_from_it_or_after() -> None:
    script = f"put({FRAMES[6] + b'{}{}' + FRAMES[7]!r}); put({FRAMES[8]!r})\n"
    batches, reason, _ = _answers_of(script)
    assert [message["id"] for batch in batches for message in batch] == []
    assert reason is not None and "over the" in reason


@pytest.mark.slow  # a subprocess
def test_frames_that_cannot_be_handed_on_end_the_answers_with_the_reason(caplog: pytest.LogCaptureFixture) -> None:
    batches: list[list[dict[str, Any]]] = []

    def hand_on(messages: list[dict[str, Any]]) -> None:
        batches.append(messages)
        raise KeyError("a bug of this side")

    async def scenario() -> str | None:
        script = f"put({FRAMES[1]!r}); put({FRAMES[2]!r})\n"
        process, ended = await answers.start_process(_child(script), hand_on)
        reason = await ended
        await process.wait()
        return reason

    with caplog.at_level("ERROR", logger="fnbox"):
        reason = asyncio.run(scenario())
    assert reason is not None and reason.startswith("its answers could not be handed on")
    assert len(batches) == 1 and batches[0][0] == {"id": 1, "text": "é" * 100}  # nothing after the failed one
    assert "could not be handed on" in caplog.text
