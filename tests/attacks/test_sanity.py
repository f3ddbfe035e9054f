"""The attacks are real: each one isolates people on a deliberately unprotected target.

The target answers exact SQL on DuckDB with only a per-cell threshold (min_group_size 10,
no audit, no clamping, no bound on an owned join side), plus, for the family that needs
it, the historical mistake the family exploits: the pairwise differencing monitor whose
refusal is an oracle, the exact count of suppressed rows, and work done per suppressed
row (a timing channel). A test against the real technique that isolates nobody means
something only because these do.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest

from collabzone.attacks import ATTACKS, Scenario, TableTruth, judge
from tests.attacks.attack_support import MIN_GROUP_SIZE, with_outlier
from tests.attacks.naive_target import NaiveTarget

MISTAKES: dict[str, dict[str, Any]] = {
    "oracle": {"monitor": True},
    "suppressed": {"report_suppressed": True},
    "timing": {"suppression_delay": 0.01},
}
QUERIES = {"reconstruction": 200, "timing": 480, "values": 200}


@pytest.mark.parametrize("name", list(ATTACKS))
def test_attack_isolates_people_on_an_unprotected_target(
    name: str, adult: pa.Table, scenario: Scenario, truth: TableTruth
) -> None:
    table, judge_with = adult, truth
    if name == "values":
        assert scenario.victims[0].token is not None
        table = with_outlier(adult, scenario.victims[0].token)
        judge_with = TableTruth(table, "adult", "token")
    try:
        target = NaiveTarget({"adult": table}, **MISTAKES.get(name, {}))
        result = ATTACKS[name](target, scenario, queries=QUERIES.get(name, 100))
        verdict = judge(result, judge_with, min_group_size=MIN_GROUP_SIZE)
    finally:
        if judge_with is not truth:
            judge_with.close()
    assert verdict.correct_claims == verdict.claims, verdict.summary()
    assert verdict.isolated > 0 and verdict.smallest is not None, verdict.summary()
    assert verdict.smallest < MIN_GROUP_SIZE
