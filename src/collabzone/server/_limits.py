"""Request body size limits as a pure ASGI middleware (works for streamed bodies too)."""

from __future__ import annotations

import json
from collections.abc import Callable

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyTooLarge(HTTPException):
    """Raised inside the app when a streamed body passes its limit (an HTTP 413, so any
    layer that catches it answers the same way)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body over the {limit} byte limit: send less")


class BodyLimit:
    """Refuse bodies over ``default`` bytes (``upload`` for paths ``is_upload`` accepts)
    with 413, by declared Content-Length first and by counting streamed bytes after."""

    def __init__(
        self, app: ASGIApp, *, default: int, upload: int, is_upload: Callable[[str, str], bool]
    ) -> None:
        self.app = app
        self.default = default
        self.upload = upload
        self.is_upload = is_upload

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.upload if self.is_upload(scope["method"], scope["path"]) else self.default
        for key, value in scope.get("headers", []):
            if key == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared < 0 or declared > limit:
                    await _too_large(send, limit)
                    return
        seen = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await _too_large(send, limit)


async def _too_large(send: Send, limit: int) -> None:
    body = json.dumps(
        {
            "error": {
                "type": "InvalidInputError",
                "code": "TOO_LARGE",
                "message": f"request body over the {limit} byte limit: send less",
            }
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"connection", b"close")],
        }
    )
    await send({"type": "http.response.body", "body": body})
