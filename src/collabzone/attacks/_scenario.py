"""What the attacker knows before asking: the catalogue and its background knowledge.

A :class:`Scenario` is public knowledge plus what a motivated attacker plausibly holds:
the protected table's name, its entity key and declared dimensions (from the catalogue),
the agreement's minimum group size, and *victims*: people whose quasi-identifiers (and,
for an attacker who is also a provider, join tokens) the attacker knows. Ground truth is
never here: whether a victim's secret bit is 1, or whether an outsider is absent, is
for the caller to judge with (:mod:`._judge`).

Every predicate the attacks write compares columns that the scenario declares non-null
(``quasi`` and ``splitters``), so ``NOT p`` is the exact complement of ``p`` and the set
algebra of :mod:`._algebra` holds without SQL's third truth value.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any


def literal(value: Any) -> str:
    """A SQL literal for ``value`` (text quoted with doubled quotes; no NULL: see above)."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("predicates compare with finite numbers only")
        return repr(value)
    text = str(value).replace("'", "''")
    return f"'{text}'"


def equals(column: str, value: Any, alias: str | None = None) -> str:
    return f"{qualify(column, alias)} = {literal(value)}"


def qualify(column: str, alias: str | None = None) -> str:
    return f"{alias}.{column}" if alias else column


def conjunction(values: Mapping[str, Any], alias: str | None = None) -> str:
    """``a = 1 AND b = 'x'``: the cell of one combination of values."""
    return " AND ".join(equals(c, v, alias) for c, v in values.items())


def any_of(parts: Sequence[str]) -> str:
    """``(p1) OR (p2) ...`` (``FALSE``-free: at least one part is required)."""
    if not parts:
        raise ValueError("an OR needs at least one part")
    return " OR ".join(f"({p})" for p in parts)


@dataclass(frozen=True)
class Person:
    """One person as the attacker knows them: a cell of quasi-identifiers, maybe a token."""

    name: str
    quasi: Mapping[str, Any]
    """Quasi-identifier values that the attacker believes single the person out."""
    token: str | None = None
    """The person's join token (known to an attacker who tokenised the same people)."""
    secret: float | None = None
    """The secret, when the attacker knows it (``known`` people only, never victims)."""

    def where(self, alias: str | None = None) -> str:
        return conjunction(self.quasi, alias)


@dataclass(frozen=True)
class Scenario:
    """The protected table and the attacker's background knowledge (see module docstring).

    Example:
        >>> s = Scenario(table="adult", entity="token", secret="high_income",
        ...              measure="capital_gain", measure_bounds=(0, 99999),
        ...              splitters={"sex": ("Female", "Male")},
        ...              victims=(Person("v1", {"sex": "Male", "age": 37}),))
        >>> s.victims[0].where()
        "sex = 'Male' AND age = 37"
    """

    table: str
    entity: str
    secret: str
    """A 0/1 column of the protected table that may be summed and filtered on."""
    measure: str
    """A numeric measure that may be summed (its clamping bounds: ``measure_bounds``)."""
    measure_bounds: tuple[float, float]
    splitters: Mapping[str, tuple[Any, ...]]
    """Non-null dimensions and their public values, to form large sets (trackers, bases)."""
    victims: tuple[Person, ...]
    """People the attacker targets; each alone in the cell of its ``quasi`` values."""
    outsiders: tuple[Person, ...] = ()
    """People the attacker asks about who may not be in the data (membership attacks)."""
    empty_cell: Person | None = None
    """A quasi-identifier cell the attacker is sure nobody occupies (a timing reference)."""
    helpers: tuple[str, ...] = ()
    """Tokens of other people the attacker holds (padding for an owned join side)."""
    known: tuple[Person, ...] = ()
    """People the attacker knows are in the data, each alone in its cell, some with their
    secret (padding for the threshold oracle)."""
    min_group_size: int = 10
    epsilon: float | None = None
    """DP: the total epsilon the attacker will spend (``None``: exact aggregation)."""
    seed: int = 0
    notes: Mapping[str, Any] = field(default_factory=dict)

    @property
    def dp(self) -> bool:
        return self.epsilon is not None

    def with_epsilon(self, epsilon: float | None) -> Scenario:
        """The same knowledge with another DP budget (``None``: exact answers)."""
        return replace(self, epsilon=epsilon)


__all__ = [
    "Person",
    "Scenario",
    "any_of",
    "conjunction",
    "equals",
    "literal",
    "qualify",
]
