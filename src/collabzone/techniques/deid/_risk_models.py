"""Risk-based privacy models (ARX's ``RiskBasedCriterion`` family) and k-map.

Unlike k or l, these judge the whole released table, not each class: ARX checks them on
the distribution of the kept classes and, if they fail, suppresses whole classes from the
smallest up (binary search on how many) until they hold or the suppression limit is
exceeded. :meth:`enforce` does the same on a node's kept classes.

* :class:`AverageRisk` (ARX ``AverageReidentificationRisk``): the average prosecutor risk,
  classes / kept rows (1 / average class size), is at most ``threshold``; optionally also
  at most ``records_at_risk`` of the kept rows sit in classes smaller than the size the
  ``highest_risk`` allows (ARX's ``ParameterTranslation.getSizeThreshold``).
* :class:`PopulationUniqueness` (ARX ``PopulationUniqueness``): the estimated share of the
  population (``population_size`` people) unique on the quasi-identifiers, by the Pitman,
  Zayatz, SNB or Dankar model (``_population.py``), is at most ``threshold``.
* :class:`KMap` (ARX ``KMap`` with a population table): every released class matches at
  least ``k`` people of the population table, generalised the same way.
* :class:`DeltaPresence` (ARX ``DPresence``): for every released class, the share of its
  population matches that are in the table (count / population count) lies in
  [``delta_min``, ``delta_max``], so an attacker holding the population cannot tell
  whether a person is in the table with more than ``delta_max`` confidence.
* :func:`k_map_estimated_k` (ARX ``KMap`` with a cell-size estimator): every class must be
  large enough that, under a Poisson (or zero-truncated Poisson) model of the population
  cell sizes with the sampling fraction n / N, the class is at least ``k`` people in the
  population with probability 1 - ``significance``; ARX turns this into k-anonymity with a
  derived k.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np

from collabzone.errors import InvalidInputError
from collabzone.techniques.deid._population import UniquenessModel, population_uniques

_RELATIVE_PRECISION = 0.01


class Stats(Protocol):
    """What these models read of a node's classes (``_models.ClassStats``)."""

    @property
    def sizes(self) -> np.ndarray: ...

    @property
    def population(self) -> np.ndarray | None: ...


def size_threshold(risk: float) -> int:
    """The smallest class size whose prosecutor risk is within ``risk`` (ARX's rule: 1 / risk
    rounded down unless that overshoots by 1 % of the risk)."""
    if not 0 <= risk <= 1:
        raise InvalidInputError(f"a risk threshold must be between 0 and 1, got {risk!r}")
    if risk == 0:
        return 2**31 - 1
    size = 1 / risk
    floor = math.floor(size)
    if 1 / floor - 1 / size >= _RELATIVE_PRECISION * risk:
        floor += 1
    return int(floor)


class _TableModel:
    """Shared behaviour: per-class passes is all True; the table-level check is enforced
    by suppressing the smallest kept classes (ARX's ``suppressWhileNotFulfilledBinary``)."""

    table_level = True
    monotone_with_suppression = False

    def fulfilled(self, sizes: np.ndarray) -> bool:
        raise NotImplementedError

    def passes(self, stats: Stats) -> np.ndarray:
        return np.ones(np.asarray(stats.sizes).shape[0], dtype=bool)

    def enforce(
        self, sizes: np.ndarray, kept: np.ndarray, order: tuple[np.ndarray, ...] | None = None
    ) -> np.ndarray:
        """``kept`` with the fewest smallest classes removed so the model holds. Among
        classes of one size, ``order`` decides, last key first (ARX: the class's loss for
        the loss metric, then its first row); without it, the class id."""
        if self.fulfilled(sizes[kept]):
            return kept
        ids = np.flatnonzero(kept)
        keys = (ids,) if order is None else tuple(k[ids] for k in order)
        ranked = ids[np.lexsort((*keys, sizes[ids]))]  # smallest first
        cut = _arx_binary_search(
            ranked.shape[0], lambda c: self.fulfilled(sizes[kept & ~_first_n(sizes, ranked, c)])
        )
        out = kept.copy()
        out[ranked[:cut]] = False
        return out


