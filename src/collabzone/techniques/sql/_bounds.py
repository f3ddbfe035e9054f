"""Per-entity contribution limits derived privately, for agreements that do not fix them.

Users rarely know how many rows or groups one person contributes, and a limit set too low
biases every answer while one set too high drowns it in noise. When the agreement leaves
``max_rows_per_entity`` or ``max_groups_per_entity`` open, a small share of the query's
own budget buys a DP estimate of a high quantile of each entity's contribution (OpenDP's
``make_private_quantile``, one value per entity, so adding or removing a person moves the
input by one element), and the rest of the budget is spent on the answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from collabzone._opendp import dp
from collabzone.techniques.sql._dp import calibrate

CANDIDATES = (1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 24, 32, 48, 64, 100)
AUTO_SHARE = 0.1
"""Share of the query's budget spent on deriving the limits it needs."""
QUANTILE = 0.9


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
    """A DP estimate of the 90th percentile of ``values`` (one per entity) and its cost."""
    meas, _ = calibrate(lambda s: _quantile(zcdp, s), 1, share, 1.0)
    clipped = [max(1, min(int(v), CANDIDATES[-1])) for v in values] or [1]
    return int(meas(clipped)), float(meas.map(1))
