"""Rule: release only groups with at least ``min_group_size`` distinct entities behind them.

The query becomes three nested SELECTs. The innermost groups the analyst's rows and
computes each aggregate once (``_cz_a0``...), the output dimensions, and
``COUNT(DISTINCT entity)`` (plus, for the query monitor, the list of hashed entities). The
middle one counts, over all groups, how many fall below the threshold (a window over the
grouped rows). The outer one keeps the groups at or above it and only then evaluates the
analyst's expressions over aggregates, HAVING, ORDER BY and LIMIT, so arithmetic on a
suppressed group can never fail (or succeed) where the analyst could see it. The threshold
is enforced by the engine; no suppressed row ever reaches Python.
"""

from __future__ import annotations

from typing import Any

from sqlglot import exp

from collabzone.techniques.sql.rules._context import (
    ENTITIES,
    MEMBERS,
    SUPPRESSED,
    RewriteContext,
    column,
    derived,
    named,
    select,
)

_AGGREGATES = (exp.Count, exp.Sum, exp.Avg, exp.Min, exp.Max)


def _lift(node: Any, found: dict[str, tuple[str, exp.Expression]]) -> Any:
    """``node`` with every aggregate replaced by a reference to its inner column."""

    def swap(sub: exp.Expression) -> exp.Expression:
        if isinstance(sub, _AGGREGATES):
            key = sub.sql()
            if key not in found:
                found[key] = (f"_cz_a{len(found)}", sub.copy())
            return column(found[key][0], "_cz_g")
        return sub

    return node.copy().transform(swap)


def enforce_min_group_size(expression: exp.Select, *, ctx: RewriteContext) -> exp.Select:
    """Wrap ``expression`` so that rows with fewer than the minimum entities are dropped."""
    found: dict[str, tuple[str, exp.Expression]] = {}
    inner_items: list[exp.Expression] = []
    outer_items: list[exp.Expression] = []
    for item, name in zip(expression.expressions, ctx.output_names, strict=True):
        node = item.this if isinstance(item, exp.Alias) else item
        if isinstance(node, exp.Column):
            inner_items.append(named(node.copy(), name))
            outer_items.append(named(column(name, "_cz_g"), name))
        else:
            outer_items.append(named(_lift(node, found), name))
    having = expression.args.get("having")
    having_test = _lift(having.this, found) if having is not None else None
    inner_items += [named(agg, alias) for alias, agg in found.values()]
    inner_items.append(
        named(exp.Count(this=exp.Distinct(expressions=[ctx.entity.copy()])), ENTITIES)
    )
    if ctx.collect_members:
        hashed = exp.Anonymous(this="hash", expressions=[ctx.entity.copy()])
        inner_items.append(named(exp.ArrayAgg(this=exp.Distinct(expressions=[hashed])), MEMBERS))
    inner = expression.copy()
    for part in ("order", "limit", "having"):
        inner.set(part, None)
    inner.set("expressions", inner_items)

    threshold = exp.Literal.number(ctx.min_group_size)
    below = exp.If(
        this=exp.LT(this=column(ENTITIES, "_cz_q"), expression=threshold),
        true=exp.Literal.number(1),
        false=exp.Literal.number(0),
    )
    counted = named(exp.Window(this=exp.Sum(this=below)), SUPPRESSED)
    middle = select([exp.Star(), counted], derived(inner, "_cz_q"))
    outer_items.append(column(SUPPRESSED, "_cz_g"))
    if ctx.collect_members:
        outer_items.append(column(MEMBERS, "_cz_g"))
    keep: exp.Expression = exp.GTE(this=column(ENTITIES, "_cz_g"), expression=threshold.copy())
    if having_test is not None:
        keep = exp.And(this=keep, expression=exp.Paren(this=having_test))
    return select(
        outer_items,
        derived(middle, "_cz_g"),
        where=keep,
        order=[(column(name), desc) for name, desc in ctx.order_by],
        limit=ctx.limit,
    )