def _first_n(sizes: np.ndarray, order: np.ndarray, n: int) -> np.ndarray:
    out = np.zeros(sizes.shape[0], dtype=bool)
    out[order[:n]] = True
    return out


def _arx_binary_search(length: int, fulfilled: Callable[[int], bool]) -> int:
    """How many of the ``length`` ordered classes to suppress, found the way ARX's
    ``suppressWhileNotFulfilledBinary`` does (Java integer midpoints, a last check of one
    more class). For a monotone condition this is the smallest prefix that holds; the
    estimators of population uniqueness are not monotone (they can fail to converge for
    some prefixes), so the same walk is followed to land where ARX lands."""
    low, high = 0, length - 1
    mid = int((low + high) / 2)  # Java's division truncates towards zero
    cut = mid + 1
    state = False
    while low <= high:
        state = fulfilled(cut)
        if state:
            high = mid - 1
            mid = int((low + high) / 2)
            cut = min(cut, mid + 1)
        else:
            low = mid + 1
            mid = int((low + high) / 2)
            cut = max(cut, mid + 1)
    if not fulfilled(cut) and mid + 1 < length and cut == mid + 1:
        cut += 1
    return cut


@dataclass(frozen=True)
class AverageRisk(_TableModel):
    """Average re-identification risk at most ``threshold`` (ARX
    ``AverageReidentificationRisk``), optionally with at most ``records_at_risk`` of the
    rows in classes whose risk exceeds ``highest_risk``."""

    threshold: float
    highest_risk: float | None = None
    records_at_risk: float | None = None
    monotone_with_generalisation = True

    def __post_init__(self) -> None:
        if not 0 <= self.threshold <= 1:
            raise InvalidInputError(f"average risk must be between 0 and 1, got {self.threshold!r}")
        if (self.highest_risk is None) != (self.records_at_risk is None):
            raise InvalidInputError("give highest_risk and records_at_risk together")
        if self.highest_risk is not None and not 0 < self.highest_risk <= 1:
            raise InvalidInputError(f"highest risk must be in (0, 1], got {self.highest_risk!r}")

    def fulfilled(self, sizes: np.ndarray) -> bool:
        rows = float(sizes.sum())
        if rows == 0:
            return True
        if sizes.shape[0] / rows > self.threshold:
            return False
        if self.highest_risk is None or self.records_at_risk is None:
            return True
        small = sizes[sizes < size_threshold(self.highest_risk)].sum()
        return bool(small / rows <= self.records_at_risk)


@dataclass(frozen=True)
class PopulationUniqueness(_TableModel):
    """At most ``threshold`` of the population (``population_size`` people) is estimated to
    be unique on the quasi-identifiers (ARX ``PopulationUniqueness``)."""

    threshold: float
    population_size: int
    model: UniquenessModel = "dankar"
    monotone_with_generalisation = False

    def __post_init__(self) -> None:
        if not 0 <= self.threshold <= 1:
            raise InvalidInputError(
                f"population uniqueness must be between 0 and 1, got {self.threshold!r}"
            )
        if self.model not in ("pitman", "zayatz", "snb", "dankar"):
            raise InvalidInputError(
                f"unknown uniqueness model {self.model!r}: use pitman, zayatz, snb or dankar"
            )

    def share(self, sizes: np.ndarray) -> tuple[float, str]:
        """The estimated share of population uniques, and the model that gave it."""
        values, counts = np.unique(sizes[sizes > 0], return_counts=True)
        histogram = dict(zip(values.tolist(), counts.tolist(), strict=True))
        if sum(s * c for s, c in histogram.items()) > self.population_size:
            raise InvalidInputError(
                f"population_size {self.population_size} is smaller than the table: give the "
                "size of the population the rows were drawn from"
            )
        uniques, used = population_uniques(
            histogram, float(self.population_size), self.model, zayatz_fallback=False
        )
        return uniques / self.population_size, used

    def fulfilled(self, sizes: np.ndarray) -> bool:
        if sizes.sum() == 0:
            return True
        share, _ = self.share(sizes)
        if share > 0:
            return share <= self.threshold
        return not bool((sizes == 1).any())  # ARX: zero uniques counts only without uniques


