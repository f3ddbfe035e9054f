"""The request state machine allows exactly the documented steps."""

from __future__ import annotations

import itertools

import pytest

from collabzone.errors import ConflictError
from collabzone.lifecycle import FINAL, TRANSITIONS, check_transition
from collabzone.model import RequestStatus as S

HAPPY = [S.SUBMITTED, S.CHECKED, S.AWAITING_APPROVAL, S.APPROVED, S.RUNNING, S.RELEASED]


def test_happy_path_is_legal() -> None:
    for current, new in itertools.pairwise(HAPPY):
        check_transition(current, new)
    check_transition(S.CHECKED, S.APPROVED)  # auto approval skips the wait


@pytest.mark.parametrize("final", sorted(FINAL))
def test_final_states_are_final(final: S) -> None:
    for new in S:
        with pytest.raises(ConflictError):
            check_transition(final, new)


def test_no_skipping_the_checks() -> None:
    for skipped in (S.APPROVED, S.RUNNING, S.RELEASED, S.AWAITING_APPROVAL):
        with pytest.raises(ConflictError):
            check_transition(S.SUBMITTED, skipped)
    with pytest.raises(ConflictError):
        check_transition(S.AWAITING_APPROVAL, S.RUNNING)


def test_every_live_state_can_be_refused_or_fail() -> None:
    assert {S.RELEASED, S.REFUSED, S.FAILED} == FINAL
    for state, nxt in TRANSITIONS.items():
        if state not in FINAL:
            assert {S.REFUSED, S.FAILED} <= nxt
