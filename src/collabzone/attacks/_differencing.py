"""Differencing: a victim's cell as the difference of released sets (channel 1).

Four plans per victim, each a few questions whose released answers, subtracted, give the
victim's cell (its size and its secret sum):

* ``pair``: a base set B that contains the victim, then B minus the victim's cell;
* ``range``: ``age >= a`` and ``age > a`` (the victim's first numeric column) within
  two of its other columns;
* ``inclusion-exclusion``: A ∪ C, B ∪ C and A ∪ B for two large sets A, B disjoint from
  the victim's cell C: C = (|A∪C| + |B∪C| - |A∪B|) / 2, while no two answers differ by C;
* ``group-total``: a GROUP BY over the victim's cell's neighbours plus the total; the total
  minus the shown groups is the withheld ones.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from collabzone.attacks._algebra import Ask, Cell, Plan, Target, run_plans
from collabzone.attacks._result import AttackResult
from collabzone.attacks._scenario import Person, Scenario, conjunction, equals, literal
from collabzone.attacks._target import Target as Asked

CHANNEL = "1: set algebra (pairs, inclusion-exclusion, group totals)"


def _pair(v: Person, column: str) -> Plan:
    base = equals(column, v.quasi[column])
    cell = v.where()
    rest = f"{base} AND NOT ({cell})"
    return Plan(
        f"pair on {column}",
        (Cell("victim", cell), Cell("rest", rest)),
        (Ask(base, (0, 1)), Ask(rest, (1,))),
        (Target(v.name, (0,)),),
    )


def _range(v: Person) -> Plan | None:
    """Split at the victim's value of its first numeric column, within two other columns."""
    age = next((c for c, x in v.quasi.items() if type(x) is int), None)
    if age is None:
        return None
    others = {c: x for c, x in v.quasi.items() if c != age}
    coarse = dict(list(others.items())[:2])
    if not coarse:
        return None
    within = conjunction(coarse)
    a = v.quasi[age]
    return Plan(
        "range split",
        (Cell("age = a", f"{within} AND {age} = {literal(a)}"),
         Cell("age > a", f"{within} AND {age} > {literal(a)}")),
        (Ask(f"{within} AND {age} >= {literal(a)}", (0, 1)),
         Ask(f"{within} AND {age} > {literal(a)}", (1,))),
        (Target(f"{v.name} (age band)", (0,), victim=False),),
    )  # fmt: skip


def _inclusion_exclusion(v: Person, scenario: Scenario) -> Plan | None:
    """A and B: the other values of one of the victim's columns, split by a second column."""
    for column, values in scenario.splitters.items():
        if column not in v.quasi:
            continue
        others = [x for x in values if x != v.quasi[column]]
        for second, split in scenario.splitters.items():
            if second == column or len(split) < 2:
                continue
            half = len(split) // 2
            outside = ", ".join(literal(x) for x in others)
            a = f"{column} IN ({outside}) AND {second} IN ({', '.join(map(literal, split[:half]))})"
            b = f"{column} IN ({outside}) AND {second} IN ({', '.join(map(literal, split[half:]))})"
            c = v.where()
            return Plan(
                "inclusion-exclusion",
                (Cell("A", a), Cell("B", b), Cell("victim", c)),
                (Ask(f"({a}) OR ({c})", (0, 2)), Ask(f"({b}) OR ({c})", (1, 2)),
                 Ask(f"({a}) OR ({b})", (0, 1))),
                (Target(v.name, (2,)),),
            )  # fmt: skip
    return None


def _group_total(v: Person, scenario: Scenario) -> Plan | None:
    """GROUP BY one of the victim's columns within the rest of its cell, then the total."""
    for column, values in scenario.splitters.items():
        if column not in v.quasi or len(values) < 3:
            continue
        within = conjunction({c: x for c, x in v.quasi.items() if c != column})
        cells = tuple(Cell(f"{column}={x}", f"{within} AND {equals(column, x)}") for x in values)
        everything = tuple(range(len(cells)))
        own = values.index(v.quasi[column])
        return Plan(
            "group-total",
            cells,
            (
                Ask(within, everything, column, tuple((x, i) for i, x in enumerate(values))),
                Ask(within, everything),
            ),
            (Target(v.name, (own,)), Target(f"{v.name} (withheld groups)", (), False, True)),
        )
    return None


def _plans(scenario: Scenario) -> Iterator[Plan]:
    """Plans victim by victim, one kind at a time (so a small budget still tries each)."""
    kinds: list[Callable[[Person], Plan | None]] = [
        lambda v: _pair(v, next(iter(v.quasi))),
        _range,
        lambda v: _inclusion_exclusion(v, scenario),
        lambda v: _group_total(v, scenario),
        lambda v: _pair(v, list(v.quasi)[1]) if len(v.quasi) > 1 else None,
    ]
    for kind in kinds:
        for victim in scenario.victims:
            plan = kind(victim)
            if plan is not None:
                yield plan


def differencing(target: Asked, scenario: Scenario, *, queries: int = 500) -> AttackResult:
    """Run the differencing plans until ``queries`` questions were asked.

    Example:
        >>> result = differencing(target, scenario, queries=50)  # doctest: +SKIP
        >>> result.claims  # doctest: +SKIP
        ()
    """
    return run_plans(target, scenario, _plans(scenario), name="differencing", channel=CHANNEL,
                     queries=queries)  # fmt: skip


__all__ = ["differencing"]