CellSizeEstimator = Literal["poisson", "zero_truncated_poisson"]


def k_map_estimated_k(
    k: int,
    rows: int,
    population_size: int,
    significance: float = 0.01,
    estimator: CellSizeEstimator = "poisson",
) -> int:
    """The class size ARX's k-map (with a cell-size estimator) requires: the smallest size
    whose Poisson (lambda = k * n / N) cumulative probability reaches 1 - significance,
    capped at k and at the number of rows."""
    from scipy import stats as sps  # type: ignore[import-untyped]  # (imported when used)

    if not 0 <= significance <= 1:
        raise InvalidInputError(f"significance must be between 0 and 1, got {significance!r}")
    if population_size < rows:
        raise InvalidInputError(
            f"population_size {population_size} is smaller than the table ({rows} rows)"
        )
    lam = rows / population_size * k
    threshold = 1 - significance
    if estimator == "poisson":
        counter, value = 0, 0.0
        while value < threshold:
            value = float(sps.poisson.cdf(counter, lam))
            counter += 1
            if counter >= k:
                break
        derived = counter + 1
    else:
        v2 = 1 - float(sps.poisson.pmf(0, lam))
        counter, value = 1, 0.0
        while value < threshold:
            value += float(sps.poisson.pmf(counter, lam)) / v2
            counter += 1
            if counter >= k:
                break
        derived = counter
    return max(1, min(k, derived, rows))


def _population_counts(stats: Stats) -> np.ndarray:
    counts = stats.population
    if counts is None:
        raise InvalidInputError(
            "k-map and delta-presence need a population table: give `population`"
        )
    return np.asarray(counts)


@dataclass(frozen=True)
class KMap:
    """Every class matches at least ``k`` rows of the population table (ARX ``KMap``
    with a population table, its exact variant)."""

    k: int
    needs_population = True
    monotone_with_suppression = True
    monotone_with_generalisation = True

    def __post_init__(self) -> None:
        if isinstance(self.k, bool) or not isinstance(self.k, int) or self.k < 1:
            raise InvalidInputError(f"k-map k must be a whole number >= 1, got {self.k!r}")

    def measure(self, stats: Stats) -> np.ndarray:
        return np.asarray(_population_counts(stats), dtype=float)

    def passes(self, stats: Stats) -> np.ndarray:
        return np.asarray(_population_counts(stats) >= self.k)


@dataclass(frozen=True)
class DeltaPresence:
    """count / population count of every class in [``delta_min``, ``delta_max``] (ARX
    ``DPresence``; Nergiz et al.)."""

    delta_min: float
    delta_max: float
    needs_population = True
    monotone_with_suppression = False
    monotone_with_generalisation = False

    def __post_init__(self) -> None:
        if not 0 <= self.delta_min <= self.delta_max <= 1:
            raise InvalidInputError(
                f"delta-presence needs 0 <= delta_min <= delta_max <= 1, got "
                f"{self.delta_min!r}, {self.delta_max!r}"
            )

    def measure(self, stats: Stats) -> np.ndarray:
        sizes = np.asarray(stats.sizes, dtype=np.float64)
        pop = _population_counts(stats).astype(float)
        return np.asarray(np.divide(sizes, pop, out=np.zeros_like(sizes), where=pop > 0))

    def passes(self, stats: Stats) -> np.ndarray:
        delta = self.measure(stats)
        return np.asarray((delta >= self.delta_min - 1e-12) & (delta <= self.delta_max + 1e-12))
