"""An ASGI guard that refuses request bodies over REQUEST_MAX_SIZE.

It checks the declared Content-Length first and then counts the bytes as they
arrive, so a chunked body cannot slip past the limit either.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fnbox.sandboxes.errors import PayloadTooLarge
from fnbox.server.responses import error_response

__all__ = ["BodySizeLimit", "declared_too_large", "too_large"]


class BodySizeLimit:
    def __init__(self, app: ASGIApp, *, max_size: int) -> None:
        self.app = app
        self.max_size = max_size

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if declared_too_large(dict(scope["headers"]).get(b"content-length"), self.max_size):
            await error_response(self._too_large())(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_size:
                    raise self._too_large()
            return message

        await self.app(scope, counting_receive, send)

    def _too_large(self) -> PayloadTooLarge:
        return too_large(self.max_size)


def declared_too_large(content_length: bytes | None, max_size: int) -> bool:
    """Whether a request's Content-Length (the raw header, if any) says its body is over `max_size`."""
    return content_length is not None and content_length.isdigit() and int(content_length) > max_size


def too_large(max_size: int) -> PayloadTooLarge:
    """The error of a request body over `max_size` bytes."""
    return PayloadTooLarge(
        f"the request body is over the {max_size} bytes allowed (REQUEST_MAX_SIZE)", details={"max_size": max_size}
    )
