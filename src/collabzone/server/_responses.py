"""What the API documents about its failures: one error body model and, per route, the
statuses it really answers (``responses=`` on each route; see ``_errors`` for the bodies).

The OpenAPI schema must list every status a route can return (schemathesis checks it,
``tests/server/test_schema_fuzz.py``), with the body each carries.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ErrorReasonOut(BaseModel):
    """One rule's refusal: stable code, the rule, its message and whose rule it is."""

    code: str
    rule: str
    message: str
    owner: str | None = None


class ErrorDetailOut(BaseModel):
    type: str = Field(description="the exception class, e.g. PolicyRefusal")
    code: str = Field(description="stable code, e.g. REFUSED, NOT_FOUND, INVALID_INPUT")
    message: str = Field(description="what went wrong and what to change")
    reasons: list[ErrorReasonOut] | None = Field(
        default=None, description="for refusals: each rule that refused"
    )


class ErrorOut(BaseModel):
    """Every failure of the zone's API (the OAuth2 token endpoint has RFC 6749's own)."""

    error: ErrorDetailOut


class OAuthErrorOut(BaseModel):
    """An RFC 6749 section 5.2 error of ``POST /oauth/token``."""

    error: str
    error_description: str


WHY: dict[int, str] = {
    400: "the request is malformed for this endpoint",
    401: "no valid access token (missing, expired, revoked; party disabled or re-keyed)",
    403: "the token lacks the scope, or the zone's rules refuse (see `reasons`)",
    404: "no such resource visible to this party",
    409: "the resource's current state does not allow this (name taken, already decided...)",
    413: "the request body is larger than the server accepts",
    422: "the input does not match the schema or the zone's rules for its content",
    429: "too many requests or failed sign-ins: retry after `Retry-After` seconds",
}
HEADERS: dict[int, dict[str, Any]] = {
    401: {
        "WWW-Authenticate": {
            "description": "the authentication scheme to use",
            "schema": {"type": "string"},
        }
    },
    429: {
        "Retry-After": {
            "description": "seconds to wait before retrying",
            "schema": {"type": "string", "pattern": "^[0-9]+$"},
        }
    },
}


def errors(*codes: int, model: Any = ErrorOut) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route that may fail with ``codes`` (error body: ``model``)."""
    return {
        code: {
            "model": model,
            "description": WHY[code],
            **({"headers": HEADERS[code]} if code in HEADERS else {}),
        }
        for code in codes
    }
