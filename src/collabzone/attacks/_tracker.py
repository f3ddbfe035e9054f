"""Trackers: answers about large sets that add up to a small one (channel 1).

* ``general`` (Denning, Denning and Schwartz): for a tracker T with T and NOT T both
  large, q(C) = q(C OR T) + q(C OR NOT T) - q(T) - q(NOT T); no question is about a
  small set, and no two questions differ by the victim's cell alone.
* ``padding``: q(C) = q(C OR T) - q(T) for a large T disjoint from C.
* ``three-set``: T1 = A ∪ C, T2 = B ∪ C, T3 = A ∪ B over two other values A, B of one of
  the victim's columns: |C| = (T1 + T2 - T3) / 2 (a hidden cell's size, and its secret).

Trackers are chosen from the scenario's splitters (public values of non-null columns).
"""

from __future__ import annotations

from collections.abc import Iterator

from collabzone.attacks._algebra import Ask, Cell, Plan, Target, run_plans
from collabzone.attacks._result import AttackResult
from collabzone.attacks._scenario import Person, Scenario, equals
from collabzone.attacks._target import Target as Asked

CHANNEL = "1: set algebra (trackers)"


def _general(v: Person, tracker: str) -> Plan:
    c = v.where()
    return Plan(
        "general tracker",
        (Cell("C and T", f"({c}) AND ({tracker})"), Cell("C not T", f"({c}) AND NOT ({tracker})"),
         Cell("T not C", f"({tracker}) AND NOT ({c})"),
         Cell("neither", f"NOT ({tracker}) AND NOT ({c})")),
        (Ask(f"({c}) OR ({tracker})", (0, 1, 2)), Ask(f"({c}) OR NOT ({tracker})", (0, 1, 3)),
         Ask(tracker, (0, 2)), Ask(f"NOT ({tracker})", (1, 3))),
        (Target(v.name, (0, 1)),),
    )  # fmt: skip


def _padding(v: Person, tracker: str) -> Plan:
    c = v.where()
    return Plan(
        "padding tracker",
        (Cell("C", c), Cell("T", tracker)),
        (Ask(f"({c}) OR ({tracker})", (0, 1)), Ask(tracker, (1,))),
        (Target(v.name, (0,)),),
    )


def _three_set(v: Person, column: str, a: object, b: object) -> Plan:
    c = v.where()
    first, second = equals(column, a), equals(column, b)
    return Plan(
        "three-set tracker",
        (Cell("A", first), Cell("B", second), Cell("C", c)),
        (Ask(f"({first}) OR ({c})", (0, 2)), Ask(f"({second}) OR ({c})", (1, 2)),
         Ask(f"({first}) OR ({second})", (0, 1))),
        (Target(v.name, (2,)),),
    )  # fmt: skip


def _trackers(scenario: Scenario) -> list[tuple[str, object]]:
    """Candidate tracker predicates: one value of each splitter column."""
    return [(column, value) for column, values in scenario.splitters.items() for value in values]


def _three_set_values(
    victim: Person, scenario: Scenario, round_: int
) -> tuple[str, object, object] | None:
    """A column of the victim's with two other values A and B (a pair for each round)."""
    for column, values in scenario.splitters.items():
        others = [x for x in values if column in victim.quasi and x != victim.quasi[column]]
        if len(others) >= 2:
            first = others[round_ % len(others)]
            second = others[(round_ + 1) % len(others)]
            return column, first, second
    return None


def _plans(scenario: Scenario) -> Iterator[Plan]:
    candidates = _trackers(scenario)
    rounds = max(1, len(candidates))
    for round_ in range(rounds):
        for n, victim in enumerate(scenario.victims):
            column, value = candidates[(n + round_) % len(candidates)]
            yield _general(victim, equals(column, value))
            disjoint = [(c, x) for c, x in candidates if c in victim.quasi and x != victim.quasi[c]]
            if disjoint:
                c, x = disjoint[(n + round_) % len(disjoint)]
                yield _padding(victim, equals(c, x))
            three = _three_set_values(victim, scenario, round_)
            if three is not None:
                yield _three_set(victim, *three)


def tracker(target: Asked, scenario: Scenario, *, queries: int = 500) -> AttackResult:
    """Run general, padding and three-set trackers until ``queries`` questions were asked."""
    return run_plans(target, scenario, _plans(scenario), name="tracker", channel=CHANNEL,
                     queries=queries)  # fmt: skip


__all__ = ["tracker"]
