"""A connection's writes of one event-loop turn leave together; closing sends what is queued."""

from __future__ import annotations

import asyncio
import socket

from fnbox.server.coalescing import FLUSH_AT, CoalescingTransport


class _Receiver(asyncio.Protocol):
    def __init__(self) -> None:
        self.received = bytearray()
        self.closed = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        self.received += data

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed.set_result(None)


async def _pair() -> tuple[CoalescingTransport, asyncio.Transport, _Receiver]:
    loop = asyncio.get_running_loop()
    left, right = socket.socketpair()
    sender, _ = await loop.connect_accepted_socket(asyncio.Protocol, left)
    receiver = _Receiver()
    reader, _ = await loop.connect_accepted_socket(lambda: receiver, right)
    return CoalescingTransport(sender), reader, receiver


def test_writes_of_one_turn_leave_at_its_end_in_order():
    async def scenario() -> tuple[int, int, bytes]:
        transport, reader, receiver = await _pair()
        transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
        transport.write(memoryview(b"body"))
        queued = transport.get_write_buffer_size()
        for _ in range(5):
            await asyncio.sleep(0)
        await asyncio.sleep(0.05)
        left = transport.get_write_buffer_size()
        transport.close()
        reader.close()
        return queued, left, bytes(receiver.received)

    queued, left, received = asyncio.run(scenario())
    assert queued == len(b"HTTP/1.1 200 OK\r\n\r\nbody") and left == 0
    assert received == b"HTTP/1.1 200 OK\r\n\r\nbody"


def test_close_sends_what_is_queued_and_a_large_write_leaves_at_once():
    async def scenario() -> tuple[int, bytes]:
        transport, reader, receiver = await _pair()
        transport.write(b"x" * FLUSH_AT)
        queued_after_large = transport.get_write_buffer_size()
        transport.write(b"last")
        transport.close()
        await asyncio.wait_for(receiver.closed, 5)
        reader.close()
        return queued_after_large, bytes(receiver.received)

    queued_after_large, received = asyncio.run(scenario())
    assert queued_after_large < FLUSH_AT  # handed to the socket, not held for the end of the turn
    assert received == b"x" * FLUSH_AT + b"last"


def test_abort_drops_what_is_queued():
    async def scenario() -> bytes:
        transport, reader, receiver = await _pair()
        transport.write(b"never")
        transport.abort()
        await asyncio.wait_for(receiver.closed, 5)
        reader.close()
        return bytes(receiver.received)

    assert asyncio.run(scenario()) == b""
