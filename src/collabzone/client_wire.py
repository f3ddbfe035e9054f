"""The wire side of the remote client: how the server's errors map back to
:class:`~collabzone.errors.CollabzoneError` subclasses, and how specs travel as JSON.

Kept apart from :mod:`collabzone.client` (the Zone API over HTTP) so the mapping can be
read, and tested, on its own: every error the server sends comes back as the exception
the embedded zone would have raised.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import yaml

from collabzone import errors
from collabzone.audit import canonical_json
from collabzone.errors import CollabzoneError, Reason

ERROR_TYPES: dict[str, type[CollabzoneError]] = {
    cls.__name__: cls
    for cls in (
        errors.InvalidInputError,
        errors.NotFoundError,
        errors.AuthenticationError,
        errors.NotAuthorisedError,
        errors.ConflictError,
        errors.IntegrityError,
        errors.InternalError,
    )
}
OAUTH_ERRORS: dict[str, type[CollabzoneError]] = {
    "invalid_client": errors.AuthenticationError,
    "invalid_scope": errors.NotAuthorisedError,
    "unsupported_grant_type": errors.InvalidInputError,
    "invalid_request": errors.InvalidInputError,
}


class RateLimitedError(CollabzoneError):
    """The server's per-party rate limit was reached; retry after ``retry_after`` seconds."""

    code = "RATE_LIMITED"

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ZoneUnavailableError(CollabzoneError):
    """The zone server could not be reached or dropped the connection mid-call. The call
    may or may not have taken effect: read the request's state before retrying."""

    code = "UNAVAILABLE"


def error_from_response(response: httpx.Response) -> CollabzoneError:
    """The CollabzoneError a failed response stands for."""
    try:
        doc = response.json()
    except ValueError:
        doc = {}
    error = doc.get("error") if isinstance(doc, dict) else None
    if isinstance(error, str):  # OAuth2 error shape (RFC 6749 5.2)
        cls = OAUTH_ERRORS.get(error, errors.AuthenticationError)
        return cls(str(doc.get("error_description", error)))
    if not isinstance(error, dict):
        error = {"message": f"HTTP {response.status_code} from the zone server"}
    message = str(error.get("message", "error"))
    kind = error.get("type", "")
    if response.status_code == 429:
        return RateLimitedError(message, float(response.headers.get("retry-after", "1")))
    if kind in ("PolicyRefusal", "BudgetExhaustedError"):
        reasons = [Reason(**r) for r in error.get("reasons", [])]
        refusal = (
            errors.BudgetExhaustedError if kind == "BudgetExhaustedError" else errors.PolicyRefusal
        )
        return refusal(reasons)
    if kind in ERROR_TYPES:
        return ERROR_TYPES[kind](message)
    by_status = {
        401: errors.AuthenticationError,
        403: errors.NotAuthorisedError,
        404: errors.NotFoundError,
        409: errors.ConflictError,
        413: errors.InvalidInputError,
        422: errors.InvalidInputError,
    }
    return by_status.get(response.status_code, errors.InternalError)(message)


def url_segment(value: str) -> str:
    """One path segment, percent-encoded (a name with ``/`` stays one segment)."""
    return (
        httpx.URL("/").copy_with(path="/" + value).raw_path.decode("ascii")[1:].replace("/", "%2F")
    )


def jsonable(spec: Mapping[str, Any] | None) -> dict[str, Any]:
    """A request spec as JSON data (dates and other values spelled as the audit log does)."""
    if spec is not None and not isinstance(spec, Mapping):
        raise errors.InvalidInputError("a request spec must be a mapping (a JSON object)")
    doc: dict[str, Any] = json.loads(canonical_json(dict(spec or {})))
    return doc


def spec_document(spec: Mapping[str, Any] | str | Path) -> dict[str, Any]:
    """A spec as JSON-able data: a mapping as is, a YAML or TOML file read (the server
    validates it exactly as the embedded zone does)."""
    if isinstance(spec, Mapping):
        doc: Any = json.loads(canonical_json(dict(spec)))
    else:
        path = Path(spec)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise errors.InvalidInputError(f"cannot read spec file {path}: {exc}") from None
        try:
            doc = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
        except (tomllib.TOMLDecodeError, yaml.YAMLError):
            raise errors.InvalidInputError(f"spec file {path} is not valid YAML/TOML") from None
        doc = json.loads(canonical_json(doc))
    if not isinstance(doc, dict):
        raise errors.InvalidInputError("a dataset spec must be a mapping with a `columns` list")
    return doc
