"""ARX's numerics for the Pitman model: its polygamma functions and its 2-D Newton-Raphson.

ARX's optimum for a Pitman (or Dankar -> Pitman) population-uniqueness criterion depends
on whether ARX's solver finds a root, and a root that a textbook solver finds may be one
ARX misses (and the other way round). So this module follows ARX step by step:

* :func:`digamma` and :func:`trigamma` port ARX's ``org.deidentifier.arx.risk.Gamma``
  (Minka's Lightspeed approximations). ARX's trigamma shifts its argument up to 8 but
  adds the asymptotic tail only from 12, so for an argument below 12 it returns just the
  partial sum (e.g. 0 between 8 and 12). That is a defect in ARX, kept on purpose: the
  Jacobian of ARX's closed-form likelihood equations uses it, which changes the Newton
  path and so whether (and where) ARX's solver stops. The equations themselves use only
  digamma, which is accurate, so a root found is a true root.
* :func:`solve` ports ``de.linearbits.newtonraphson.NewtonRaphson2D`` as ARX configures it
  (``ARXSolverConfiguration``): accuracy 1e-6 on both equations, at most ``per_try`` + 1
  steps from the given start, then from each of ARX's deterministic start values
  {0, .33, .66, .99}^2 in turn; a try ends when the constraint fails or a coordinate is
  not a number. Arithmetic is IEEE (a zero determinant gives infinities, as in Java).
  ARX's time limits (100 ms a try, 1 s in all) are left out: they make ARX's answer
  depend on the machine's speed (on a fast machine the iteration limits bind first).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

_DIGAMMA_1 = -0.57721566490153286060651209008240243104215933593992
_TRIGAMMA_1 = math.pi * math.pi / 6.0
_TETRAGAMMA_1 = -2.0 * 1.202056903159594285399738161511449990764986292
_S3, _S4, _S5, _S6, _S7 = 1 / 12, 1 / 120, 1 / 252, 1 / 240, 1 / 132
_B2, _B4, _B6, _B8, _B10 = 1 / 6, -1 / 30, 1 / 42, -1 / 30, 5 / 66
_LARGE_DIGAMMA, _LARGE_TRIGAMMA = 12.0, 8.0


def _div(a: float, b: float) -> float:
    """a / b with IEEE semantics (Java's): a zero divisor gives an infinity, not an error."""
    with np.errstate(all="ignore"):
        return float(np.float64(a) / np.float64(b))


def digamma(x: float) -> float:
    """psi(x) as ARX's ``Gamma.digamma`` computes it."""
    if math.isinf(x) or math.isnan(x):
        return math.nan
    if x == 0.0:
        return -math.inf
    if x < 0.0:  # reflection: psi(x) = psi(1 - x) + pi / tan(-pi x)
        return digamma(1.0 - x) + _div(math.pi, math.tan(-math.pi * x))
    if x <= 1e-6:
        return _DIGAMMA_1 - 1.0 / x + _TRIGAMMA_1 * x
    result = 0.0
    while x < _LARGE_DIGAMMA:
        result -= 1.0 / x
        x += 1
    r = 1.0 / x
    result += math.log(x) - 0.5 * r
    r *= r
    return result - r * (_S3 - r * (_S4 - r * (_S5 - r * (_S6 - r * _S7))))


def trigamma(x: float) -> float:
    """psi'(x) as ARX's ``Gamma.trigamma`` computes it, including its missing tail for
    arguments below 12 (see the module docstring)."""
    if math.isinf(x) or math.isnan(x):
        return math.nan
    if x == 0.0:
        return -math.inf
    if x < 0.0:
        r = _div(math.pi, math.sin(-math.pi * x))
        return -trigamma(1.0 - x) + r * r
    if x <= 1e-4:
        return 1.0 / (x * x) + _TRIGAMMA_1 + _TETRAGAMMA_1 * x
    result = 0.0
    while x < _LARGE_TRIGAMMA:
        result += 1.0 / (x * x)
        x += 1
    if x >= _LARGE_DIGAMMA:  # ARX tests 12 here, not the 8 it shifted to
        r = 1.0 / (x * x)
        result += 0.5 * r + (1.0 + r * (_B2 + r * (_B4 + r * (_B6 + r * (_B8 + r * _B10))))) / x
    return result


def _start_values() -> tuple[tuple[float, float], ...]:
    """ARX's ``getDefaultStartValues``: d from 0 in steps of 0.33 while below 1 (summed
    as ARX sums them), theta outer, alpha inner."""
    steps: list[float] = []
    d = 0.0
    while d < 1.0:
        steps.append(d)
        d += 0.33
    return tuple((a, b) for a in steps for b in steps)


START_VALUES = _start_values()
ACCURACY = 1e-6
"""ARX's default solver accuracy (``ARXSolverConfiguration``)."""
PER_TRY = 15
"""Iterations per try as ARX's tests and ``PopulationUniqueness`` examples configure it."""

Vector = tuple[float, float]
Matrix = tuple[float, float, float, float]
"""Row-major 2x2: (x1, x2, y1, y2) as ``SquareMatrix2D``."""
Master = Callable[[Vector], tuple[Vector, Matrix]]


def solve(
    master: Master,
    start: Vector,
    constraint: Callable[[Vector], bool],
    *,
    accuracy: float = ACCURACY,
    per_try: int = PER_TRY,
    starts: tuple[Vector, ...] = START_VALUES,
) -> Vector:
    """A root of ``master``'s equations as ARX's ``NewtonRaphson2D`` finds it, or (nan, nan).

    ``master(x)`` gives the equations' values and their Jacobian at ``x``."""
    total_limit = (len(starts) + 1) * per_try  # ARX's iterationsTotal with start values
    total = 0
    offset = 0
    solution: Vector | None = None
    with np.errstate(all="ignore"):
        while total <= total_limit:
            iterations = 0
            if solution is None:
                solution = start
            else:
                solution = starts[offset]
                offset += 1
            while True:
                total += 1
                (f1, f2), (x1, x2, y1, y2) = master(solution)
                if abs(f1) <= accuracy and abs(f2) <= accuracy:
                    return solution
                scalar = np.float64(1.0) / np.float64(x1 * y2 - x2 * y1)
                i11, i12, i21, i22 = y2 * scalar, -x2 * scalar, -y1 * scalar, x1 * scalar
                step1 = float(i11 * f1 + i12 * f2)
                step2 = float(i21 * f1 + i22 * f2)
                solution = (solution[0] - step1, solution[1] - step2)
                if offset == len(starts):  # ARX stops once the last start value is taken
                    return (math.nan, math.nan)
                if not constraint(solution):
                    break
                if math.isnan(solution[0]) or math.isnan(solution[1]) or iterations >= per_try:
                    break
                iterations += 1
    return (math.nan, math.nan)
