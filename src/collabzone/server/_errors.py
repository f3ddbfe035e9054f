"""CollabzoneError <-> HTTP: one JSON shape for every failure, mapped back by the client.

``{"error": {"type": "PolicyRefusal", "code": "REFUSED", "message": "...", "reasons": [...]}}``
with the status from ``errors.ERROR_CATALOGUE``. Validation errors never echo input values.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from collabzone.errors import CollabzoneError, PolicyRefusal, error_info

log = logging.getLogger("collabzone.server")


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


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""

    @app.exception_handler(CollabzoneError)
    async def _collabzone(_: Request, exc: CollabzoneError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', 'invalid')}"
            for e in exc.errors()[:10]
        ]
        return _plain(422, "InvalidInputError", "INVALID_INPUT", "; ".join(problems))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return render(exc)

    @app.exception_handler(Exception)
    async def _bug(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error", exc_info=exc)
        return _plain(500, "InternalError", "INTERNAL", "internal error: see the server log")
