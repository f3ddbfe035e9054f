"""Channels 3-6 of issue 10 on Adult in aggregation mode, one attack family each.

(3) nothing exact about suppressed cells, in the payload or the receipt; (4) an owned join
side multiplies nobody; (6) one huge value is clamped to the declared bounds and answers
do not depend on row order. Channel 5 (timing) needs the zone's response-time ladder:
it is tested through a real zone in test_zone_target.py.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from collabzone.attacks import (
    Question,
    Scenario,
    TableTruth,
    join_amplification,
    judge,
    suppressed,
    values,
)
from tests.attacks.attack_support import (
    AGGREGATION_RULES,
    MIN_GROUP_SIZE,
    MemoryTarget,
    adult_zone,
    with_outlier,
)
from tests.attacks.naive_target import NaiveTarget


def test_no_count_of_suppressed_cells_is_disclosed(
    adult: pa.Table, scenario: Scenario, truth: TableTruth
) -> None:
    zone = adult_zone(AGGREGATION_RULES, adult)
    result = suppressed(MemoryTarget(zone), scenario, queries=60)
    assert result.measurements["disclosed"] == ()
    verdict = judge(result, truth, min_group_size=MIN_GROUP_SIZE)
    assert verdict.claims == 0 and verdict.isolated == 0, verdict.summary()
    # the payload and the receipt of a query whose only group is one person
    victim = scenario.victims[0]
    spec = {"sql": f"SELECT sex, COUNT(*) FROM adult WHERE {victim.where()} GROUP BY sex"}
    payload, receipt_count = zone.submit("analyst", spec)
    assert payload["rows"] == [] and receipt_count is None
    assert not any(isinstance(v, int) and "suppress" in k for k, v in payload.items())


def test_owned_join_side_multiplies_nobody(
    adult: pa.Table, scenario: Scenario, truth: TableTruth
) -> None:
    target = MemoryTarget(adult_zone(AGGREGATION_RULES, adult))
    result = join_amplification(target, scenario, queries=100)
    verdict = judge(result, truth, min_group_size=MIN_GROUP_SIZE)
    assert result.released == 100  # victim + 20 helpers: a group large enough to show
    assert "victims whose rows were seen multiplied: 0" in result.notes
    assert verdict.claims == 0 and verdict.isolated == 0, verdict.summary()
    # one probe group: 1,000 rows on the victim count once
    answer = target.ask(
        Question(
            "SELECT COUNT(*) FROM probe_1_1000 p JOIN adult t ON p.token = t.token WHERE p.tag = 0"
        )
    )
    assert answer.value() == 2 * MIN_GROUP_SIZE + 1


def test_one_huge_value_is_clamped_not_revealed(adult: pa.Table, scenario: Scenario) -> None:
    victim = scenario.victims[0]
    assert victim.token is not None
    table = with_outlier(adult, victim.token)
    truth = TableTruth(table, "adult", "token")
    try:
        result = values(MemoryTarget(adult_zone(AGGREGATION_RULES, table)), scenario, queries=200)
        verdict = judge(result, truth, min_group_size=MIN_GROUP_SIZE)
        assert result.released > 0
        assert verdict.claims == 0, verdict.summary()
        assert result.measurements["inconsistent"] == (0.0,)
        naive = judge(values(NaiveTarget({"adult": table}), scenario, queries=200), truth,
                      min_group_size=MIN_GROUP_SIZE)  # fmt: skip
        assert naive.isolated >= 1 and naive.smallest == 1, naive.summary()  # the attack is real
    finally:
        truth.close()


def test_answers_do_not_depend_on_row_order(adult: pa.Table, scenario: Scenario) -> None:
    """The same question on the same data stored in reverse order: the same numbers."""
    victim = scenario.victims[0]
    assert victim.token is not None
    table = with_outlier(adult, victim.token)
    reverse = table.take(pa.array(range(table.num_rows - 1, -1, -1)))
    sql = (
        "SELECT race, COUNT(*), SUM(capital_gain), AVG(capital_gain), SUM(fnlwgt) "
        "FROM adult GROUP BY race"
    )

    def ask(data: pa.Table) -> list[Any]:
        answer = MemoryTarget(adult_zone(AGGREGATION_RULES, data)).ask(Question(sql))
        assert answer.released
        return sorted(answer.rows)

    forward = ask(table)
    assert forward == ask(reverse)
    for _, count, total, mean, _ in forward:
        assert total <= count * 99999 and mean <= 99999
