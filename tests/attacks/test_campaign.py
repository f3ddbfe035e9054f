"""Issue 10's acceptance: the whole attack library against aggregation mode on UCI Adult.

Every family asks up to 500 questions of a fresh in-memory zone (the governed SQL
technique with its disclosure audit, min_group_size 10): the hardest test of each family,
since no earlier answer has made the zone cautious yet. Two processes share the families
(the campaign takes about 3 minutes of two cores). Exact answers make every claim a
deduction, so each must be right (or the product released a wrong number); none may be
about fewer than 10 people, and no family's guesses may beat the uninformed guess.

Two families are judged elsewhere: ``threshold``, a known limit (see
:func:`test_known_members_turn_the_minimum_into_an_oracle`), and ``timing``, which the
zone's response-time ladder stops, not the technique (test_zone_target.py).
"""

from __future__ import annotations

import pytest

from collabzone.attacks import ATTACKS, Scenario, TableTruth, judge, threshold
from tests.attacks.attack_support import (
    AGGREGATION_RULES,
    MIN_GROUP_SIZE,
    MemoryTarget,
    adult_zone,
    campaign_in_parallel,
)

QUERIES = 500
KNOWN_LEAK = (
    "a minimum group size cannot hide the k-th member from someone who knows the other "
    "k - 1: a cell of k - 1 known people plus the victim is released (jitter 0, about 1 "
    "time in 6 per fresh padding) only if the victim is there (or has secret = 1)"
)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_campaign_on_adult_isolates_no_group_under_the_minimum(truth: TableTruth) -> None:
    report = campaign_in_parallel(QUERIES)
    assert [r.attack for r in report.results] == list(ATTACKS)
    for result, verdict in zip(report.results, report.judge(truth), strict=True):
        summary = {**result.summary(), **verdict.summary()}
        assert 0.9 * QUERIES <= result.queries <= QUERIES, summary
        # the attacks' SQL is valid; the only refusal allowed is the audit's size limit
        assert set(result.reasons) <= {"AUDIT_LIMIT"}, summary
        assert verdict.correct_claims == verdict.claims, summary
        # threshold: KNOWN_LEAK, tested (xfail) below; timing: the technique alone has no
        # response-time ladder (the zone's), so it is judged through a real zone instead
        if result.attack not in ("threshold", "timing"):
            assert verdict.isolated == 0, summary
    assert sum(r.released for r in report.results) > 0.1 * report.queries


@pytest.mark.xfail(strict=True, reason=KNOWN_LEAK)
def test_known_members_turn_the_minimum_into_an_oracle(
    scenario: Scenario, truth: TableTruth
) -> None:
    zone = adult_zone(AGGREGATION_RULES)
    try:
        result = threshold(MemoryTarget(zone), scenario, queries=150)
    finally:
        zone.close()
    verdict = judge(result, truth, min_group_size=MIN_GROUP_SIZE)
    assert verdict.correct_claims == verdict.claims
    assert verdict.isolated == 0, verdict.summary()
