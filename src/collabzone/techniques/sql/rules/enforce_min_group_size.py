"""Rule: release only groups with at least ``min_group_size`` distinct entities behind them.

The query becomes three nested SELECTs. The innermost is the analyst's query, its items
aliased to their output names and extended with ``COUNT(DISTINCT entity)`` (and, for the
query monitor, the list of hashed entities). The middle one counts, over all groups, how
many fall below the threshold (a window over the grouped rows). The outer one keeps the
groups at or above it, drops the count column and applies ORDER BY / LIMIT. The threshold
is enforced by the engine; no suppressed row ever reaches Python.
"""

from __future__ import annotations

from sqlglot import exp

from collabzone.techniques.sql.rules._context import (
    ENTITIES,
    MEMBERS,
    SUPPRESSED,
    RewriteContext,
)


def _q(name: str) -> exp.Identifier:
    return exp.to_identifier(name, quoted=True)


def _col(name: str, table: str | None = None) -> exp.Column:
    return exp.column(_q(name), table=_q(table) if table else None)


def enforce_min_group_size(expression: exp.Select, *, ctx: RewriteContext) -> exp.Select:
    """Wrap ``expression`` so that rows with fewer than the minimum entities are dropped."""
    inner = expression.copy()
    inner.set("order", None)
    inner.set("limit", None)
    items = [
        exp.alias_(item.this if isinstance(item, exp.Alias) else item, _q(name))
        for item, name in zip(inner.expressions, ctx.output_names, strict=True)
    ]
    items.append(
        exp.alias_(exp.Count(this=exp.Distinct(expressions=[ctx.entity.copy()])), _q(ENTITIES))
    )
    if ctx.collect_members:
        hashed = exp.Anonymous(this="hash", expressions=[ctx.entity.copy()])
        items.append(exp.alias_(exp.ArrayAgg(this=exp.Distinct(expressions=[hashed])), _q(MEMBERS)))
    inner.set("expressions", items)

    below = exp.If(
        this=exp.LT(this=_col(ENTITIES, "q"), expression=exp.Literal.number(ctx.min_group_size)),
        true=exp.Literal.number(1),
        false=exp.Literal.number(0),
    )
    counted = exp.Window(this=exp.Sum(this=below))
    middle = exp.select(exp.Star(), exp.alias_(counted, _q(SUPPRESSED))).from_(
        exp.alias_(exp.Subquery(this=inner), _q("q"), table=True)
    )
    outer_items: list[exp.Expression] = [_col(name, "g") for name in ctx.output_names]
    outer_items.append(_col(SUPPRESSED, "g"))
    if ctx.collect_members:
        outer_items.append(_col(MEMBERS, "g"))
    keep = exp.GTE(this=_col(ENTITIES, "g"), expression=exp.Literal.number(ctx.min_group_size))
    outer = (
        exp.select(*outer_items)
        .from_(exp.alias_(exp.Subquery(this=middle), _q("g"), table=True))
        .where(keep)
    )
    if ctx.order_by:
        outer = outer.order_by(
            *[exp.Ordered(this=_col(name, "g"), desc=desc) for name, desc in ctx.order_by]
        )
    if ctx.limit is not None:
        outer = outer.limit(ctx.limit)
    return outer
