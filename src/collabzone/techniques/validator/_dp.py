"""DP noise for validation feedback (OpenDP) and Monte Carlo confidence intervals.

Neighbouring submissions differ in one record's *label* (the record set is the ML party's
own choice and is public to it). A record sits in ``cells`` released cells (the whole
submission and at most one group), so changing its label moves one positive count by one
in each cell: L1 sensitivity ``cells`` for the vector of positive counts. Regression sums
are scaled by their own per-record bound first, so each of the four sums has sensitivity
one per cell. The noise comes from OpenDP's vetted samplers; every measurement's privacy
map is checked against the epsilon the plan priced before it runs.

Intervals: the released metric is a function of noisy counts; we redraw the noise with the
same (public) distribution many times and take the empirical quantiles of the metric's
error, which gives an interval around the released value that covers the exact metric with
roughly the stated confidence.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from collabzone.errors import InternalError

FloatArray = NDArray[np.float64]
CONFIDENCE = 0.95
DRAWS = 400


def _opendp() -> Any:
    import opendp.prelude as dp

    dp.enable_features("contrib")
    return dp


def noisy_counts(exact: list[int], sensitivity: int, epsilon: float) -> tuple[list[int], float]:
    """Discrete Laplace noise on integer counts; returns the noisy counts and the scale."""
    dp = _opendp()
    scale = sensitivity / epsilon
    measurement = dp.m.make_laplace(
        dp.vector_domain(dp.atom_domain(T=int)), dp.l1_distance(T=int), scale=scale
    )
    if measurement.map(sensitivity) > epsilon * (1 + 1e-9):
        raise InternalError("the noise measurement would spend more than the priced epsilon")
    return [int(v) for v in measurement(exact)], scale


def noisy_unit_sums(
    exact: list[float], sensitivity: float, epsilon: float
) -> tuple[list[float], float]:
    """Continuous Laplace noise on sums already scaled to unit per-record bound."""
    dp = _opendp()
    scale = sensitivity / epsilon
    measurement = dp.m.make_laplace(
        dp.vector_domain(dp.atom_domain(T=float, nan=False)),
        dp.l1_distance(T=float),
        scale=scale,
    )
    if measurement.map(sensitivity) > epsilon * (1 + 1e-9):
        raise InternalError("the noise measurement would spend more than the priced epsilon")
    return [float(v) for v in measurement([float(x) for x in exact])], scale


def sample_discrete_laplace(
    rng: np.random.Generator, scale: float, shape: tuple[int, ...]
) -> FloatArray:
    """Draws of the discrete Laplace distribution (difference of two geometrics).

    Used only to size confidence intervals (post-processing), never to protect data.
    """
    p = 1.0 - np.exp(-1.0 / scale)
    return (rng.geometric(p, shape) - rng.geometric(p, shape)).astype(np.float64)


def intervals(
    noisy: FloatArray,
    noise: Callable[[np.random.Generator, tuple[int, ...]], FloatArray],
    metrics: Callable[[FloatArray], dict[str, FloatArray]],
    rng: np.random.Generator,
) -> dict[str, tuple[float, float]]:
    """Per metric, a ``CONFIDENCE`` interval around ``metrics(noisy)``.

    If ``m(noisy) - m(exact)`` is distributed like ``m(noisy + e) - m(noisy)`` for fresh
    noise ``e`` (exact for linear metrics, close for smooth ones), subtracting that error's
    quantiles from the released value covers the exact metric with the stated confidence.
    For ratios of noisy counts (ROC AUC, precision) the error's bias and skew at the noisy
    point differ from those at the exact one, and that bias-corrected interval covered the
    exact AUC only about 90% of the time; so the interval is made symmetric with the larger
    of the two half-widths, a superset of the bias-corrected one that holds the stated
    confidence for those metrics too (and changes nothing for symmetric, unbiased ones).
    """
    released = metrics(noisy)
    draws = metrics(noisy[None, ...] + noise(rng, (DRAWS, *noisy.shape)))
    alpha = 1 - CONFIDENCE
    out = {}
    for name, value in released.items():
        centre = float(value)
        if not np.isfinite(centre):
            continue
        errors = draws[name] - centre
        errors = errors[np.isfinite(errors)]
        if errors.size == 0:
            continue
        low, high = np.quantile(errors, [alpha / 2, 1 - alpha / 2])
        half_width = max(float(high), -float(low))
        out[name] = (centre - half_width, centre + half_width)
    return out
