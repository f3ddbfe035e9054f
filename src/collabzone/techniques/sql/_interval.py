"""Arithmetic on released noisy values: the value, its interval and its noise (pure).

A post-processed DP output (``SUM(x) / COUNT(*)``, ``POWER(AVG(x), 2)``) is computed from
the released noisy values only, so it costs nothing. Its (1 - alpha) interval comes from
interval arithmetic over the intervals of its noisy parts: if each part's true value lies
in its interval, the true value of the expression lies in the result (each operation
below returns an interval containing f(a, b) for every a, b in the inputs' intervals).
Where no finite interval contains every such value (a division by an interval that holds
0, a logarithm of an interval reaching 0) the result has **no interval** (``None``).

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

INF = math.inf

Number = int | float


_NO_PARTIALS: Mapping[str, float] = MappingProxyType({})


class Noisy(NamedTuple):
    """A released value (``None``: SQL NULL), its interval (``None``: no interval) and
    its derivative by each noisy quantity it is computed from (a tuple: one per cell)."""

    value: Number | None
    interval: tuple[float, float] | None
    partials: Mapping[str, float] = _NO_PARTIALS

    @staticmethod
    def constant(value: Number | None) -> Noisy:
        """A number written in the query: exact, its own interval, no noise."""
        if value is None:
            return Noisy(None, None)
        return Noisy(value, (float(value), float(value)))


def _mul(a: float, b: float) -> float:
    """Endpoint product with 0 * inf = 0 (the convention of interval arithmetic)."""
    if a == 0 or b == 0:
        return 0.0
    return a * b


def _finite(value: float) -> Number | None:
    return value if math.isfinite(value) else None


def _combine(
    a: Noisy, b: Noisy, da: float, db: float
) -> dict[str, float]:  # chain rule for f(a, b)
    out: dict[str, float] = {}
    for partials, factor in ((a.partials, da), (b.partials, db)):
        for name, d in partials.items():
            out[name] = out.get(name, 0.0) + factor * d
    return out


def _scaled(a: Noisy, factor: float) -> dict[str, float]:
    return {name: factor * d for name, d in a.partials.items()}


def add(a: Noisy, b: Noisy) -> Noisy:
    value = None if a.value is None or b.value is None else a.value + b.value
    interval = None
    if a.interval is not None and b.interval is not None:
        interval = (a.interval[0] + b.interval[0], a.interval[1] + b.interval[1])
    return Noisy(value, interval, _combine(a, b, 1.0, 1.0))


def neg(a: Noisy) -> Noisy:
    interval = None if a.interval is None else (-a.interval[1], -a.interval[0])
    return Noisy(None if a.value is None else -a.value, interval, _scaled(a, -1.0))


def sub(a: Noisy, b: Noisy) -> Noisy:
    return add(a, neg(b))


def mul(a: Noisy, b: Noisy) -> Noisy:
    value = None if a.value is None or b.value is None else a.value * b.value
    interval = None
    if a.interval is not None and b.interval is not None:
        products = [_mul(x, y) for x in a.interval for y in b.interval]
        interval = (min(products), max(products))
    da = float(b.value) if b.value is not None else 0.0
    db = float(a.value) if a.value is not None else 0.0
    return Noisy(value, interval, _combine(a, b, da, db))


def div(a: Noisy, b: Noisy) -> Noisy:
    """a / b; NULL when b is 0 (DuckDB's division), no interval when b's interval holds 0."""
    value: Number | None = None
    if a.value is not None and b.value is not None and b.value != 0:
        value = a.value / b.value
    interval = None
    if a.interval is not None and b.interval is not None:
        low, high = b.interval
        if low > 0 or high < 0:
            quotients = [
                x / y if math.isfinite(y) else 0.0 for x in a.interval for y in (low, high)
            ]
            quotients = [q for q in quotients if not math.isnan(q)]
            interval = (min(quotients), max(quotients))
    partials: dict[str, float] = {}
    if value is not None and b.value is not None:
        partials = _combine(a, b, 1.0 / b.value, -float(value) / b.value)
    return Noisy(value, interval, partials)


def monotone(
    a: Noisy,
    fn: Callable[[float], float],
    derivative: Callable[[float], float],
    *,
    domain: tuple[float, float] = (-INF, INF),
    increasing: bool = True,
    open_low: bool = False,
) -> Noisy:
    """A function monotone on ``domain`` (closed, or open at its low end): NULL outside it;
    the interval is the image of the part of ``a``'s interval inside the domain (the true
    value, where defined, comes from there), or none when that part is empty."""
    low_ok: Callable[[float], bool] = (
        (lambda x: x > domain[0]) if open_low else (lambda x: x >= domain[0])
    )
    value: Number | None = None
    partials: dict[str, float] = {}
    if a.value is not None and low_ok(a.value) and a.value <= domain[1]:
        try:
            value = _finite(fn(a.value))
        except (OverflowError, ValueError, ZeroDivisionError):
            value = None
        partials = _slope(a, derivative) if value is not None else {}
    interval = None
    if a.interval is not None:
        low, high = max(a.interval[0], domain[0]), min(a.interval[1], domain[1])
        if low <= high and low_ok(high):
            edge = -INF if increasing else INF  # the limit at an open low end (log of 0)
            ends = [_safe(fn, x) if low_ok(x) else edge for x in (low, high)]
            interval = (ends[0], ends[1]) if increasing else (ends[1], ends[0])
    return Noisy(value, interval, partials)


def _slope(a: Noisy, derivative: Callable[[float], float]) -> dict[str, float]:
    """The chain rule through a one-argument function."""
    if a.value is None:
        return {}
    try:
        d = derivative(a.value)
    except (OverflowError, ValueError, ZeroDivisionError):
        d = math.nan
    return _scaled(a, d)  # a NaN slope: noise_of says it cannot state the noise


def _safe(fn: Callable[[float], float], x: float) -> float:
    """fn at an endpoint of an interval; an overflow is the infinite limit."""
    try:
        return fn(x)
    except OverflowError:
        return INF if x > 0 else -INF


def absolute(a: Noisy) -> Noisy:
    value = None if a.value is None else abs(a.value)
    interval = None
    if a.interval is not None:
        low, high = a.interval
        if low >= 0:
            interval = (low, high)
        elif high <= 0:
            interval = (-high, -low)
        else:
            interval = (0.0, max(-low, high))
    sign = 0.0 if a.value is None or a.value == 0 else math.copysign(1.0, a.value)
    return Noisy(value, interval, _scaled(a, sign))


def power(a: Noisy, exponent: float) -> Noisy:
    """a ** exponent for a constant exponent: NULL where undefined (a negative base with a
    fractional exponent, 0 to a negative power); intervals by monotone pieces."""
    integral = float(exponent).is_integer()

    def fn(x: float) -> float:
        if not integral:
            return math.pow(x, exponent)
        try:
            return float(x ** int(exponent))
        except OverflowError:  # |x| ** n beyond floats: the infinite limit, signed
            return INF if x > 0 or int(exponent) % 2 == 0 else -INF

    def slope(x: float) -> float:
        return exponent * x ** (exponent - 1) if exponent != 0 else 0.0

    if exponent == 0:
        return Noisy(None if a.value is None else 1, (1.0, 1.0), {})
    if not integral:  # defined for x >= 0 (x > 0 when the exponent is negative)
        return monotone(
            a, fn, slope, domain=(0.0, INF), increasing=exponent > 0, open_low=exponent < 0
        )
    value: Number | None = None
    try:
        if a.value is not None and not (a.value == 0 and exponent < 0):
            value = _finite(a.value ** int(exponent))
    except OverflowError:
        value = None
    partials = _slope(a, slope) if value is not None else {}
    interval = None
    if a.interval is not None:
        low, high = a.interval
        if exponent < 0 and low <= 0 <= high:
            interval = None
        else:
            ends = [_safe(fn, low), _safe(fn, high)]
            if int(exponent) % 2 == 0 and low < 0 < high:
                interval = (0.0, max(ends))
            else:
                interval = (min(ends), max(ends))
    return Noisy(value, interval, partials)


def round_half_away(x: float, digits: int = 0) -> float:
    """DuckDB's ROUND: halves away from zero (Python's round() rounds halves to even)."""
    if not math.isfinite(x):
        return x
    factor = 10.0**digits
    return math.copysign(math.floor(abs(x) * factor + 0.5) / factor, x)


def extreme(args: Sequence[Noisy], *, greatest: bool) -> Noisy:
    """GREATEST / LEAST: monotone in every argument (NULL arguments are skipped, as DuckDB)."""
    present = [a for a in args if a.value is not None]
    if not present:
        return Noisy(None, None)
    pick = max if greatest else min
    chosen = pick(present, key=lambda a: a.value if a.value is not None else 0)
    interval = None
    if all(a.interval is not None for a in args):
        lows = [a.interval[0] for a in args if a.interval is not None]
        highs = [a.interval[1] for a in args if a.interval is not None]
        interval = (pick(lows), pick(highs))
    return Noisy(chosen.value, interval, dict(chosen.partials))


def clamp(a: Noisy, low: float, high: float) -> Noisy:
    """Narrow a value and its interval to where the true value must lie (free)."""
    value = a.value if a.value is None else min(max(a.value, low), high)
    interval = None
    if a.interval is not None:
        interval = (
            min(max(a.interval[0], low), high),
            min(max(a.interval[1], low), high),
        )
    return Noisy(value, interval, a.partials)


def noise_of(a: Noisy, scales: Mapping[str, float]) -> float | None:
    """The typical noise of a derived value (delta method): sqrt(sum (df/dq * scale_q)^2),
    in the value's own units; ``None`` for a NULL value."""
    if a.value is None:
        return None
    total = sum((d * scales[name]) ** 2 for name, d in a.partials.items())
    return math.sqrt(total) if math.isfinite(total) else None
