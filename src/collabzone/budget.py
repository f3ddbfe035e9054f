"""Privacy budgets as frozen values, and the pure arithmetic of the ledger.

A :class:`PrivacyCost` is what one release spends on one dataset: ``epsilon`` and
``delta`` (approximate DP) and/or ``rho`` (zero-concentrated DP). Sums are done in
:class:`~decimal.Decimal` over the exact decimal expansion of each float so that ten debits
of 0.1 add up to exactly 1.0 and the last one is neither refused nor let through by a
rounding error. The ledger's storage lives in :mod:`collabzone.store.metadata`; this module
only decides.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from collabzone.errors import InvalidInputError


def _check_amount(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInputError(f"{name} must be a number, got {type(value).__name__}")
    if math.isnan(value) or math.isinf(value):
        raise InvalidInputError(f"{name} must be finite, got {value}")
    if value < 0:
        raise InvalidInputError(f"{name} must not be negative, got {value}")
    return float(value)


PARAMETER_RANGES: dict[str, tuple[float, float]] = {
    "epsilon": (1e-6, 100.0),
    "rho": (1e-12, 5000.0),
    "delta": (1e-30, 0.01),
}
"""The public range of each privacy parameter a request may state (delta may also be 0).

Outside it the mechanisms cannot be calibrated soundly: an epsilon of 5e-324 divides to an
infinite noise scale, a delta below 1e-30 asks for thresholds beyond exact integers, and
an epsilon above 100 (rho above 5000) is no privacy at all. Refused before anything runs."""


def privacy_parameter(name: str, value: object) -> float:
    """``value`` as the request's ``epsilon``, ``rho`` or ``delta``, or InvalidInputError
    naming the accepted range (see :data:`PARAMETER_RANGES`).

    >>> privacy_parameter("epsilon", 0.5)
    0.5
    """
    low, high = PARAMETER_RANGES[name]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInputError(f"{name} must be a number from {low:g} to {high:g}")
    number = float(value)
    if name == "delta" and number == 0:
        return 0.0
    if not (math.isfinite(number) and low <= number <= high):
        zero = "0 or " if name == "delta" else ""
        raise InvalidInputError(f"{name} must be {zero}a number from {low:g} to {high:g}")
    return number


def _dec(value: float) -> Decimal:
    return Decimal(repr(float(value)))


@dataclass(frozen=True)
class PrivacyCost:
    """Privacy loss of one release on one dataset (all three may be zero)."""

    epsilon: float = 0.0
    delta: float = 0.0
    rho: float = 0.0

    def __post_init__(self) -> None:
        _check_amount("epsilon", self.epsilon)
        _check_amount("delta", self.delta)
        _check_amount("rho", self.rho)
        if self.delta >= 1:
            raise InvalidInputError(f"delta must be below 1, got {self.delta}")

    @property
    def is_free(self) -> bool:
        return self.epsilon == 0 and self.delta == 0 and self.rho == 0

    def __add__(self, other: PrivacyCost) -> PrivacyCost:
        return PrivacyCost(
            float(_dec(self.epsilon) + _dec(other.epsilon)),
            float(_dec(self.delta) + _dec(other.delta)),
            float(_dec(self.rho) + _dec(other.rho)),
        )

    def as_dict(self) -> dict[str, float]:
        return {"epsilon": self.epsilon, "delta": self.delta, "rho": self.rho}


@dataclass(frozen=True)
class BudgetLimit:
    """What an agreement grants per (party, dataset, period); ``None`` means not granted."""

    epsilon: float | None = None
    delta: float | None = None
    rho: float | None = None

    def __post_init__(self) -> None:
        for name in ("epsilon", "delta", "rho"):
            value = getattr(self, name)
            if value is not None:
                _check_amount(f"{name} budget", value)


class Period(StrEnum):
    """How often a budget renews."""

    DAY = "day"
    MONTH = "month"
    YEAR = "year"
    TOTAL = "total"


def period_key(period: Period | str, at: dt.datetime) -> str:
    """The ledger bucket that ``at`` falls in, e.g. ``month:2026-11``."""
    period = Period(period)
    if period is Period.DAY:
        return f"day:{at:%Y-%m-%d}"
    if period is Period.MONTH:
        return f"month:{at:%Y-%m}"
    if period is Period.YEAR:
        return f"year:{at:%Y}"
    return "total"


def total(costs: Iterable[PrivacyCost]) -> PrivacyCost:
    """Exact sum of costs (basic composition)."""
    eps, delta, rho = Decimal(0), Decimal(0), Decimal(0)
    for cost in costs:
        eps += _dec(cost.epsilon)
        delta += _dec(cost.delta)
        rho += _dec(cost.rho)
    return PrivacyCost(float(eps), float(delta), float(rho))


def overspend(spent: Iterable[PrivacyCost], cost: PrivacyCost, limit: BudgetLimit) -> list[str]:
    """Which budget components ``cost`` would overspend, given what was already ``spent``.

    A component the cost uses but the limit does not grant counts as overspent: privacy
    loss is never charged against an unstated budget.
    """
    spent_list = list(spent)
    problems = []
    for name in ("epsilon", "delta", "rho"):
        want = _dec(getattr(cost, name))
        if want == 0:
            continue
        cap = getattr(limit, name)
        if cap is None:
            problems.append(f"{name}: the agreement grants no {name} budget")
            continue
        used = sum((_dec(getattr(s, name)) for s in spent_list), Decimal(0))
        if used + want > _dec(cap):
            problems.append(f"{name}: {used} spent + {want} requested > {cap} granted")
    return problems


def remaining(spent: Iterable[PrivacyCost], limit: BudgetLimit) -> dict[str, float | None]:
    """What is left of each component (``None`` where the agreement grants none)."""
    used = total(spent)
    out: dict[str, float | None] = {}
    for name in ("epsilon", "delta", "rho"):
        cap = getattr(limit, name)
        out[name] = (
            None if cap is None else float(max(Decimal(0), _dec(cap) - _dec(getattr(used, name))))
        )
    return out
