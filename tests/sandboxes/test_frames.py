"""Frames queued in one event-loop turn reach the other side of the pipe in order."""

from __future__ import annotations

import asyncio
import os

from fnbox.sandboxes import protocol
from fnbox.sandboxes.base import MAX_KEPT_LIMITS


async def _pipe() -> tuple[protocol.FrameWriter, asyncio.StreamReader, asyncio.WriteTransport]:
    loop = asyncio.get_running_loop()
    read_fd, write_fd = os.pipe()
    reader = asyncio.StreamReader(limit=protocol.MAX_FRAME)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(read_fd, "rb", 0))
    transport, stream_protocol = await loop.connect_write_pipe(
        asyncio.streams.FlowControlMixin, os.fdopen(write_fd, "wb", 0)
    )
    writer = asyncio.StreamWriter(transport, stream_protocol, None, loop)
    return protocol.FrameWriter(writer), reader, transport


def test_frames_of_one_turn_arrive_in_order_and_a_flush_sends_at_once():
    async def scenario() -> tuple[list[dict[str, object]], int]:
        frames, reader, transport = await _pipe()
        frames.write(protocol.encode({"op": "run", "id": 1}))
        frames.write(protocol.encode({"op": "cancel", "call": 1}))
        frames.flush()
        left = transport.get_write_buffer_size()
        frames.write(protocol.encode({"id": 2, "result": "Hello"}))
        await frames.drain()  # small: it leaves at the end of the turn
        received = [await protocol.read(reader) for _ in range(3)]
        transport.close()
        return [message for message in received if message is not None], left

    received, left = asyncio.run(scenario())
    assert left == 0
    assert received == [{"op": "run", "id": 1}, {"op": "cancel", "call": 1}, {"id": 2, "result": "Hello"}]


def test_frames_past_at_most_leave_at_once_and_the_rest_at_the_end_of_the_turn():
    async def scenario() -> tuple[list[int], list[dict[str, object]]]:
        loop = asyncio.get_running_loop()
        read_fd, write_fd = os.pipe()
        transport, stream_protocol = await loop.connect_write_pipe(
            asyncio.streams.FlowControlMixin, os.fdopen(write_fd, "wb", 0)
        )
        frames = protocol.FrameWriter(asyncio.StreamWriter(transport, stream_protocol, None, loop), at_most=2)
        os.set_blocking(read_fd, False)

        def arrived() -> list[int]:
            try:
                return [message["id"] for message in protocol.FrameParser().feed(os.read(read_fd, 1 << 16)) or []]
            except BlockingIOError:  # nothing in the pipe yet
                return []

        sent = []
        for call in range(1, 6):
            frames.write(protocol.encode({"op": "run", "id": call}))
            sent.append(arrived())
        await asyncio.sleep(0)  # the end of the turn
        last = arrived()
        transport.close()
        os.close(read_fd)
        return sent, last

    sent, last = asyncio.run(scenario())
    assert sent == [[], [1, 2], [], [3, 4], []]  # every second frame sends the pair in one write
    assert last == [5]


def test_a_large_frame_is_drained():
    async def scenario() -> int:
        frames, reader, transport = await _pipe()
        frames.write(protocol.encode({"id": 1, "result": "x" * (2 * protocol.FrameWriter.DRAIN_AT)}))
        reading = asyncio.ensure_future(protocol.read(reader))
        await frames.drain()
        message = await reading
        transport.close()
        assert message is not None
        return len(str(message["result"]))

    assert asyncio.run(scenario()) == 2 * protocol.FrameWriter.DRAIN_AT


def test_a_run_cancelled_in_the_read_that_brought_it_answers_cancelled():
    from fnbox.sandboxes.pool import SandboxPool
    from fnbox.sandboxes.worker import serve
    from tests.fakes import FakeFactory

    async def scenario() -> list[dict[str, object]]:
        frames, answers, transport = await _pipe()
        pool = SandboxPool(factories={"javascript": FakeFactory()}, max_sandboxes=4, idle_timeout=60)
        read_fd, write_fd = os.pipe()
        run = {"op": "run", "id": 7, "key": ["w", "javascript", "v1"], "function": "echo", "parameters": {}}
        run |= {"limits": [1.0, 2**26], "sources": [{"name": "echo", "code": "echo", "parameters": []}]}
        os.write(write_fd, protocol.encode(run) + protocol.encode({"op": "cancel", "call": 7}))
        os.close(write_fd)
        await serve(pool, os.fdopen(read_fd, "rb", 0), frames, {})
        await asyncio.sleep(0.05)
        received = protocol.FrameParser().feed(await answers.read(1 << 20))
        transport.close()
        await pool.close()
        return received or []

    assert asyncio.run(scenario()) == [{"id": 7, "cancelled": True}]


def test_limits_read_from_frames_are_their_values_and_kept_few():
    base = protocol.limits_from_json([30.0, 128 * 2**20])
    assert (base.timeout, base.memory) == (30.0, 128 * 2**20)
    assert protocol.limits_from_json([30, 128 * 2**20]) == base  # an int timeout reads as the same limits
    for timeout in range(2 * MAX_KEPT_LIMITS):  # a caller sending ever new values
        limits = protocol.limits_from_json([timeout / 7, timeout])
        assert (limits.timeout, limits.memory) == (timeout / 7, timeout)
    assert len(protocol._LIMITS) <= MAX_KEPT_LIMITS
