"""Arithmetic on released noisy columns: values, intervals and noise (pure, numpy).

A post-processed DP output (``SUM(x) / COUNT(*)``, ``POWER(AVG(x), 2)``) is computed from
the released noisy values only, so it costs nothing. Its (1 - alpha) interval comes from
interval arithmetic over the intervals of its noisy parts: if each part's true value lies
in its interval, the true value of the expression lies in the result (each operation
below returns an interval containing f(a, b) for every a, b in the inputs' intervals).
Where no finite interval contains every such value (a division by an interval that holds
0, a logarithm of an interval reaching 0) the result has **no interval**.

Every operation works on whole columns (one numpy array per value, interval end and
partial derivative), so a thousand groups cost one pass of a few array operations. NaN
is SQL NULL in ``value`` and "no interval" in ``low`` / ``high``; an infinite value is
NULL on release (JSON carries no infinity).

``partials`` carries the derivative of the value by each noisy quantity (forward-mode
differentiation), so the typical noise of a derived output can be stated from the noise
scales of its parts (the delta method): that is the label of an AVG or a ratio, in its
own units, rather than the noise scale of the SUM behind it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

INF = math.inf
NAN = math.nan

Array = npt.NDArray[np.float64]
Fn = Callable[[Array], Array]
_NO_PARTIALS: Mapping[str, Array] = MappingProxyType({})


class Noisy(NamedTuple):
    """A released column: values (NaN: NULL), interval ends (NaN: no interval), the
    derivative by each noisy quantity, and whether the values are whole numbers."""

    value: Array
    low: Array
    high: Array
    partials: Mapping[str, Array] = _NO_PARTIALS
    integral: bool = False

    @staticmethod
    def constant(value: float | None, size: int) -> Noisy:
        """A number written in the query: exact, its own interval, no noise."""
        if value is None:
            nan = np.full(size, NAN)
            return Noisy(nan, nan, nan)
        column = np.full(size, float(value))
        return Noisy(column, column, column, integral=isinstance(value, int))

    def interval_at(self, row: int) -> tuple[float, float] | None:
        """One row's interval (``None``: no interval)."""
        low, high = float(self.low[row]), float(self.high[row])
        return None if math.isnan(low) or math.isnan(high) else (low, high)


def scalar(value: float | None, interval: tuple[float, float] | None, name: str = "q") -> Noisy:
    """A one-row column (for tests and examples)."""
    low, high = interval if interval is not None else (NAN, NAN)
    return Noisy(
        np.array([NAN if value is None else float(value)]),
        np.array([float(low)]),
        np.array([float(high)]),
        {name: np.ones(1)},
    )


def _combine(a: Noisy, b: Noisy, da: Array, db: Array) -> dict[str, Array]:
    """The chain rule for f(a, b): df/dq = df/da * da/dq + df/db * db/dq."""
    out: dict[str, Array] = {}
    for partials, factor in ((a.partials, da), (b.partials, db)):
        for name, d in partials.items():
            out[name] = out[name] + factor * d if name in out else factor * d
    return out


def _scaled(a: Noisy, factor: Array | float) -> dict[str, Array]:
    return {name: factor * d for name, d in a.partials.items()}


def _times(x: Array, y: Array) -> Array:
    """Endpoint products with 0 * inf = 0 (the convention of interval arithmetic)."""
    with np.errstate(all="ignore"):
        return np.where((x == 0) | (y == 0), 0.0, x * y)


def add(a: Noisy, b: Noisy) -> Noisy:
    one = np.ones_like(a.value)
    with np.errstate(all="ignore"):  # beyond floats is the infinite limit: no warning
        return Noisy(
            a.value + b.value, a.low + b.low, a.high + b.high, _combine(a, b, one, one),
            a.integral and b.integral,
        )  # fmt: skip


def neg(a: Noisy) -> Noisy:
    return Noisy(-a.value, -a.high, -a.low, _scaled(a, -1.0), a.integral)


def sub(a: Noisy, b: Noisy) -> Noisy:
    return add(a, neg(b))


def mul(a: Noisy, b: Noisy) -> Noisy:
    products = [_times(x, y) for x in (a.low, a.high) for y in (b.low, b.high)]
    with np.errstate(all="ignore"):
        return Noisy(
            a.value * b.value, np.minimum.reduce(products), np.maximum.reduce(products),
            _combine(a, b, b.value, a.value), a.integral and b.integral,
        )  # fmt: skip


def div(a: Noisy, b: Noisy) -> Noisy:
    """a / b: NULL where b is 0; no interval where b's interval holds 0."""
    with np.errstate(all="ignore"):
        value = np.where(b.value == 0, NAN, a.value / b.value)
        quotients = [
            np.where(np.isinf(y), 0.0, x / y) for x in (a.low, a.high) for y in (b.low, b.high)
        ]
        partials = _combine(a, b, 1.0 / b.value, -value / b.value)
    away = (b.low > 0) | (b.high < 0)
    low = np.where(away, np.minimum.reduce(quotients), NAN)
    high = np.where(away, np.maximum.reduce(quotients), NAN)
    return Noisy(value, low, high, partials)


def _finite(values: Array) -> Array:
    return np.where(np.isfinite(values), values, NAN)


