"""Rule: aggregate clamped values, summed exactly in integers (aggregation mode).

Every SUM / AVG / MIN / MAX over a protected column reads its value clamped to the
column's declared bounds (the agreement's ``bounds`` or the column's min/max domain), so
no single person's value can dominate a total (one 1e308 among twelve people), and sums
are taken over values scaled to integers as DECIMAL(38, 0), so their result is exact
and independent of row order (floating-point sums of 1e16, 1, -1e16 are not). NULL stays
NULL. AVG becomes the exact sum divided by the count of non-NULL values.
"""

from __future__ import annotations

from sqlglot import exp

from collabzone.techniques.sql.rules._context import RewriteContext, SumBound


def _number(value: float) -> exp.Expression:
    if float(value).is_integer():
        value = int(value)
    literal = exp.Literal.number(abs(value))
    return exp.Neg(this=literal) if value < 0 else literal


def _clamped(value: exp.Expression, bound: SumBound) -> exp.Expression:
    if bound.scale == 1:
        low, high = float(bound.low), float(bound.high)
    else:
        low, high = bound.low / bound.scale, bound.high / bound.scale
    inside = exp.Least(
        this=exp.Greatest(this=value.copy(), expressions=[_number(low)], ignore_nulls=True),
        expressions=[_number(high)],
        ignore_nulls=True,
    )
    return exp.If(
        this=exp.Is(this=value.copy(), expression=exp.Null()), true=exp.Null(), false=inside
    )


def _fixed_sum(value: exp.Expression, bound: SumBound) -> exp.Expression:
    scaled = exp.Round(this=exp.Mul(this=_clamped(value, bound), expression=_number(bound.scale)))
    return exp.Sum(this=exp.Cast(this=scaled, to=exp.DataType.build("DECIMAL(38, 0)")))


def clamp_values(expression: exp.Select, *, ctx: RewriteContext) -> exp.Select:
    """Clamp and fix-point every bounded aggregate of ``expression`` (a copy)."""
    if not ctx.value_bounds:
        return expression

    def swap(node: exp.Expression) -> exp.Expression:
        if not isinstance(node, exp.Sum | exp.Avg | exp.Min | exp.Max):
            return node
        arg = node.this
        target = arg.this if isinstance(arg, exp.Cast) else arg
        if not isinstance(target, exp.Column):
            return node
        bound = ctx.value_bounds.get((target.table, target.name))
        if bound is None:
            return node
        if isinstance(node, exp.Min | exp.Max):
            return type(node)(this=_clamped(arg, bound))
        total = _fixed_sum(arg, bound)
        if isinstance(node, exp.Sum):
            if bound.scale == 1:
                return total
            return exp.Div(
                this=exp.Cast(this=total, to=exp.DataType.build("DOUBLE")),
                expression=_number(bound.scale),
            )
        count = exp.Nullif(this=exp.Count(this=arg.copy()), expression=exp.Literal.number(0))
        return exp.Div(
            this=exp.Cast(this=total, to=exp.DataType.build("DOUBLE")),
            expression=exp.Paren(this=exp.Mul(this=count, expression=_number(bound.scale))),
        )

    out = expression.copy().transform(swap)
    assert isinstance(out, exp.Select)
    return out
