"""Rule: a row-level list is released only if it covers at least ``min_group_size`` people
of every protected dataset.

The analyst's SELECT becomes a CTE; the released rows are read from it only when the
number of distinct people of each protected dataset in it reaches the threshold (scalar
counts over the same CTE), so a list small enough to single people out comes back empty.
Items are aliased to their output names; ORDER BY / LIMIT move outside.
"""

from __future__ import annotations

from sqlglot import exp

from collabzone.techniques.sql.rules._context import ENTITY_COUNT, RewriteContext


def _q(name: str) -> exp.Identifier:
    return exp.to_identifier(name, quoted=True)


def enforce_min_list_size(expression: exp.Select, *, ctx: RewriteContext) -> exp.Select:
    """Release the rows of ``expression`` only if they cover enough distinct entities."""
    inner = expression.copy()
    inner.set("order", None)
    inner.set("limit", None)
    items = [
        exp.alias_(item.this if isinstance(item, exp.Alias) else item, _q(name))
        for item, name in zip(inner.expressions, ctx.output_names, strict=True)
    ]
    keep: exp.Expression | None = None
    for i, entity in enumerate(ctx.counted):
        name = f"{ENTITY_COUNT}{i}"
        items.append(exp.alias_(entity.copy(), _q(name)))
        count = exp.select(exp.Count(this=exp.Distinct(expressions=[exp.column(_q(name))]))).from_(
            _q("_cz_rows")
        )
        test = exp.GTE(
            this=exp.Subquery(this=count), expression=exp.Literal.number(ctx.min_group_size)
        )
        keep = test if keep is None else exp.And(this=keep, expression=test)
    inner.set("expressions", items)
    assert keep is not None
    outer = (
        exp.select(*[exp.column(_q(name), table=_q("_cz_rows")) for name in ctx.output_names])
        .distinct()
        .from_(_q("_cz_rows"))
        .where(keep)
        .with_(_q("_cz_rows"), as_=inner)
    )
    if ctx.order_by:
        outer = outer.order_by(
            *[
                exp.Ordered(this=exp.column(_q(n), table=_q("_cz_rows")), desc=d)
                for n, d in ctx.order_by
            ]
        )
    if ctx.limit is not None:
        outer = outer.limit(ctx.limit)
    return outer
