"""Privacy models, evaluated on every equivalence class of a node at once.

Each model is a frozen value; :meth:`measure` gives its per-class figure (class size,
number of distinct values, exp(entropy), EMD...) and :meth:`passes` the classes that satisfy
it. Classes that fail are suppressed if the suppression limit allows.

Monotonicity (what lets the search prune) follows the literature: every model here is
monotone when nothing may be suppressed (merging two classes that satisfy it gives one that
does: entropy is concave, EMD convex); with suppression only k-anonymity and distinct
l-diversity stay monotone, so the others are checked on every candidate node.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from collabzone.errors import InvalidInputError
from collabzone.techniques.deid._hierarchy import Hierarchy
from collabzone.techniques.deid._risk_models import (
    AverageRisk,
    DeltaPresence,
    KMap,
    PopulationUniqueness,
)

FloatArray = np.ndarray
_EPS = 1e-9


@dataclass(frozen=True)
class ClassStats:
    """What the models read about a node's classes (weighted by row counts)."""

    sizes: np.ndarray
    """Rows per class."""
    hists: Mapping[str, np.ndarray] = field(default_factory=dict)
    """Per sensitive attribute: ``(classes, values)`` counts."""
    overall: Mapping[str, np.ndarray] = field(default_factory=dict)
    """Per sensitive attribute: the value distribution of the whole input."""
    values: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Per sensitive attribute: the values the histogram columns stand for."""
    population: np.ndarray | None = None
    """Per class: its rows in the population table (k-map, delta-presence), if given."""
    population_unmatched: int = 0
    """Population rows that fall in no class of the table (delta-presence with a positive
    delta_min fails then: those people are visibly absent, delta 0, as in ARX)."""


@dataclass(frozen=True)
class KAnonymity:
    """Every class holds at least ``k`` rows (Sweeney)."""

    k: int
    monotone_with_suppression = True
    monotone_with_generalisation = True

    def __post_init__(self) -> None:
        if isinstance(self.k, bool) or not isinstance(self.k, int) or self.k < 1:
            raise InvalidInputError(f"k must be a whole number >= 1, got {self.k!r}")

    def measure(self, stats: ClassStats) -> FloatArray:
        return np.asarray(stats.sizes, dtype=float)

    def passes(self, stats: ClassStats) -> np.ndarray:
        return stats.sizes >= self.k


def _check_l(l: float, name: str) -> None:  # noqa: E741
    if isinstance(l, bool) or not isinstance(l, int | float) or not l >= 1:
        raise InvalidInputError(f"{name} l must be a number >= 1, got {l!r}")


@dataclass(frozen=True)
class DistinctLDiversity:
    """Every class holds at least ``l`` distinct values of ``attribute``."""

    attribute: str
    l: int  # noqa: E741
    monotone_with_suppression = True
    monotone_with_generalisation = True

    def __post_init__(self) -> None:
        _check_l(self.l, "distinct")

    def measure(self, stats: ClassStats) -> FloatArray:
        return np.asarray((stats.hists[self.attribute] > 0).sum(axis=1), dtype=float)

    def passes(self, stats: ClassStats) -> np.ndarray:
        return self.measure(stats) >= self.l


def entropy_l(hist: np.ndarray) -> FloatArray:
    """exp(Shannon entropy) of each row of ``hist`` (the 'effective number' of values)."""
    totals = hist.sum(axis=1, keepdims=True)
    p = np.divide(hist, totals, out=np.zeros_like(hist, dtype=float), where=totals > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)
    return np.asarray(np.exp(-terms.sum(axis=1)), dtype=float)


_EULER = 0.5772156649015329


def _digamma_int(n: int) -> float:
    """psi(n) for a whole n >= 1: -gamma + 1 + 1/2 + ... + 1/(n-1)."""
    return -_EULER + math.fsum(1.0 / k for k in range(1, n))


def _digamma_half(m: int) -> float:
    """psi(m + 1/2) for a whole m >= 0: -gamma - 2 ln 2 + sum_{k=1..m} 2 / (2k - 1)."""
    return -_EULER - 2 * math.log(2) + math.fsum(2.0 / (2 * k - 1) for k in range(1, m + 1))


@functools.lru_cache(maxsize=4096)
def grassberger_g(n: int) -> float:
    """Grassberger's G_n (2003) as ARX evaluates it: G_1 = psi(1) - ln 2; for n >= 2 the
    value of the even number below or at n, G_2m = psi(2m) + (psi(m + 1/2) - psi(m)) / 2;
    above 100, ARX's asymptotic expansion ln(2m) + x (1/24 - x (7/960 - x 31/8064)),
    x = 1 / m^2."""
    if n < 1:
        raise ValueError(n)
    if n == 1:
        return -_EULER - math.log(2)
    even = n - n % 2
    m = even // 2
    if n <= 100:
        return _digamma_int(even) + 0.5 * (_digamma_half(m) - _digamma_int(m))
    x = 1.0 / (m * m)
    return math.log(even) + x * (1 / 24 - x * (7 / 960 - x * 31 / 8064))


def grassberger_entropy(hist: np.ndarray) -> FloatArray:
    """Grassberger's entropy estimate of each row of ``hist`` (counts, natural log):
    G(n) - sum_i (f_i / n) G(f_i), n the row's total (ARX's ``EntropyEstimator.GRASSBERGER``)."""
    counts = np.asarray(hist, dtype=np.int64)
    top = int(counts.max()) if counts.size else 0
    g = np.array([0.0] + [grassberger_g(i) for i in range(1, top + 1)])
    totals = counts.sum(axis=1)
    weighted = (counts * g[counts]).sum(axis=1)
    out = np.zeros(counts.shape[0])
    filled = totals > 0
    head = np.array([grassberger_g(int(t)) for t in totals[filled]])
    out[filled] = head - weighted[filled] / totals[filled]
    return out


Estimator = Literal["shannon", "grassberger"]


@dataclass(frozen=True)
class EntropyLDiversity:
    """The entropy of ``attribute`` in every class is at least log(l) (and, as in ARX, the
    class holds at least ceil(l) distinct values). ``estimator``: ``shannon`` (the plug-in
    entropy) or ``grassberger`` (Grassberger's bias-corrected estimate, ARX's option for
    small classes, where the plug-in entropy underestimates)."""

    attribute: str
    l: float  # noqa: E741
    estimator: Estimator = "shannon"
    monotone_with_suppression = False

    @property
    def monotone_with_generalisation(self) -> bool:
        """Shannon entropy is concave, so merging passing classes passes; Grassberger's
        estimate has no such proof here, so the search checks it on every candidate."""
        return self.estimator == "shannon"

    def __post_init__(self) -> None:
        _check_l(self.l, "entropy")
        if self.estimator not in ("shannon", "grassberger"):
            raise InvalidInputError(
                f"unknown entropy estimator {self.estimator!r}: use shannon or grassberger"
            )

    def measure(self, stats: ClassStats) -> FloatArray:
        """Per class exp(entropy estimate): the class passes when this is at least l."""
        hist = stats.hists[self.attribute]
        if self.estimator == "shannon":
            return entropy_l(hist)
        return np.asarray(np.exp(grassberger_entropy(hist)))

    def passes(self, stats: ClassStats) -> np.ndarray:
        hist = stats.hists[self.attribute]
        distinct = (hist > 0).sum(axis=1) >= math.ceil(self.l - _EPS)
        return np.asarray((self.measure(stats) >= self.l * (1 - _EPS)) & distinct)


@dataclass(frozen=True)
class RecursiveCLDiversity:
    """In every class the most frequent value is rarer than ``c`` times the sum of the
    ``l``-th most frequent onwards: r1 < c (r_l + ... + r_m) (Machanavajjhala et al.)."""

    attribute: str
    c: float
    l: int  # noqa: E741
    monotone_with_suppression = False
    monotone_with_generalisation = True

    def __post_init__(self) -> None:
        _check_l(self.l, "recursive")
        if not self.c > 0:
            raise InvalidInputError(f"recursive (c,l)-diversity needs c > 0, got {self.c!r}")

    def measure(self, stats: ClassStats) -> FloatArray:
        """Per class r1 / (r_l + ... + r_m): the class passes when this is below c."""
        ranked = -np.sort(-stats.hists[self.attribute], axis=1)
        tail = (
            ranked[:, self.l - 1 :].sum(axis=1) if ranked.shape[1] >= self.l else 0 * ranked[:, 0]
        )
        with np.errstate(divide="ignore"):
            return np.asarray(
                np.where(tail > 0, ranked[:, 0] / np.where(tail > 0, tail, 1), np.inf)
            )

    def passes(self, stats: ClassStats) -> np.ndarray:
        return np.asarray(self.measure(stats) < self.c)


Distance = Literal["equal", "ordered", "hierarchical"]


@dataclass(frozen=True)
class TCloseness:
    """The distribution of ``attribute`` in every class is within Earth Mover's Distance
    ``t`` of its distribution in the whole input (Li, Li, Venkatasubramanian).

    ``equal``: every two values are at distance 1; ``ordered``: values sorted (numerically
    for numbers), distance |i - j| / (m - 1); ``hierarchical``: distance is the height of the
    lowest common ancestor in ``hierarchy`` over its height.
    """

    attribute: str
    t: float
    distance: Distance = "equal"
    hierarchy: Hierarchy | None = None
    monotone_with_suppression = False
    monotone_with_generalisation = True

    def __post_init__(self) -> None:
        if not 0 <= self.t <= 1:
            raise InvalidInputError(f"t must be between 0 and 1, got {self.t!r}")
        if self.distance not in ("equal", "ordered", "hierarchical"):
            raise InvalidInputError(
                f"unknown t-closeness distance {self.distance!r}: use equal, ordered or hierarchical"
            )
        if self.distance == "hierarchical" and self.hierarchy is None:
            raise InvalidInputError(
                f"hierarchical t-closeness on {self.attribute!r} needs a hierarchy for it"
            )

    def measure(self, stats: ClassStats) -> FloatArray:
        hist = stats.hists[self.attribute]
        q = hist / np.maximum(hist.sum(axis=1, keepdims=True), 1)
        diff = q - stats.overall[self.attribute][None, :]
        m = diff.shape[1]
        if self.distance == "equal":
            return np.asarray(0.5 * np.abs(diff).sum(axis=1))
        if self.distance == "ordered":
            if m < 2:
                return np.zeros(diff.shape[0])
            return np.asarray(np.abs(np.cumsum(diff, axis=1)).sum(axis=1) / (m - 1))
        assert self.hierarchy is not None
        return hierarchical_emd(diff, ancestors(self.hierarchy, stats.values[self.attribute]))

    def passes(self, stats: ClassStats) -> np.ndarray:
        return np.asarray(self.measure(stats) <= self.t + _EPS)


PrivacyModel = (
    KAnonymity
    | DistinctLDiversity
    | EntropyLDiversity
    | RecursiveCLDiversity
    | TCloseness
    | AverageRisk
    | PopulationUniqueness
    | KMap
    | DeltaPresence
)


@functools.lru_cache(maxsize=64)
def ancestors(hierarchy: Hierarchy, values: tuple[str, ...]) -> np.ndarray:
    """``out[level, j]``: code of the ancestor of ``values[j]`` at ``level``."""
    out = np.zeros((hierarchy.height + 1, len(values)), dtype=np.int64)
    for level in range(hierarchy.height + 1):
        seen: dict[str, int] = {}
        for j, value in enumerate(values):
            out[level, j] = seen.setdefault(hierarchy.label(value, level), len(seen))
    return out


def hierarchical_emd(diff: np.ndarray, ancestors: np.ndarray) -> FloatArray:
    """EMD with hierarchical ground distance for each row of ``diff`` (q - p per value).

    ``ancestors[level, value]`` is the code of the value's ancestor at ``level``. Li et al.:
    at each inner node N the mass moved is min(positive extra, negative extra) of its
    children, at cost level(N) / height.
    """
    height = ancestors.shape[0] - 1
    if height == 0:
        return np.zeros(diff.shape[0])
    total = np.zeros(diff.shape[0])
    extra = diff  # extra mass of each child at the level below, per class
    for level in range(1, height + 1):
        below = ancestors[level - 1]
        n_below = int(below.max()) + 1
        child_extra = extra  # columns indexed by the codes of the level below
        parent_of = np.zeros(n_below, dtype=np.int64)
        parent_of[below] = ancestors[level]
        n_above = int(ancestors[level].max()) + 1
        pos = np.zeros((diff.shape[0], n_above))
        neg = np.zeros((diff.shape[0], n_above))
        np.add.at(pos.T, parent_of, np.maximum(child_extra, 0).T)
        np.add.at(neg.T, parent_of, np.maximum(-child_extra, 0).T)
        total += (level / height) * np.minimum(pos, neg).sum(axis=1)
        extra = pos - neg
    return total
