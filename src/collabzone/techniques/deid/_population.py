"""Population uniqueness estimators (ARX ``RiskModelPopulationUniqueness``).

From a sample's class-size histogram (``{size: number of classes}``), its size n and the
population size N (sampling fraction f = n / N), each model estimates how many records of
the population are unique on the quasi-identifiers:

* **Zayatz** (1991): the sample uniques times the conditional probability that a sample
  unique is a population unique, from hypergeometric probabilities, divided by f.
* **Pitman** (1996): the two-parameter Poisson-Dirichlet model; theta and alpha by maximum
  likelihood (Hoshino 2001), uniques = Gamma(theta + 1) / Gamma(theta + alpha) * N^alpha.
* **SNB** (Chen and Keller-McNulty 1998): the slide negative binomial model; its two
  parameters fitted to the number of sample classes of size 1 and 2.
* **Dankar** (Dankar et al. 2012): the selection rule ARX applies: for f <= 0.1 Pitman
  (Zayatz if Pitman fails); otherwise the smaller of Zayatz and SNB (Zayatz if SNB fails).

An estimate that is not a number, or zero while there are sample uniques, counts as
failed (ARX: "not valid"), as in ARX.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Literal

import numpy as np

UniquenessModel = Literal["pitman", "zayatz", "snb", "dankar"]


def tg(z: float | np.ndarray) -> np.ndarray:
    """The trigamma function."""
    from scipy import special  # type: ignore[import-untyped]  # (imported when used)

    return np.asarray(special.polygamma(1, z))


def _valid(value: float) -> bool:
    return not math.isnan(value) and value != 0.0


def zayatz(histogram: Mapping[int, int], n: float, population: float) -> float:
    """Zayatz's estimate of the number of population uniques."""
    from scipy import stats

    c1 = histogram.get(1, 0)
    if c1 == 0:
        return 0.0
    classes = float(sum(histogram.values()))
    big_n, small_n = int(min(population, 2**31 - 1)), int(n)
    temp = 0.0
    for size, count in histogram.items():
        temp += count / classes * stats.hypergeom.pmf(1, big_n, size, small_n)
    single = stats.hypergeom.pmf(1, big_n, 1, small_n)
    uniqueness = (c1 / classes) * single / temp
    return float(c1 * uniqueness / (n / population))


def pitman(histogram: Mapping[int, int], n: float, population: float) -> float:
    """Pitman's estimate: theta and alpha solve the likelihood equations (Newton-Raphson
    from Hoshino's moment estimates, as ARX), then Gamma(t+1)/Gamma(t+a) * N^a."""
    from scipy import special

    if histogram.get(1, 0) == 0:
        return 0.0
    fitted = pitman_parameters(histogram, n)
    if fitted is None:
        return math.nan
    t, a = fitted
    # in logs: with a large alpha, N^alpha alone overflows a float
    log_value = float(special.gammaln(t + 1) - special.gammaln(t + a)) + a * math.log(population)
    if not math.isfinite(log_value) or log_value > math.log(population):
        return math.nan
    return math.exp(log_value)


