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

from collabzone.techniques.deid import _arx_newton

UniquenessModel = Literal["pitman", "zayatz", "snb", "dankar"]


def _valid(value: float) -> bool:
    return not math.isnan(value) and value != 0.0


def zayatz(histogram: Mapping[int, int], n: float, population: float) -> float:
    """Zayatz's estimate of the number of population uniques."""
    from scipy import stats  # type: ignore[import-untyped]  # (imported when used)

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
    """Pitman's estimate: theta and alpha solve the likelihood equations (ARX's Newton-Raphson
    from Hoshino's moment estimates), then Gamma(t+1)/Gamma(t+a) * N^a (ARX ``ModelPitman``:
    the larger of the estimate in logs and directly, each kept only within [0, N])."""
    from scipy import special

    if histogram.get(1, 0) == 0:
        return 0.0
    fitted = pitman_parameters(histogram, n)
    if fitted is None:
        return math.nan
    t, a = fitted
    with np.errstate(all="ignore"):
        # ARX's logGamma (commons-math) is not a number at x <= 0; its gamma is
        via_logs = (
            np.exp(special.gammaln(t + 1) - special.gammaln(t + a)) * np.float64(population) ** a
            if t + 1 > 0 and t + a > 0
            else math.nan
        )
        direct = special.gamma(t + 1) / special.gamma(t + a) * np.float64(population) ** a
    candidates = [float(v) for v in (via_logs, direct) if 0 <= v <= population]
    return max(candidates) if candidates else math.nan


def pitman_parameters(histogram: Mapping[int, int], n: float) -> tuple[float, float] | None:
    """(theta, alpha) of the Pitman model by maximum likelihood as ARX's ``ModelPitman``
    finds them, or None where ARX's solver finds no root (or alpha = 0).

    ARX solves the closed-form likelihood equations (digamma / trigamma) with its
    Newton-Raphson (``_arx_newton``) from Hoshino's moment estimates; if that fails, or
    the root does not satisfy the equations written as plain sums to ARX's accuracy, it
    solves the plain-sum form instead, from the same start."""
    c1 = float(histogram.get(1, 0))
    c2 = float(histogram.get(2, 0)) or 1.0  # ARX: overestimate when there is no pair
    u = float(sum(histogram.values()))
    c = c1 * (c1 - 1) / c2
    with np.errstate(all="ignore"):
        t0 = float(
            np.float64(n * u * c - c1 * (n - 1) * (2 * u + c))
            / np.float64(2 * c1 * u + c1 * c - n * c)
        )
        a0 = float(np.float64(t0 * (c1 - n) + (n - 1) * c1) / np.float64(n * u))
    classes = sorted((int(s), int(k)) for s, k in histogram.items())  # ARX: by size
    closed, sums = _pitman_closed(classes, u, n), _PitmanSums(classes, u, n)
    result = _arx_newton.solve(closed, (t0, a0), _theta_non_negative)
    if math.isnan(result[0]) or math.isnan(result[1]):
        result = _arx_newton.solve(sums.master, (t0, a0), _theta_non_negative)
    else:
        check = sums.equations(result)
        if not all(abs(v) <= _arx_newton.ACCURACY for v in check):  # nan fails too
            result = _arx_newton.solve(sums.master, (t0, a0), _theta_non_negative)
    t, a = result
    if math.isnan(t) or math.isnan(a) or a == 0:
        return None
    return t, a


def _theta_non_negative(x: tuple[float, float]) -> bool:
    return x[0] >= 0  # ARX's constraint (a nan fails it)