def monotone(
    a: Noisy,
    fn: Fn,
    derivative: Fn,
    *,
    domain: tuple[float, float] = (-INF, INF),
    increasing: bool = True,
    open_low: bool = False,
    integral: bool = False,
) -> Noisy:
    """A function monotone on ``domain`` (closed, or open at its low end): NULL outside it
    or where infinite; the interval is the image of the part of ``a``'s interval inside
    the domain (the true value, where defined, comes from there), none if that is empty."""

    def inside(x: Array) -> npt.NDArray[np.bool_]:
        above = x > domain[0] if open_low else x >= domain[0]
        return above & (x <= domain[1])

    with np.errstate(all="ignore"):
        ok = inside(a.value)
        value = np.where(ok, _finite(fn(np.where(ok, a.value, 1.0))), NAN)
        slope = np.where(ok, derivative(np.where(ok, a.value, 1.0)), NAN)
        low, high = np.maximum(a.low, domain[0]), np.minimum(a.high, domain[1])
        valid = (low <= high) & inside(high)
        edge = -INF if increasing else INF  # the limit at an open low end (log of 0)
        at_low = np.where(inside(low), fn(np.where(inside(low), low, 1.0)), edge)
        at_high = fn(np.where(valid, high, 1.0))
    ends = (at_low, at_high) if increasing else (at_high, at_low)
    return Noisy(
        value, np.where(valid, ends[0], NAN), np.where(valid, ends[1], NAN), _scaled(a, slope),
        integral and a.integral,
    )  # fmt: skip


def absolute(a: Noisy) -> Noisy:
    low = np.where(a.low >= 0, a.low, np.where(a.high <= 0, -a.high, 0.0))
    high = np.where(a.low >= 0, a.high, np.where(a.high <= 0, -a.low, np.maximum(-a.low, a.high)))
    return Noisy(np.abs(a.value), low, high, _scaled(a, np.sign(a.value)), a.integral)


def power(a: Noisy, exponent: float) -> Noisy:
    """a ** exponent for a constant exponent: NULL where undefined (a negative base with a
    fractional exponent, 0 to a negative power); intervals by monotone pieces."""
    size = len(a.value)
    if exponent == 0:
        ones = np.ones(size)
        return Noisy(np.where(np.isnan(a.value), NAN, 1.0), ones, ones)

    def fn(x: Array) -> Array:
        with np.errstate(all="ignore"):
            return np.power(x, exponent)

    def slope(x: Array) -> Array:
        with np.errstate(all="ignore"):
            return exponent * np.power(x, exponent - 1)

    if not float(exponent).is_integer():  # defined for x >= 0 (x > 0 for a negative power)
        return monotone(
            a, fn, slope, domain=(0.0, INF), increasing=exponent > 0, open_low=exponent < 0
        )
    with np.errstate(all="ignore"):
        value = _finite(np.where((a.value == 0) & (exponent < 0), NAN, fn(a.value)))
        partials = _scaled(a, slope(a.value))
        ends = (fn(a.low), fn(a.high))
    straddles = (a.low < 0) & (a.high > 0)
    low = np.minimum(*ends)
    if int(exponent) % 2 == 0:  # an even power of an interval holding 0 starts at 0
        low = np.where(straddles, 0.0, low)
    high = np.maximum(*ends)
    if exponent < 0:
        holds_zero = (a.low <= 0) & (a.high >= 0)
        low, high = np.where(holds_zero, NAN, low), np.where(holds_zero, NAN, high)
    return Noisy(value, low, high, partials)


def round_half_away(x: Array | float, digits: int = 0) -> Array:
    """DuckDB's ROUND: halves away from zero (numpy and Python round halves to even)."""
    factor = 10.0**digits
    with np.errstate(all="ignore"):
        return np.sign(x) * np.floor(np.abs(x) * factor + 0.5) / factor


def extreme(args: Sequence[Noisy], *, greatest: bool) -> Noisy:
    """GREATEST / LEAST: monotone in every argument; NULL arguments are skipped (DuckDB)."""
    pick = np.fmax if greatest else np.fmin  # the f- forms skip NaN, as DuckDB skips NULL
    value = pick.reduce([a.value for a in args])
    strict = np.maximum if greatest else np.minimum  # these propagate "no interval"
    low = strict.reduce([a.low for a in args])
    high = strict.reduce([a.high for a in args])
    partials: dict[str, Array] = {}
    chosen = np.zeros(len(value), dtype=bool)
    for a in args:  # each row's partials are those of the argument it took
        mine = (a.value == value) & ~chosen
        chosen |= mine
        for name, d in a.partials.items():
            partials[name] = np.where(mine, d, partials.get(name, 0.0))
    return Noisy(value, low, high, partials, all(a.integral for a in args))


def clamp(a: Noisy, low: float, high: float) -> Noisy:
    """Narrow values and intervals to where the true value must lie (free)."""
    return Noisy(
        np.clip(a.value, low, high), np.clip(a.low, low, high), np.clip(a.high, low, high),
        a.partials, a.integral,
    )  # fmt: skip


def noise_of(a: Noisy, scales: Mapping[str, float]) -> Array:
    """The typical noise of a derived value (delta method): sqrt(sum (df/dq * scale_q)^2),
    in the value's own units; NaN for a NULL value."""
    total = np.zeros(len(a.value))
    with np.errstate(all="ignore"):
        for name, d in a.partials.items():
            total = total + (d * scales[name]) ** 2
        return np.where(np.isnan(a.value), NAN, np.sqrt(total))
