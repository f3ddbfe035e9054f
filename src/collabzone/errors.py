"""The exception hierarchy of collabzone.

Every error a user can see is a :class:`CollabzoneError`. Messages say what to change and
never echo raw data values (a value from a dataset may itself be personal data)::

    CollabzoneError
    ├── InvalidInputError        bad file, spec, SQL, parameter  (HTTP 422, exit 2)
    ├── NotFoundError            unknown party, dataset, request  (HTTP 404, exit 3)
    ├── AuthenticationError      missing or wrong token           (HTTP 401, exit 4)
    ├── NotAuthorisedError       acting for another party         (HTTP 403, exit 5)
    ├── ConflictError            illegal state transition, name in use (HTTP 409, exit 6)
    ├── PolicyRefusal            an agreement rule said no        (HTTP 403, exit 7)
    │   └── BudgetExhaustedError privacy budget would be overspent
    ├── IntegrityError           audit chain or stored data tampered (HTTP 500, exit 8)
    └── InternalError            a bug in collabzone              (HTTP 500, exit 70)

:data:`ERROR_CATALOGUE` maps each class to its HTTP status and CLI exit code, so the CLI
and the server report the same failure the same way.
"""

from __future__ import annotations

from dataclasses import dataclass


class CollabzoneError(Exception):
    """Root of every error collabzone raises on purpose."""

    code = "ERROR"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInputError(CollabzoneError):
    """The input (file, spec, SQL, parameter) is malformed; nothing was stored."""

    code = "INVALID_INPUT"


class NotFoundError(CollabzoneError):
    """A named party, dataset, agreement or request does not exist (or is not visible)."""

    code = "NOT_FOUND"


class AuthenticationError(CollabzoneError):
    """No token, or a token that matches no party."""

    code = "UNAUTHENTICATED"


class NotAuthorisedError(CollabzoneError):
    """The acting party may not do this (another party's dataset, request or role)."""

    code = "NOT_AUTHORISED"


class ConflictError(CollabzoneError):
    """The operation clashes with the current state (name taken, illegal transition)."""

    code = "CONFLICT"


@dataclass(frozen=True)
class Reason:
    """Why a rule refused: a stable code, the rule that applied, and whose rule it is."""

    code: str
    rule: str
    message: str
    owner: str | None = None

    def __str__(self) -> str:
        who = f" (owner {self.owner})" if self.owner else ""
        return f"{self.code}: {self.message} [rule {self.rule}{who}]"


class PolicyRefusal(CollabzoneError):
    """An agreement rule refused the request; ``reasons`` name each rule."""

    code = "REFUSED"

    def __init__(self, reasons: list[Reason] | Reason) -> None:
        self.reasons = [reasons] if isinstance(reasons, Reason) else list(reasons)
        super().__init__("; ".join(str(r) for r in self.reasons) or "refused")


class BudgetExhaustedError(PolicyRefusal):
    """Releasing would spend more privacy budget than the agreement grants."""

    code = "BUDGET_EXHAUSTED"


class IntegrityError(CollabzoneError):
    """Stored state failed an integrity check (audit chain broken, data tampered)."""

    code = "INTEGRITY"


class InternalError(CollabzoneError):
    """A bug in collabzone: please report it with the --debug output."""

    code = "INTERNAL"


@dataclass(frozen=True)
class ErrorInfo:
    http_status: int
    exit_code: int


ERROR_CATALOGUE: dict[type[CollabzoneError], ErrorInfo] = {
    InvalidInputError: ErrorInfo(422, 2),
    NotFoundError: ErrorInfo(404, 3),
    AuthenticationError: ErrorInfo(401, 4),
    NotAuthorisedError: ErrorInfo(403, 5),
    ConflictError: ErrorInfo(409, 6),
    PolicyRefusal: ErrorInfo(403, 7),
    BudgetExhaustedError: ErrorInfo(403, 7),
    IntegrityError: ErrorInfo(500, 8),
    InternalError: ErrorInfo(500, 70),
    CollabzoneError: ErrorInfo(500, 1),
}


def error_info(error: CollabzoneError) -> ErrorInfo:
    """The HTTP status and exit code for ``error`` (nearest class in the catalogue)."""
    for cls in type(error).__mro__:
        if cls in ERROR_CATALOGUE:
            return ERROR_CATALOGUE[cls]
    return ERROR_CATALOGUE[CollabzoneError]
