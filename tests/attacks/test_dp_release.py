"""Issue 11's DP releases attacked by repetition (``collabzone.attacks._dp_release``), on
UCI Adult with a planted outlier and a planted one-person segment, at the largest epsilon
per question an agreement in these tests allows (5) and a large total budget.

* A person's capital gain, planted off the private quantile's grid, alone at the top of
  a small public group ('Never-worked', 7 people with no gain): MAX per workclass asked
  20 times never returns it, and the answers do not concentrate near it.
* One person's workclass set to a value nobody else holds: SELECT DISTINCT workclass
  asked 20 times never lists it (each answer lets it through with probability <= delta).
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from collabzone.attacks import distinct_segment, order_statistic, outlier_revealed
from tests.attacks.attack_support import DP_RULES, MemoryTarget, adult_zone, load_adult

RULES: dict[str, Any] = {
    **DP_RULES,
    "max_epsilon_per_query": 5.0,
    "epsilon_budget": 500.0,
    "delta_budget": 1e-2,
}
SECRET = 87654  # not a point of the 1001-point grid over [0, 99999]
TOKEN = "p00004"


def _planted(column: str, value: Any, also: dict[str, Any] | None = None) -> pa.Table:
    adult = load_adult()
    mask = pc.equal(adult.column("token"), TOKEN)
    for name, new in {column: value, **(also or {})}.items():
        index = adult.schema.get_field_index(name)
        old = adult.column(name)
        adult = adult.set_column(index, name, pc.if_else(mask, pa.scalar(new, old.type), old))
    return adult


@pytest.mark.parametrize("func", ["MAX", "MEDIAN"])
def test_a_planted_outlier_is_never_returned_by_repeated_order_statistics(func: str) -> None:
    table = _planted("workclass", "Never-worked", {"capital_gain": SECRET})
    group = pc.equal(table.column("workclass"), "Never-worked")
    assert pc.sum(group).as_py() <= 10  # a small group, the outlier at its top
    zone = adult_zone(RULES, table)
    result = order_statistic(
        MemoryTarget(zone), table="adult", measure="capital_gain", group_column="workclass",
        group_value="Never-worked", func=func, epsilon=5.0, queries=20,
    )  # fmt: skip
    seen = outlier_revealed(result, SECRET, tolerance=100)
    assert result.released == 20 and seen["answers"] == 20
    assert seen["exact"] == 0 and seen["near_share"] <= 0.25
    if func == "MAX":  # the top of the group: answers spread over the grid's upper part
        assert seen["spread"] > 1000
    else:  # the median of 7 zeros and the outlier: about 0, whatever the outlier
        assert sorted(result.measurements["values"])[10] < 1000
    (guess,) = result.guesses
    assert guess.value != SECRET


def test_a_one_person_segment_never_appears_in_repeated_select_distinct() -> None:
    zone = adult_zone(RULES, _planted("workclass", "Planted-alone"))
    result = distinct_segment(
        MemoryTarget(zone), table="adult", column="workclass", value="Planted-alone",
        epsilon=5.0, queries=20,
    )  # fmt: skip
    assert result.measurements["answers"] == (20.0,)
    assert result.measurements["appearances"] == (0.0,)
    # the attack can see a segment when one is large: it lists 'Private' every time
    control = distinct_segment(
        MemoryTarget(adult_zone(RULES, load_adult())), table="adult", column="workclass",
        value="Private", epsilon=5.0, queries=3,
    )  # fmt: skip
    assert control.measurements["appearances"] == (3.0,)
