"""Request body limits as pure ASGI middleware (works for streamed bodies too).

:class:`BodyLimit` caps every body. :class:`UploadGate` stands in front of dataset uploads:
it authorises the bearer token *before* one byte of the body is read (FastAPI would parse
and spool a multipart body before running the route's dependencies) and charges the
party's upload quota, so neither an anonymous client nor a runaway party can fill the
disk.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import anyio.to_thread
from fastapi import HTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from collabzone.errors import CollabzoneError


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


class QuotaExceeded(HTTPException):
    """HTTP 429: the party uploaded its quota for the current window."""

    def __init__(self, quota: int, window: float, wait: float) -> None:
        super().__init__(
            429,
            f"upload quota reached ({quota} bytes per {window:g} s for this party): "
            "retry later or ask the operator for a larger --upload-quota",
            headers={"Retry-After": str(max(1, round(wait + 0.5)))},
        )


class UploadQuota:
    """Bytes each party may upload per ``window`` seconds (kept in the server's memory)."""

    def __init__(
        self, quota: int, window: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.quota = quota
        self.window = window
        self._clock = clock
        self._used: dict[str, list[tuple[float, int]]] = {}
        self._lock = threading.Lock()

    def charge(self, party: str, size: int) -> None:
        """Count ``size`` bytes for ``party``; QuotaExceeded (nothing counted) if over."""
        now = self._clock()
        with self._lock:
            used = [(t, n) for t, n in self._used.get(party, []) if now - t < self.window]
            if sum(n for _, n in used) + size > self.quota:
                wait = self.window - (now - used[0][0]) if used else self.window
                self._used[party] = used
                raise QuotaExceeded(self.quota, self.window, wait)
            self._used[party] = [*used, (now, size)]


Authorise = Callable[[str | None, str], Any]
"""(bearer token, client address) -> the caller's party name; raises on refusal."""


class UploadGate:
    """Authorise and charge an upload from its headers alone, before reading its body.

    ``authorise`` runs in a worker thread (it may touch the database); any refusal is
    answered with the usual error document and ``Connection: close``, without reading
    the body. The quota is charged with the declared Content-Length, or, for a chunked
    body, chunk by chunk as it streams.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        is_upload: Callable[[str, str], bool],
        authorise: Authorise,
        quota: UploadQuota,
        render: Callable[[Exception], Response],
    ) -> None:
        self.app = app
        self.is_upload = is_upload
        self.authorise = authorise
        self.quota = quota
        self.render = render

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.is_upload(scope["method"], scope["path"]):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        token = _bearer(headers.get("authorization"))
        client = scope["client"][0] if scope.get("client") else ""
        declared = headers.get("content-length")
        try:
            party = await anyio.to_thread.run_sync(self.authorise, token, client)
            if declared is not None and declared.isdigit():
                self.quota.charge(party, int(declared))
        except (CollabzoneError, HTTPException) as exc:
            await self._refuse(exc, scope, receive, send)
            return
        if declared is not None and declared.isdigit():
            await self.app(scope, receive, send)
            return

        async def charging_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                self.quota.charge(party, len(message.get("body", b"")))
            return message

        try:
            await self.app(scope, charging_receive, send)
        except QuotaExceeded as exc:
            await self._refuse(exc, scope, receive, send)

    async def _refuse(self, exc: Exception, scope: Scope, receive: Receive, send: Send) -> None:
        response = self.render(exc)
        response.headers["connection"] = "close"  # the unread body is not worth draining
        await response(scope, receive, send)


def _bearer(header: str | None) -> str | None:
    scheme, _, token = (header or "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None