def pitman_parameters(histogram: Mapping[int, int], n: float) -> tuple[float, float] | None:
    """(theta, alpha) of the Pitman model by maximum likelihood, or None if Newton-Raphson
    does not converge (to theta >= 0, alpha != 0, ARX's conditions)."""
    from scipy import special

    c1 = float(histogram.get(1, 0))
    c2 = float(histogram.get(2, 0)) or 1.0  # ARX: overestimate when there is no pair
    u = float(sum(histogram.values()))
    c = c1 * (c1 - 1) / c2
    t0 = (n * u * c - c1 * (n - 1) * (2 * u + c)) / (2 * c1 * u + c1 * c - n * c)
    a0 = (t0 * (c1 - n) + (n - 1) * c1) / (n * u)
    sizes = np.array([s for s in histogram if s != 1], dtype=float)
    counts = np.array([histogram[int(s)] for s in sizes], dtype=float)

    def equations(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        t, a = float(x[0]), float(x[1])
        v = u - 1.0
        dg = special.digamma
        val1, val2 = dg(v + t / a + 1), tg((a + t + a * v) / a)
        val3, val4 = tg(t / a + 1), dg(t / a + 1)
        a2 = a * a
        d1 = (val3 - val2) / a2
        d5 = (a * val1 + t * val2 - a * val4 - t * val3) / (a2 * a)
        d3 = (a2 * v - t * t * val2 + t * t * val3 - 2 * a * t * val1 + 2 * a * t * val4) / (
            a2 * a2
        )
        o1 = (val1 - val4) / a
        o3 = (-t * val1 + a * v + t * val4) / a2
        o2 = dg(n + t) - dg(t + 1)
        d2 = tg(t + 1) - tg(n + t)
        d4 = float((counts * (tg(1 - a) - tg(sizes - a))).sum())
        o4 = float((counts * (dg(sizes - a) - dg(1 - a))).sum())
        value = np.array([o1 - o2, o3 - o4])
        jacobian = np.array([[d2 - d1, -d5], [-d5, -d3 - d4]])
        return value, jacobian

    x = np.array([t0, a0])
    for _ in range(200):
        with np.errstate(all="ignore"):
            value, jac = equations(x)
            if not np.all(np.isfinite(value)) or not np.all(np.isfinite(jac)):
                return None
            if np.abs(value).max() < 1e-9:
                break
            try:
                step = np.linalg.solve(jac, value)
            except np.linalg.LinAlgError:
                return None
        x = x - step
        if x[0] < 0:  # ARX's constraint: theta >= 0
            return None
    else:
        return None
    t, a = float(x[0]), float(x[1])
    return (t, a) if a != 0 else None  # ARX rejects only alpha = 0 (and NaN)


def snb(histogram: Mapping[int, int], n: float, population: float) -> float:
    """The SNB estimate k * beta^alpha, (alpha, beta) fitted to the classes of size 1 and 2
    and k the estimated number of non-empty population classes (ARX's formulas)."""
    from scipy import optimize

    c1 = float(histogram.get(1, 0))
    if c1 == 0:
        return 0.0
    c2 = float(histogram.get(2, 0))
    f = n / population
    var1 = var2 = var3 = var4 = 0.0
    for size, count in histogram.items():
        val2 = (1 - f) ** size * count
        var1 += size * f * f * (1 - f * f) ** (size - 1) * count
        var2 += val2 * (1 + f) ** size - 1
        var3 += val2
        var4 += size * f * (1 - f) ** (size - 1) * count
    k = sum(histogram.values()) + c1 * (var1 / var2) * (var3 / var4) ** 2

    def objective(x: np.ndarray) -> np.ndarray:
        a, b = np.float64(x[0]), np.float64(x[1])  # numpy powers: nan, never complex
        d = (1 - f) * (1 - b)
        first = k * f * (b / (1 - d)) ** a * (a * d / (1 - d) + 1) - c1
        second = k * a * b**a * f * f * (1 - b) / 2 * (1 - d) ** (a + 2) * (2 - (1 - a) * d) - c2
        return np.array([first, second])

    # ARX's solver: the start values {0, .33, .66, .99}^2 in turn (alpha outer), the first
    # root whose equations hold to ARX's accuracy 1e-6 wins; no bounds on alpha and beta
    # beyond a finite estimate (ARX takes k * beta^alpha as it comes)
    for a0 in ARX_STARTS:
        for b0 in ARX_STARTS:
            with np.errstate(all="ignore"):
                sol = optimize.root(objective, np.array([a0, b0]), method="hybr")
                residual = objective(sol.x)
                a, b = (np.float64(v) for v in sol.x)
                value = float(k * b**a)
            if np.all(np.abs(residual) <= ARX_ACCURACY) and math.isfinite(value):
                return value
    return math.nan


ARX_STARTS = (0.0, 0.33, 0.66, 0.99)
"""ARX's default solver start values per parameter (``ARXSolverConfiguration``)."""
ARX_ACCURACY = 1e-6
"""ARX's default solver accuracy: both equations' residuals at most this."""


def population_uniques(
    histogram: Mapping[int, int],
    population: float,
    model: UniquenessModel = "dankar",
    *,
    zayatz_fallback: bool = True,
) -> tuple[float, str]:
    """The estimated number of population uniques and the model that gave it (Dankar
    names the one it chose); 0 when the sample has no uniques or every model failed.
    ``zayatz_fallback``: Dankar falls back to Zayatz when Pitman fails (ARX's privacy
    model turns the fallback off; its risk analysis keeps it)."""
    n = float(sum(size * count for size, count in histogram.items()))
    if histogram.get(1, 0) == 0 or n == 0:
        return 0.0, model
    if model == "zayatz":
        value, used = zayatz(histogram, n, population), "zayatz"
    elif model == "pitman":
        value, used = pitman(histogram, n, population), "pitman"
    elif model == "snb":
        value, used = snb(histogram, n, population), "snb"
    elif n / population <= 0.1:
        value, used = pitman(histogram, n, population), "pitman"
        if not _valid(value) and zayatz_fallback:
            value, used = zayatz(histogram, n, population), "zayatz"
    else:
        z, s = zayatz(histogram, n, population), snb(histogram, n, population)
        value, used = (z, "zayatz") if not _valid(s) or z < s else (s, "snb")
    return (value if _valid(value) else 0.0), used
