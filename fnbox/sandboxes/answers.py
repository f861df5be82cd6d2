"""A worker process whose answers are handed on from the pipe's read callback.

Read through a `StreamReader` and a reader task, an answer takes three turns of the event
loop to reach the call waiting for it (the data wakes the task, the task sets the call's
future, the future wakes the call). Here the frames are cut and dispatched in the read
callback itself, so the call waiting for an answer runs in the very next turn. The frames
of one read are dispatched in the order they were sent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any

from fnbox.sandboxes import protocol

__all__ = ["AnswerProtocol", "start_process"]

logger = logging.getLogger("fnbox")

#: Dispatches the frames of one read of the worker's stdout, in order.
OnFrames = Callable[[list[dict[str, Any]]], None]


class AnswerProtocol(asyncio.subprocess.SubprocessStreamProtocol):
    """The protocol of a worker process: its stdout's frames go to `on_frames` as they are read.

    `ended` is set once no frame will come any more: to None when the worker closed its
    stdout between frames, else to the reason to kill it (it broke the protocol, or its
    answers could not be handed on); nothing it sends after that is dispatched.
    """

    def __init__(self, on_frames: OnFrames, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(limit=protocol.MAX_FRAME, loop=loop)
        self._on_frames = on_frames
        self._parser = protocol.FrameParser()
        self.ended: asyncio.Future[str | None] = loop.create_future()

    def pipe_data_received(self, fd: int, data: bytes | str) -> None:
        if fd != 1:
            super().pipe_data_received(fd, data)
            return
        if self.ended.done():
            return
        try:
            messages = self._parser.feed(data if isinstance(data, bytes) else data.encode())
        except protocol.ProtocolError as exc:
            self.ended.set_result(f"broke the protocol: {exc}")
            return
        if messages:
            try:
                self._on_frames(messages)
            except Exception as exc:  # a fault of this side: the worker is replaced, its calls tried again
                logger.exception("the answers of a worker could not be handed on")
                self.ended.set_result(f"its answers could not be handed on ({exc!r})")

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        super().pipe_connection_lost(fd, exc)
        if fd != 1 or self.ended.done():
            return
        try:
            self._parser.end()
        except protocol.ProtocolError as error:
            self.ended.set_result(f"broke the protocol: {error}")
            return
        self.ended.set_result(None)


async def start_process(
    command: Sequence[str], on_frames: OnFrames
) -> tuple[asyncio.subprocess.Process, asyncio.Future[str | None]]:
    """Start `command` with pipes for stdin and stdout in a session of its own; see AnswerProtocol."""
    loop = asyncio.get_running_loop()
    answers = AnswerProtocol(on_frames, loop)
    transport, _ = await loop.subprocess_exec(
        lambda: answers,
        *command,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=None,
        start_new_session=True,
    )
    return asyncio.subprocess.Process(transport, answers, loop), answers.ended
