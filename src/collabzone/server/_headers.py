"""Security headers on every response, and which requests arrived over TLS.

The console is server-rendered HTML without scripts of its own, so a strict Content
Security Policy costs nothing: no foreign scripts, no framing (clickjacking), forms post
only back to the zone. Nothing the zone answers may be cached (tokens, results, audit
pages), so every response says ``Cache-Control: no-store`` unless a route chose a
policy itself. Browsers must not sniff JSON into HTML.

Behind a TLS-terminating proxy the zone sees plain HTTP; ``ProxyHeadersMiddleware``
(uvicorn's own) believes ``X-Forwarded-Proto`` / ``X-Forwarded-For`` only from the
addresses the operator configured as trusted proxies, and :func:`is_https` then tells the
console to mark its cookies ``Secure``.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = (
    "default-src 'none'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'"
)
HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
)
HSTS = (b"strict-transport-security", b"max-age=31536000")


class SecurityHeaders:
    """Add :data:`HEADERS` (and HSTS over TLS, ``no-store`` by default) to every answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tls = scope.get("scheme") == "https"

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                headers += [h for h in HEADERS if h[0] not in present]
                if b"cache-control" not in present:
                    headers.append((b"cache-control", b"no-store"))
                if tls and HSTS[0] not in present:
                    headers.append(HSTS)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


def is_https(request: Request) -> bool:
    """Whether the browser reached the zone over TLS (directly or via a trusted proxy)."""
    return request.url.scheme == "https"
