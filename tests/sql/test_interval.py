"""Interval arithmetic of post-processed DP outputs (``_interval``): for any true values
inside the input intervals, the true result lies inside the output interval."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collabzone.techniques.sql import _interval as iv

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


@st.composite
def noisy_with_point(draw: st.DrawFn) -> tuple[iv.Noisy, float]:
    """A released value with its interval, and one 'true' value inside that interval."""
    a, b = sorted((draw(finite) + 0.0, draw(finite) + 0.0))  # no -0.0 (hypothesis bounds)
    value = draw(st.floats(min_value=a, max_value=b))
    truth = draw(st.floats(min_value=a, max_value=b))
    return iv.scalar(value, (a, b)), truth


def _inside(result: iv.Noisy, truth: float | None) -> bool:
    interval = result.interval_at(0)
    if interval is None or truth is None or not math.isfinite(truth):
        return True  # no interval claimed, or the true value is undefined
    low, high = interval
    slack = 1e-9 * max(1.0, abs(truth))
    return low - slack <= truth <= high + slack


BINARY: dict[
    str, tuple[Callable[[iv.Noisy, iv.Noisy], iv.Noisy], Callable[[float, float], float]]
] = {
    "add": (iv.add, lambda x, y: x + y),
    "sub": (iv.sub, lambda x, y: x - y),
    "mul": (iv.mul, lambda x, y: x * y),
    "div": (iv.div, lambda x, y: x / y if y != 0 else math.nan),
}


@settings(max_examples=200, deadline=None)
@given(noisy_with_point(), noisy_with_point(), st.sampled_from(sorted(BINARY)))
def test_binary_operations_contain_the_true_result(
    a: tuple[iv.Noisy, float], b: tuple[iv.Noisy, float], op: str
) -> None:
    interval_op, point_op = BINARY[op]
    result = interval_op(a[0], b[0])
    assert _inside(result, point_op(a[1], b[1]))
    divisor = b[0].interval_at(0)
    if op == "div" and divisor is not None and divisor[0] <= 0 <= divisor[1]:
        assert result.interval_at(0) is None  # a divisor that may be 0: no interval


def _pow(x: float, n: float) -> float:
    try:
        return float(x**n) if float(n).is_integer() else math.pow(x, n)
    except (ValueError, ZeroDivisionError, OverflowError):
        return math.nan


@settings(max_examples=200, deadline=None)
@given(noisy_with_point(), st.sampled_from([-3, -2, -1, 0, 0.5, 1, 1.5, 2, 3]))
def test_power_contains_the_true_result(a: tuple[iv.Noisy, float], exponent: float) -> None:
    assert _inside(iv.power(a[0], exponent), _pow(a[1], exponent))


UNARY: dict[str, tuple[Callable[[iv.Noisy], iv.Noisy], Callable[[float], float]]] = {
    "abs": (iv.absolute, abs),
    "neg": (iv.neg, lambda x: -x),
    "sqrt": (
        lambda a: iv.monotone(a, np.sqrt, np.ones_like, domain=(0.0, iv.INF)),
        lambda x: math.sqrt(x) if x >= 0 else math.nan,
    ),
    "ln": (
        lambda a: iv.monotone(a, np.log, np.ones_like, domain=(0.0, iv.INF), open_low=True),
        lambda x: math.log(x) if x > 0 else math.nan,
    ),
    "round": (
        lambda a: iv.monotone(a, lambda x: iv.round_half_away(x, 1), np.ones_like),
        lambda x: float(iv.round_half_away(x, 1)),
    ),
    "floor": (lambda a: iv.monotone(a, np.floor, np.ones_like), math.floor),
}


@settings(max_examples=200, deadline=None)
@given(noisy_with_point(), st.sampled_from(sorted(UNARY)))
def test_unary_functions_contain_the_true_result(a: tuple[iv.Noisy, float], name: str) -> None:
    interval_fn, point_fn = UNARY[name]
    assert _inside(interval_fn(a[0]), point_fn(a[1]))


def test_round_is_half_away_from_zero_like_duckdb() -> None:
    assert iv.round_half_away(2.5) == 3.0 and iv.round_half_away(-2.5) == -3.0
    assert iv.round_half_away(0.125, 2) == 0.13


def test_noise_of_a_ratio_is_the_delta_method() -> None:
    total = iv.scalar(500.0, (400.0, 600.0), "s")
    count = iv.scalar(100, (90.0, 110.0), "c")
    ratio = iv.div(total, count)
    assert ratio.value[0] == 5.0
    expected = math.sqrt((10 / 100) ** 2 + (500 * 2 / 100**2) ** 2)
    assert iv.noise_of(ratio, {"s": 10.0, "c": 2.0})[0] == pytest.approx(expected, rel=1e-15)


def test_columns_are_computed_row_by_row_alike() -> None:
    """A column of several rows gives, in each row, what that row alone gives."""
    values, lows, highs = [3.0, -2.0, 0.0, math.nan], [1.0, -5.0, -1.0, 0.0], [4.0, 1.0, 2.0, 9.0]
    column = iv.Noisy(np.array(values), np.array(lows), np.array(highs), {"q": np.ones(4)})
    for op in (lambda a: iv.power(a, 2), lambda a: iv.div(iv.Noisy.constant(1, len(a.value)), a)):
        whole = op(column)
        for i, (v, lo, hi) in enumerate(zip(values, lows, highs, strict=True)):
            alone = op(iv.scalar(None if math.isnan(v) else v, (lo, hi)))
            assert np.array_equal(whole.value[i : i + 1], alone.value, equal_nan=True)
            assert whole.interval_at(i) == alone.interval_at(0)
