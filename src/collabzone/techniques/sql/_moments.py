"""VAR / STDDEV in dp mode: the moments computed from noisy sums of x and of x * x.

As SmartNoise does, a variance is released as post-processing of three noisy quantities:
SUM(x), SUM(x * x) and COUNT(x). The square's sum needs its own clamping bounds (where
x * x lies when x lies in the declared bounds) and its own expression in the rewrite (x
clamped first, then squared, so one person's square is bounded).
"""

from __future__ import annotations

from sqlglot import exp

from collabzone.model import ColumnType
from collabzone.techniques.sql._frontend import ColumnRef

MOMENTS = ("VAR", "VAR_POP", "STDDEV", "STDDEV_POP")
"""Aggregates computed (as SmartNoise does) from noisy SUM(x), SUM(x * x) and COUNT(x)."""


def square_bounds(low_high: tuple[float, float]) -> tuple[float, float]:
    """Where x * x lies when x lies in [low, high]."""
    low, high = low_high
    top = max(low * low, high * high)
    return (0.0 if low <= 0 <= high else min(low * low, high * high)), top


def clamped_square(ref: ColumnRef, low_high: tuple[float, float]) -> exp.Expression:
    """x clamped to its bounds, squared (NULL stays NULL): the value SUM(x * x) adds up."""
    column: exp.Expression = exp.column(
        exp.to_identifier(ref.column.name, quoted=True),
        table=exp.to_identifier(ref.alias, quoted=True),
    )
    if ref.column.type == ColumnType.BOOLEAN:
        column = exp.Cast(this=column, to=exp.DataType.build("INTEGER"))
    low, high = (exp.Literal.number(v) for v in low_high)
    clamped = exp.Least(
        this=exp.Greatest(this=column.copy(), expressions=[low]), expressions=[high]
    )
    square = exp.Mul(this=exp.Paren(this=clamped), expression=exp.Paren(this=clamped.copy()))
    return exp.If(
        this=exp.Is(this=column.copy(), expression=exp.Null()), true=exp.Null(), false=square
    )
