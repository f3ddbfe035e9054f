"""Budget arithmetic: exact sums, conservative refusals, bad amounts rejected."""

from __future__ import annotations

import datetime as dt
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collabzone.budget import BudgetLimit, PrivacyCost, overspend, period_key, remaining, total
from collabzone.errors import InvalidInputError


@pytest.mark.parametrize("bad", [-1, -0.0001, math.nan, math.inf, -math.inf, "1", True])
def test_bad_epsilon_rejected(bad: object) -> None:
    with pytest.raises(InvalidInputError, match="epsilon"):
        PrivacyCost(epsilon=bad)  # type: ignore[arg-type]


def test_delta_must_be_below_one() -> None:
    with pytest.raises(InvalidInputError, match="delta"):
        PrivacyCost(epsilon=1, delta=1.0)


def test_ten_tenths_spend_exactly_one() -> None:
    spent = [PrivacyCost(epsilon=0.1)] * 9
    assert overspend(spent, PrivacyCost(epsilon=0.1), BudgetLimit(epsilon=1.0)) == []
    assert overspend(
        [*spent, PrivacyCost(epsilon=0.1)], PrivacyCost(epsilon=1e-9), BudgetLimit(epsilon=1.0)
    )


def test_unstated_budget_component_is_never_spent() -> None:
    problems = overspend([], PrivacyCost(rho=0.01), BudgetLimit(epsilon=5.0))
    assert problems and "no rho budget" in problems[0]


@given(
    st.lists(st.floats(min_value=0, max_value=2, allow_nan=False), max_size=30),
    st.floats(min_value=0.01, max_value=10),
)
def test_overspend_agrees_with_exact_total(amounts: list[float], cap: float) -> None:
    spent = [PrivacyCost(epsilon=a) for a in amounts]
    problems = overspend(spent[:-1], spent[-1], BudgetLimit(epsilon=cap)) if spent else []
    if spent and spent[-1].epsilon > 0:
        from decimal import Decimal

        exact = sum((Decimal(repr(a)) for a in amounts), Decimal(0))
        assert bool(problems) == (exact > Decimal(repr(cap)))
    left = remaining(spent, BudgetLimit(epsilon=cap))["epsilon"]
    assert left is not None and 0 <= left <= cap
    assert total(spent).epsilon == pytest.approx(sum(amounts))


def test_period_keys() -> None:
    at = dt.datetime(2026, 11, 25, 13, 0, tzinfo=dt.UTC)
    assert period_key("day", at) == "day:2026-11-25"
    assert period_key("month", at) == "month:2026-11"
    assert period_key("year", at) == "year:2026"
    assert period_key("total", at) == "total"