def _pitman_closed(classes: list[tuple[int, int]], u: float, n: float) -> _arx_newton.Master:
    """ARX's closed-form Pitman likelihood equations and Jacobian, with ARX's polygamma."""
    dg, tg = _arx_newton.digamma, _arx_newton.trigamma

    def master(x: tuple[float, float]) -> tuple[tuple[float, float], _arx_newton.Matrix]:
        with np.errstate(all="ignore"):
            t, a = np.float64(x[0]), np.float64(x[1])
            v = u - 1.0
            val1 = dg(float(v + t / a + 1))
            val2 = tg(float((a + t + a * v) / a))
            val3 = tg(float(t / a + 1))
            val4 = dg(float(t / a + 1))
            a2 = a * a
            d1 = (val3 - val2) / a2
            d5 = (a * val1 + t * val2 - a * val4 - t * val3) / (a2 * a)
            d3 = (a2 * v - t * t * val2 + t * t * val3 - 2 * a * t * val1 + 2 * a * t * val4) / (
                a2 * a2
            )
            o1 = (val1 - val4) / a
            o3 = (-t * val1 + a * v + t * val4) / (a * a)
            o2 = dg(float(n + t)) - dg(float(t + 1))
            d2 = tg(float(t + 1)) - tg(float(n + t))
            d4 = o4 = np.float64(0.0)
            val6, val7 = dg(float(1 - a)), tg(float(1 - a))
            for size, count in classes:
                if size != 1:
                    d4 += count * (val7 - tg(float(size - a)))
                    o4 += count * (dg(float(size - a)) - val6)
            return (
                (float(o1 - o2), float(o3 - o4)),
                (float(d2 - d1), float(-d5), float(-d5), float(-d3 - d4)),
            )

    return master


class _PitmanSums:
    """ARX's "iterative" form of the Pitman equations: the polygamma differences written
    as plain sums, added in ARX's order (numpy cumulative sums are sequential, as Java)."""

    def __init__(self, classes: list[tuple[int, int]], u: float, n: float) -> None:
        self.classes = [(s, k) for s, k in classes if s != 1]
        self.i_u = np.arange(1, math.ceil(u), dtype=float)  # i = 1 .. < u
        self.i_n = np.arange(1, math.ceil(n), dtype=float)  # i = 1 .. < n
        self.top = max((s for s, _ in self.classes), default=1)

    def _terms(self, x: tuple[float, float]) -> tuple[float, ...]:
        t, a = np.float64(x[0]), np.float64(x[1])
        val0 = t + self.i_u * a
        val1 = 1.0 / val0
        val3 = 1.0 / (val0 * val0)
        o1, o3 = _seq(val1), _seq(self.i_u * val1)
        d1, d5, d3 = _seq(val3), _seq(self.i_u * val3), _seq(self.i_u * (self.i_u * val3))
        j = np.arange(1, self.top, dtype=float) - a
        inner1 = np.concatenate([[0.0], np.cumsum(1.0 / (j * j))])  # sum over j < size
        inner2 = np.concatenate([[0.0], np.cumsum(1.0 / j)])
        d4 = o4 = np.float64(0.0)
        for size, count in self.classes:
            d4 += count * inner1[size - 1]
            o4 += count * inner2[size - 1]
        val = t + self.i_n
        d2, o2 = _seq(1.0 / (val * val)), _seq(1.0 / val)
        return o1, o2, o3, float(o4), d1, d2, d3, float(d4), d5

    def equations(self, x: tuple[float, float]) -> tuple[float, float]:
        with np.errstate(all="ignore"):
            o1, o2, o3, o4, *_ = self._terms(x)
            return (o1 - o2, o3 - o4)

    def master(self, x: tuple[float, float]) -> tuple[tuple[float, float], _arx_newton.Matrix]:
        with np.errstate(all="ignore"):
            o1, o2, o3, o4, d1, d2, d3, d4, d5 = self._terms(x)
            return (o1 - o2, o3 - o4), (d2 - d1, -d5, -d5, -d3 - d4)


def _seq(values: np.ndarray) -> float:
    """A sum added left to right, as a Java loop adds it."""
    return float(np.cumsum(values)[-1]) if values.size else 0.0


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
