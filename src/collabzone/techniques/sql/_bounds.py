"""Per-entity contribution limits: their private derivation, and what fits exact noise.

Users rarely know how many rows or groups one person contributes, and a limit set too low
biases every answer while one set too high drowns it in noise. When the agreement leaves
``max_rows_per_entity`` or ``max_groups_per_entity`` open, a small share of the query's
own budget buys a DP estimate of a high quantile of each entity's contribution (OpenDP's
``make_private_quantile``, one value per entity, so adding or removing a person moves the
input by one element), and the rest of the budget is spent on the answer.

Noise is exact integer noise (OpenDP over ``i64``), so one person's largest contribution
(clamping bound x rows x groups, in integer-scaled units) must stay well inside 64 bits;
wider bounds are refused when the query is planned, before anything runs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from collabzone._opendp import dp
from collabzone.errors import Reason
from collabzone.techniques.sql._dp import SAFETY, calibrate
from collabzone.techniques.sql.rules._context import Quantity, SumBound

CANDIDATES = (1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 24, 32, 48, 64, 100)
AUTO_SHARE = 0.1
"""Share of the query's budget spent on deriving the limits it needs."""
QUANTILE = 0.9
MAX_CONTRIBUTION = 2**53
"""Largest per-entity contribution (|bound| x rows x groups, scaled to integers) accepted:
exact as a float in the calibration, and far inside OpenDP's i64 distances."""
FLOAT_SUM_SCALE = 100
"""Scale of non-integral values: their sums and bounds are exact integers in hundredths."""


def _quantile(zcdp: bool, scale: float) -> Any:
    measure = dp.zero_concentrated_divergence() if zcdp else dp.max_divergence()
    return dp.m.make_private_quantile(
        dp.vector_domain(dp.atom_domain(T="i64")),
        dp.symmetric_distance(),
        measure,
        candidates=list(CANDIDATES),
        alpha=QUANTILE,
        scale=scale,
    )


def derive_limit(values: Sequence[int], *, share: float, zcdp: bool) -> tuple[int, float]:
    """A DP estimate of the 90th percentile of ``values`` (one per entity) and its cost
    (OpenDP's privacy map at one entity added or removed, at most ``share``)."""
    target = share * SAFETY
    unit = float(_quantile(zcdp, 1.0).map(1))  # loss falls as 1/scale (pure), 1/scale^2 (zCDP)
    first = unit / target if not zcdp else math.sqrt(unit / target)
    meas, _ = calibrate(lambda s: _quantile(zcdp, s), 1, target, first * (1 - 1e-9))
    clipped = [max(1, min(int(v), CANDIDATES[-1])) for v in values] or [1]
    return int(meas(clipped)), float(meas.map(1))


def scaled_bound(low_high: tuple[float, float], scale: int) -> SumBound | None:
    """Clamping bounds scaled to integers, or None unless finite and ordered."""
    low, high = low_high
    if not (math.isfinite(low) and math.isfinite(high)) or low > high:
        return None
    return SumBound(round(low * scale), round(high * scale), scale)


def bad_bounds(column: str, owner: str | None) -> Reason:
    """The refusal for bounds that are not two finite, ordered numbers."""
    return Reason(
        "BAD_BOUNDS",
        "sql.bounds",
        f"the clamping bounds of {column!r} must be two finite numbers, low <= high",
        owner,
    )


def too_wide(quantities: Sequence[Quantity], *, rows: int, groups: int) -> list[Reason]:
    """Refusals for quantities whose per-entity contribution exceeds MAX_CONTRIBUTION.

    ``rows`` and ``groups`` are the agreement's limits, or the largest value the private
    derivation can pick when the agreement leaves them open.
    """
    reasons = []
    for quantity in quantities:
        bound = quantity.bound
        per_row = 1 if bound is None else max(abs(bound.low), abs(bound.high), 1)
        if per_row * rows * groups <= MAX_CONTRIBUTION:
            continue
        scale = 1 if bound is None else bound.scale
        limit = MAX_CONTRIBUTION / (rows * groups * scale)
        what = "one person's rows" if bound is None else "the clamping bounds"
        reasons.append(
            Reason(
                "BOUNDS_TOO_WIDE",
                "sql.bounds",
                f"{what} are too wide for exact noise: with {rows} row(s) in each of "
                f"{groups} group(s) per person, bounds must stay within +-{limit:.3g}; "
                "narrow the bounds or fix max_rows_per_entity / max_groups_per_entity",
            )
        )
    return reasons
