"""DP mode: no attack does better on a person's bit than the agreement's epsilon allows.

The bound. The agreement grants the analyst ``epsilon_budget`` = 1.0 on Adult; the zone
refuses anything beyond it, so all the answers an attacker ever gets are, together,
1.0-DP (basic composition). For one person whose bit has prior 1/2, any guess g made
from a pure epsilon-DP view has P(g=1 | 1) <= e^eps P(g=1 | 0) and P(g=0 | 0) <= e^eps
P(g=0 | 1), so its accuracy is at most e^eps / (1 + e^eps) = 0.731 at eps = 1. The
victims are half 1s and half 0s, so the uninformed guess scores 0.5. The SUM of a 0/1
column with one row per person moves by 1 when one bit changes, exactly as when one person
comes or goes, so no factor 2 for changing (rather than removing) a person is needed.

The measured accuracy over n victims is a sample: it must stay under the bound plus three
standard deviations of a binomial at the bound (the test's false-failure rate is < 0.2 %).
"""

from __future__ import annotations

import math

import pyarrow as pa
import pytest

from collabzone.attacks import (
    ATTACKS,
    Question,
    Scenario,
    TableTruth,
    Verdict,
    dp_accuracy_bound,
    join_amplification,
    judge,
    reconstruct,
    subset_where,
)
from tests.attacks.attack_support import (
    DP_EPSILON_BUDGET,
    DP_RULES,
    MIN_GROUP_SIZE,
    MemoryTarget,
    adult_zone,
    campaign_in_parallel,
)
from tests.attacks.naive_target import NaiveTarget

BOUND = dp_accuracy_bound(DP_EPSILON_BUDGET)


def within_bound(verdict: Verdict) -> bool:
    """Accuracy at most the DP bound plus three binomial standard deviations."""
    assert verdict.accuracy is not None and verdict.guesses
    margin = 3 * math.sqrt(BOUND * (1 - BOUND) / verdict.guesses)
    return verdict.accuracy <= BOUND + margin


@pytest.mark.slow
def test_reconstruction_stays_within_the_epsilon_bound(
    adult: pa.Table, scenario: Scenario, truth: TableTruth
) -> None:
    """500 random subset sums of 100 victims' income bit, the whole budget spread evenly."""
    zone = adult_zone(DP_RULES, adult)
    result = reconstruct(MemoryTarget(zone), scenario.with_epsilon(DP_EPSILON_BUDGET))
    verdict = judge(result, truth, min_group_size=MIN_GROUP_SIZE)
    assert result.queries == 500 and result.released == 500
    assert zone.spent("analyst") <= DP_EPSILON_BUDGET + 1e-9
    assert verdict.claims == 0 and verdict.guesses == 100
    assert within_bound(verdict), (verdict.summary(), BOUND)


def test_spending_beyond_the_budget_is_refused(
    adult: pa.Table, scenario: Scenario, truth: TableTruth
) -> None:
    """An attacker who plans to spend four budgets gets answers for one, then refusals."""
    zone = adult_zone(DP_RULES, adult)
    greedy = scenario.with_epsilon(4 * DP_EPSILON_BUDGET)
    result = reconstruct(MemoryTarget(zone), greedy, queries=100)
    assert result.released == 25
    assert result.reasons == {"BUDGET_EXHAUSTED": 75}
    assert zone.spent("analyst") <= DP_EPSILON_BUDGET + 1e-9
    assert within_bound(judge(result, truth, min_group_size=MIN_GROUP_SIZE))


def test_repeating_a_dp_question_returns_the_same_noise(
    adult: pa.Table, scenario: Scenario
) -> None:
    """Averaging repeated answers is the classic way around DP noise; the cache stops it."""
    zone = adult_zone(DP_RULES, adult)
    target = MemoryTarget(zone)
    where = subset_where(scenario.victims[:20])
    question = Question(f"SELECT SUM(high_income) FROM adult WHERE {where}", epsilon=0.05)
    answers = [target.ask(question) for _ in range(10)]
    assert all(a.released for a in answers)
    assert {a.rows for a in answers} == {answers[0].rows}
    assert [a.spent for a in answers] == [0.05] + [0.0] * 9
    assert zone.spent("analyst") == pytest.approx(0.05)


def test_owned_join_side_does_not_multiply_one_person_in_dp(
    adult: pa.Table, scenario: Scenario, truth: TableTruth
) -> None:
    """1,000 probe rows per victim, the whole budget on them: bounded per person after the
    join, the bit stays hidden; a target that does not bound contributions gives it away."""
    dp = scenario.with_epsilon(DP_EPSILON_BUDGET)
    zone = adult_zone(DP_RULES, adult)
    result = join_amplification(MemoryTarget(zone), dp, queries=100)
    verdict = judge(result, truth, min_group_size=MIN_GROUP_SIZE)
    assert result.released == 100 and verdict.guesses == 100
    assert zone.spent("analyst") <= DP_EPSILON_BUDGET + 1e-9
    assert within_bound(verdict), verdict.summary()
    naive = join_amplification(NaiveTarget({"adult": adult}), dp, queries=100)
    broken = judge(naive, truth, min_group_size=MIN_GROUP_SIZE)
    assert not within_bound(broken), broken.summary()  # the attack is real


@pytest.mark.slow
def test_every_family_in_dp_stays_within_the_bound(truth: TableTruth) -> None:
    """Every family in DP mode, 100 questions each, each with the whole budget."""
    report = campaign_in_parallel(100, dp=True)
    assert [r.attack for r in report.results] == list(ATTACKS)
    for result, verdict in zip(report.results, report.judge(truth), strict=True):
        summary = {**result.summary(), **verdict.summary()}
        assert verdict.claims == 0, summary  # nothing is certain from noisy answers
        assert result.spent <= DP_EPSILON_BUDGET + 1e-9, summary
        if verdict.guesses:
            assert within_bound(verdict), summary
