"""CollabzoneError <-> HTTP: one JSON shape for every failure, mapped back by the client.

``{"error": {"type": "PolicyRefusal", "code": "REFUSED", "message": "...", "reasons": [...]}}``
with the status from ``errors.ERROR_CATALOGUE``. Validation errors never echo input values.
Under ``/console`` the same failures are HTML pages (a browser never shows raw JSON).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import asdict
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute

from collabzone.errors import CollabzoneError, PolicyRefusal, error_info

log = logging.getLogger("collabzone.server")
HTML_HEADERS = {"location", "retry-after", "allow"}
"""Headers an error page keeps from the API's answer (the redirect to sign in, back-off)."""


def error_body(error: CollabzoneError) -> dict[str, Any]:
    """The JSON document describing ``error``."""
    doc: dict[str, Any] = {
        "type": type(error).__name__,
        "code": error.code,
        "message": error.message,
    }
    if isinstance(error, PolicyRefusal):
        doc["reasons"] = [asdict(r) for r in error.reasons]
    return {"error": doc}


def error_response(error: CollabzoneError, headers: dict[str, str] | None = None) -> JSONResponse:
    status = error_info(error).http_status
    extra = dict(headers or {})
    if status == 401:
        extra.setdefault("WWW-Authenticate", 'Bearer realm="collabzone"')
    return JSONResponse(error_body(error), status_code=status, headers=extra)


def _plain(status: int, type_: str, code: str, message: str) -> JSONResponse:
    return JSONResponse(
        {"error": {"type": type_, "code": code, "message": message}}, status_code=status
    )


def render(exc: Exception) -> JSONResponse:
    """The response for an error raised outside the routes (middleware)."""
    if isinstance(exc, CollabzoneError):
        return error_response(exc)
    if isinstance(exc, StarletteHTTPException):
        response = _plain(exc.status_code, "HTTPError", f"HTTP_{exc.status_code}", str(exc.detail))
        for key, value in (exc.headers or {}).items():
            response.headers[key] = value
        return response
    log.exception("unexpected error", exc_info=exc)
    return _plain(500, "InternalError", "INTERNAL", "internal error: see the server log")


def _for_browser(request: Request, response: JSONResponse) -> Response:
    """``response`` itself, or under ``/console`` the same status and message as a page."""
    from collabzone.server import _console_base  # the console imports the API: import late

    if not _console_base.is_console(request):
        return response
    error = json.loads(bytes(response.body))["error"]
    headers = {k: v for k, v in response.headers.items() if k.lower() in HTML_HEADERS}
    return _console_base.error_page(request, response.status_code, error["message"], headers)


def _leaves(routes: Iterable[BaseRoute]) -> Iterator[BaseRoute]:
    """Every endpoint route, looking inside included routers (FastAPI keeps an included
    router as one entry holding the original router)."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from _leaves(inner.routes)
        else:
            yield route


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path (Starlette's own 405 names only the
    first route that matched the path, not its siblings with other methods)."""
    matching = [
        route
        for route in _leaves(request.app.router.routes)
        if getattr(route, "path_regex", None) is not None
        and route.path_regex.match(request.url.path)  # type: ignore[attr-defined]
    ]
    # a literal path (/v1/datasets/registered) is its own resource, not a value of a
    # sibling's parameter (/v1/datasets/{name}): name the literal route's methods only
    literal = [r for r in matching if "{" not in getattr(r, "path", "{")]
    methods: set[str] = set()
    for route in literal or matching:
        methods |= set(getattr(route, "methods", None) or ())
    return sorted(methods)


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""

    @app.exception_handler(CollabzoneError)
    async def _collabzone(request: Request, exc: CollabzoneError) -> Response:
        return _for_browser(request, error_response(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        problems = [
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', 'invalid')}"
            for e in exc.errors()[:10]
        ]
        return _for_browser(
            request, _plain(422, "InvalidInputError", "INVALID_INPUT", "; ".join(problems))
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        response = _plain(exc.status_code, "HTTPError", f"HTTP_{exc.status_code}", str(exc.detail))
        for key, value in (exc.headers or {}).items():
            response.headers[key] = value
        if exc.status_code == 405:
            response.headers["Allow"] = ", ".join(allowed_methods(request))
        return _for_browser(request, response)

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error", exc_info=exc)
        return _for_browser(
            request, _plain(500, "InternalError", "INTERNAL", "internal error: see the server log")
        )
