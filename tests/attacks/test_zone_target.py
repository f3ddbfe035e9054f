"""The attack library against a real embedded zone, through ZoneTarget.

A census bureau shares UCI Adult under an agreement (aggregation and DP, minimum 10, an
epsilon budget); the analyst is also a provider, so it can upload its own join side. Each
family asks a handful of questions through ``zone.submit`` / ``zone.result`` /
``zone.add_dataset``: the same attacks run against the product, with its pacing,
budgets, audit log and stored disclosure-audit states.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from collabzone import pacing
from collabzone.attacks import (
    ATTACKS,
    Question,
    Scenario,
    TableTruth,
    ZoneTarget,
    judge,
    reconstruct,
    run_campaign,
    timing,
    worlds,
)
from collabzone.zone import Zone
from tests.attacks.attack_support import DP_RULES, MIN_GROUP_SIZE
from tests.attacks.conftest import PURPOSE, share_adult


@pytest.mark.timeout(600)
def test_every_family_runs_against_a_real_zone(
    analyst: Zone, scenario: Scenario, truth: TableTruth
) -> None:
    target = ZoneTarget(analyst, purpose=PURPOSE)
    first = target.ask(Question("SELECT sex, COUNT(*) FROM adult GROUP BY sex"))
    assert first.released and len(first.rows) == 2 and first.seconds > 0
    report = run_campaign(target, scenario, queries_per_attack=6)
    assert [r.attack for r in report.results] == list(ATTACKS)
    for result, verdict in zip(report.results, report.judge(truth), strict=True):
        summary = {**result.summary(), **verdict.summary()}
        assert result.queries > 0, summary
        assert set(result.reasons) <= {"AUDIT_LIMIT"}, summary
        assert verdict.correct_claims == verdict.claims, summary
        if result.attack != "threshold":  # the known leak (see test_campaign.py)
            assert verdict.isolated == 0, summary
    join = report.results[list(ATTACKS).index("join")]
    assert not any("upload refused" in n for n in join.notes)
    assert {d.name for d in analyst.datasets()} >= {"adult", "probe_1_1000"}


def test_dp_answers_and_the_budget_through_a_real_zone(
    analyst: Zone, scenario: Scenario, truth: TableTruth
) -> None:
    budget = DP_RULES["epsilon_budget"]
    result = reconstruct(
        ZoneTarget(analyst, purpose=PURPOSE), scenario.with_epsilon(2 * budget), queries=4
    )
    assert result.released == 2 and result.reasons == {"BUDGET_EXHAUSTED": 2}
    assert result.spent == pytest.approx(budget)
    (row,) = [r for r in analyst.budget() if r["dataset"] == "adult"]
    assert row["spent"]["epsilon"] == pytest.approx(budget)
    assert judge(result, truth, min_group_size=MIN_GROUP_SIZE).claims == 0


@pytest.mark.slow
def test_response_time_does_not_tell_presence_through_the_zone(
    tmp_path: Path,
    adult: pa.Table,
    scenario: Scenario,
    truth: TableTruth,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Channel 5. The technique alone takes about 2 ms longer on a cell of one person than
    on an empty one (benchmarks/attacks.py --part timing); the zone's response-time
    ladder, as shipped, must hide that: victims' and outsiders' times must not differ."""
    monkeypatch.setattr(pacing, "DEFAULT_QUANTUM", pacing.STANDARD_QUANTUM)
    analyst = share_adult(tmp_path, adult)
    result = timing(ZoneTarget(analyst, purpose=PURPOSE), scenario, queries=192)
    verdict = judge(result, truth, min_group_size=MIN_GROUP_SIZE)
    assert result.withheld == result.queries == 192
    statistic, p_value = worlds(result, {v.name for v in scenario.victims})
    assert p_value > 1e-3, (statistic, p_value, verdict.summary())
    assert verdict.isolated == 0, verdict.summary()
