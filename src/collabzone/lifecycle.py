"""The request lifecycle as an explicit state machine.

::

    submitted -> checked -> awaiting_approval -> approved -> running -> released
        \\           \\              \\               \\          \\
         +-----------+--------------+---------------+----------+--> refused | failed

Every transition is written to the audit log by the zone; an illegal one is a bug or a
race and raises :class:`~collabzone.errors.ConflictError`.
"""

from __future__ import annotations

from collabzone.errors import ConflictError
from collabzone.model import RequestStatus as S

TRANSITIONS: dict[S, frozenset[S]] = {
    S.SUBMITTED: frozenset({S.CHECKED, S.REFUSED, S.FAILED}),
    S.CHECKED: frozenset({S.AWAITING_APPROVAL, S.APPROVED, S.REFUSED, S.FAILED}),
    S.AWAITING_APPROVAL: frozenset({S.APPROVED, S.REFUSED, S.FAILED}),
    S.APPROVED: frozenset({S.RUNNING, S.REFUSED, S.FAILED}),
    S.RUNNING: frozenset({S.RELEASED, S.REFUSED, S.FAILED}),
    S.RELEASED: frozenset(),
    S.REFUSED: frozenset(),
    S.FAILED: frozenset(),
}

FINAL = frozenset(s for s, nxt in TRANSITIONS.items() if not nxt)


def check_transition(current: S, new: S) -> None:
    """Raise ConflictError unless ``current -> new`` is a legal step."""
    if new not in TRANSITIONS[current]:
        raise ConflictError(f"a request that is {current.value} cannot become {new.value}")
