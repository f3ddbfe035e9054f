"""Unclamped values: one huge value, and float sums that depend on order (channel 6).

For groups formed from the splitters (each value of one column, then pairs of columns),
the attacker asks COUNT(*) and SUM(measure). If every value lay within the declared bounds
[low, high], a sum could not exceed ``count * high`` (nor fall below ``count * low``); a
sum that does proves that someone in the group holds a value outside the bounds: the
outlier is singled out (the claim "COUNT(*) of the group's people above ``high`` >= 1").
Each group is asked again in other words (``IN`` for ``=``, the conditions swapped); two
different exact answers to one question mean the sum depends on row order or plan, and
are counted in ``measurements["inconsistent"]``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

from collabzone.attacks._result import AttackResult, Claim, Log
from collabzone.attacks._scenario import Scenario, literal
from collabzone.attacks._target import Question
from collabzone.attacks._target import Target as Asked

CHANNEL = "6: unclamped values and float order"


def _groups(scenario: Scenario) -> Iterator[list[tuple[str, object]]]:
    """Every value of one splitter, then of two, then of three columns, then each victim's
    cell widened by one column (smaller groups, where one outlier weighs more)."""
    singles = [(c, v) for c, values in scenario.splitters.items() for v in values]
    for size in (1, 2, 3):
        for combo in itertools.combinations(singles, size):
            if len({c for c, _ in combo}) == size:
                yield list(combo)
    for victim in scenario.victims:
        for left_out in victim.quasi:
            yield [(c, v) for c, v in victim.quasi.items() if c != left_out]


def _phrasings(group: list[tuple[str, object]]) -> tuple[str, str]:
    plain = " AND ".join(f"{c} = {literal(v)}" for c, v in group)
    other = " AND ".join(f"{c} IN ({literal(v)})" for c, v in reversed(group))
    return plain, other


def values(target: Asked, scenario: Scenario, *, queries: int = 500) -> AttackResult:
    """Look for sums beyond ``count * bound`` and for answers that change with wording."""
    log = Log(target, queries)
    eps = scenario.epsilon / queries if scenario.epsilon is not None else None
    low, high = scenario.measure_bounds
    claims: list[Claim] = []
    inconsistent = 0
    select = f"SELECT COUNT(*), SUM({scenario.measure}) FROM {scenario.table} WHERE "
    for group in _groups(scenario):
        if log.remaining < 2:
            break
        plain, other = _phrasings(group)
        first = log.ask(Question(select + plain, epsilon=eps))
        second = log.ask(Question(select + other, epsilon=eps))
        if first is None or second is None or not first.released:
            continue
        count, total = first.value(0), first.value(1)
        if second.released and eps is None and second.rows != first.rows:
            inconsistent += 1
        if count is None or total is None or eps is not None:
            continue
        if total > count * high:
            where = f"{plain} AND {scenario.measure} > {literal(high)}"
            claims.append(Claim(plain, "COUNT(*)", where, 1, float("inf"), "sum above bound"))
        if total < count * low:
            where = f"{plain} AND {scenario.measure} < {literal(low)}"
            claims.append(Claim(plain, "COUNT(*)", where, 1, float("inf"), "sum below bound"))
    return log.result(
        "values",
        CHANNEL,
        claims=tuple(claims),
        measurements={"inconsistent": (float(inconsistent),)},
    )


__all__ = ["values"]
