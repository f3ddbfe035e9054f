"""Judging an attack against ground truth: did it isolate anyone?

The caller (a test, a benchmark) holds the data; the attack never does. A :class:`Truth`
evaluates an aggregate over a predicate exactly and says how many people the predicate
covers. An inference *isolates* when it is about fewer than ``min_group_size`` people (an
empty region included, as the disclosure audit counts it) and

* it is a :class:`~collabzone.attacks.Claim` that is correct (the true value lies within
  its bounds): a certain deduction about a small group; or
* it is a correct :class:`~collabzone.attacks.Guess` of an attack whose guesses, together,
  beat the best uninformed guess significantly (one-sided binomial test, p < ``alpha``):
  then the attack is an oracle, and each correct guess is one person's secret learnt.

For DP answers, :func:`dp_accuracy_bound` is the best accuracy any attack can reach on
one person's bit with a 1/2 prior under pure epsilon-DP: e^eps / (1 + e^eps).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import duckdb
import pyarrow as pa
from scipy.stats import binomtest  # type: ignore[import-untyped]

from collabzone.attacks._result import AttackResult


class Truth(Protocol):
    """Exact answers over the real data (held by the caller, never by an attack)."""

    def evaluate(self, aggregate: str, where: str) -> tuple[float, int]:
        """``aggregate`` over the rows matching ``where`` (0 when none) and how many
        distinct people those rows hold."""
        ...


class TableTruth:
    """Ground truth over one table in DuckDB (the protected dataset as its owner has it)."""

    def __init__(self, table: pa.Table, name: str, entity: str) -> None:
        self._con = duckdb.connect()
        self._con.register(name, table)
        self._name, self._entity = name, entity
        self._cache: dict[tuple[str, str], tuple[float, int]] = {}

    def evaluate(self, aggregate: str, where: str) -> tuple[float, int]:
        key = (aggregate, where)
        if key not in self._cache:
            row = self._con.execute(
                f'SELECT {aggregate}, COUNT(DISTINCT "{self._entity}") FROM "{self._name}" '
                f"WHERE {where}"
            ).fetchone()
            assert row is not None
            value = float(row[0]) if row[0] is not None else 0.0
            self._cache[key] = (value, int(row[1]))
        return self._cache[key]

    def close(self) -> None:
        self._con.close()


@dataclass(frozen=True)
class Verdict:
    """What one attack achieved against the truth."""

    attack: str
    claims: int
    correct_claims: int
    isolating_claims: int
    guesses: int
    correct_guesses: int
    chance: float | None
    """Accuracy of the best uninformed guess (the majority value, per kind of guess)."""
    p_value: float | None
    """One-sided binomial test of the guesses' accuracy against ``chance``."""
    isolated: int
    """Distinct groups of fewer than the minimum people that a right inference was about
    (see the module docstring); several inferences about one cell count once."""
    smallest: int | None
    """People behind the smallest isolating inference."""

    @property
    def accuracy(self) -> float | None:
        return self.correct_guesses / self.guesses if self.guesses else None

    @property
    def succeeded(self) -> bool:
        return self.isolated > 0

    def summary(self) -> dict[str, object]:
        return {
            "attack": self.attack,
            "claims": self.claims,
            "correct_claims": self.correct_claims,
            "guesses": self.guesses,
            "accuracy": None if self.accuracy is None else round(self.accuracy, 3),
            "chance": None if self.chance is None else round(self.chance, 3),
            "p_value": None if self.p_value is None else float(f"{self.p_value:.3g}"),
            "isolated": self.isolated,
            "smallest": self.smallest,
        }


def _chance(truths: Mapping[str, list[float]]) -> float:
    total = sum(len(v) for v in truths.values())
    majority = sum(Counter(v).most_common(1)[0][1] for v in truths.values() if v)
    return majority / total if total else 0.0


def judge(
    result: AttackResult, truth: Truth, *, min_group_size: int, alpha: float = 1e-3
) -> Verdict:
    """Compare an attack's inferences with the truth (see the module docstring)."""
    correct_claims = 0
    small: dict[str, int] = {}
    for claim in result.claims:
        value, people = truth.evaluate(claim.aggregate, claim.where)
        right = claim.low - 1e-6 <= value <= claim.high + 1e-6
        correct_claims += int(right)
        if right and people < min_group_size:
            small[claim.where] = people
    isolating_claims = len(small)
    truths: dict[str, list[float]] = defaultdict(list)
    correct: list[tuple[bool, int, str]] = []
    for guess in result.guesses:
        value, people = truth.evaluate(guess.aggregate, guess.where)
        truths[guess.aggregate].append(round(value, 6))
        correct.append((math.isclose(value, guess.value, abs_tol=1e-6), people, guess.where))
    chance = _chance(truths) if correct else None
    p_value = None
    hits = sum(ok for ok, _, _ in correct)
    if correct and chance is not None:
        p_value = (
            1.0
            if chance >= 1
            else float(binomtest(hits, len(correct), chance, alternative="greater").pvalue)
        )
    if p_value is not None and p_value < alpha:
        small.update({w: n for ok, n, w in correct if ok and n < min_group_size})
    return Verdict(
        attack=result.attack,
        claims=len(result.claims),
        correct_claims=correct_claims,
        isolating_claims=isolating_claims,
        guesses=len(result.guesses),
        correct_guesses=hits,
        chance=chance,
        p_value=p_value,
        isolated=len(small),
        smallest=min(small.values()) if small else None,
    )


def dp_accuracy_bound(epsilon: float) -> float:
    """The best accuracy on one person's bit (prior 1/2) under pure epsilon-DP.

    For any guess g from an epsilon-DP view, P(g=1 | 1) <= e^eps P(g=1 | 0) and
    P(g=0 | 0) <= e^eps P(g=0 | 1); the average of the two correct-guess rates is then at
    most e^eps / (1 + e^eps).

    >>> round(dp_accuracy_bound(1.0), 4)
    0.7311
    """
    return 1.0 / (1.0 + math.exp(-epsilon))


__all__ = ["TableTruth", "Truth", "Verdict", "dp_accuracy_bound", "judge"]
