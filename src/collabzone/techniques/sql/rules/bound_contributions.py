"""Rule: bound each entity's contribution, then aggregate (the DP rewrite).

The analyst's FROM / JOIN / WHERE are kept; GROUP BY becomes ``entity, dims`` so each
entity's rows in a group are first folded into one row: its row count capped at
``max_rows_per_entity``, its sum of clamped, integer-scaled values capped at
``max_rows_per_entity`` times the bounds. ``QUALIFY ROW_NUMBER() OVER (PARTITION BY entity
...) <= max_groups_per_entity`` keeps at most that many groups per entity (chosen by a
salted hash of the group, so the choice depends only on that entity's own rows). The outer
SELECT sums these per-entity rows per group. Because bounding happens *after* the join,
it holds per person over joined datasets. The output is exact integers; noise is added by
the DP core from these, never by the engine.
"""

from __future__ import annotations

from typing import Any

from sqlglot import exp

from collabzone.techniques.sql.rules._context import (
    Quantity,
    RewriteContext,
    derived,
    named,
    quoted,
    select,
)
from collabzone.techniques.sql.rules.packed_bounding import one_packed_row_per_entity


def _q(name: str) -> exp.Identifier:
    return exp.to_identifier(name, quoted=True)


def _num(value: int) -> exp.Expression:
    return exp.Literal.number(value) if value >= 0 else exp.Neg(this=exp.Literal.number(-value))


def _least(a: exp.Expression, b: exp.Expression, *, nulls: bool = False) -> exp.Expression:
    # ignore_nulls=True is DuckDB's own LEAST; False makes a NULL input give NULL.
    return exp.Least(this=a, expressions=[b], ignore_nulls=not nulls)


def _greatest(a: exp.Expression, b: exp.Expression, *, nulls: bool = False) -> exp.Expression:
    return exp.Greatest(this=a, expressions=[b], ignore_nulls=not nulls)


def _scaled(quantity: Quantity, engine: str) -> exp.Expression:
    """One row's value, clamped to the bounds and scaled to an integer (NULL stays NULL).

    A CASE of two comparisons rather than LEAST / GREATEST behind a NULL test: a NULL
    fails both comparisons and comes out as itself, and the engine evaluates one
    expression fewer per row (less time and scratch memory on a million rows). DuckDB's
    cast of a DOUBLE to BIGINT rounds to the nearest integer (halves to even, where ROUND
    takes them away from zero), so there the cast alone is the rounding: either way a
    clamped value lands on an integer inside its integer bounds, which is all the
    sensitivity needs. Other engines may truncate (Spark) and keep the ROUND.
    """
    assert quantity.column is not None and quantity.bound is not None
    bound = quantity.bound
    low = exp.Literal.number(bound.low / bound.scale)
    high = exp.Literal.number(bound.high / bound.scale)
    value = quantity.column.copy()
    clamped = exp.Case(
        ifs=[
            exp.If(this=exp.LT(this=value.copy(), expression=low), true=low.copy()),
            exp.If(this=exp.GT(this=value.copy(), expression=high), true=high.copy()),
        ],
        default=value,
    )
    scaled: exp.Expression = exp.Mul(this=clamped, expression=exp.Literal.number(bound.scale))
    if engine != "duckdb":
        scaled = exp.Round(this=scaled)
    return exp.Cast(this=scaled, to=exp.DataType.build("BIGINT"))


def _per_row(quantity: Quantity, engine: str) -> exp.Expression:
    """What one sampled row contributes to a quantity (the one-row-per-entity path); a
    NULL summed value stays NULL (SUM skips it; an all-NULL total is read as 0)."""
    if quantity.kind in ("rows", "entities"):
        return _num(1)
    if quantity.kind == "distinct":  # the value itself, counted distinctly per group
        assert quantity.column is not None
        return quantity.column.copy()
    if quantity.kind == "nonnull":
        assert quantity.column is not None
        return exp.If(
            this=exp.Is(this=quantity.column.copy(), expression=exp.Null()),
            true=_num(0),
            false=_num(1),
        )
    return _scaled(quantity, engine)


def _row_total(quantity: Quantity, engine: str) -> exp.Expression:
    """A group's total when every row is one person's whole contribution: the plain
    aggregate (COUNT rather than SUM(1): a narrower state, one expression fewer)."""
    if quantity.kind in ("rows", "entities"):
        return exp.Count(this=exp.Star())
    assert quantity.column is not None
    if quantity.kind == "nonnull":
        return exp.Count(this=quantity.column.copy())
    if quantity.kind == "distinct":
        return exp.Count(this=exp.Distinct(expressions=[quantity.column.copy()]))
    return exp.Cast(this=exp.Sum(this=_scaled(quantity, engine)), to=exp.DataType.build("BIGINT"))


def _struct(fields: list[tuple[str, exp.Expression]]) -> exp.Struct:
    return exp.Struct(
        expressions=[exp.PropertyEQ(this=exp.to_identifier(k), expression=v) for k, v in fields]
    )


def _one_row_per_entity(source: exp.Select, dims: list[Any], ctx: RewriteContext) -> exp.Select:
    """Limits of one row and one group per entity: keep, per entity, the row whose group
    and values have the smallest salted hash, in one aggregation (no window)."""
    salt = exp.Literal.number(ctx.salt)
    names = [f"d{i}" for i in range(len(dims))]
    picked = _struct(
        [(n, d.copy()) for n, d in zip(names, dims, strict=True)]
        + [(q.name, _per_row(q, ctx.engine)) for q in ctx.quantities]
    )
    row_cols = [q.column.copy() for q in ctx.quantities if q.column is not None]
    # one salted hash of the row's group and values: the choice depends only on the
    # entity's own rows (one hash, not a struct of two: a cheaper ARG_MIN key)
    key = exp.Anonymous(this="hash", expressions=[*[d.copy() for d in dims], *row_cols, salt])
    inner = exp.Select(expressions=[named(exp.ArgMin(this=picked, expression=key), "_cz_k")])
    inner.set("from_", source.args["from_"])
    inner.set("joins", source.args.get("joins"))
    inner.set("where", source.args.get("where"))
    inner.set("group", exp.Group(expressions=[ctx.entity.copy()]))

    def field(name: str) -> exp.Expression:
        return exp.Column(this=quoted(name), table=quoted("_cz_k"), db=quoted("_cz_b"))

    items: list[Any] = [named(field(n), f"_cz_d{i}") for i, n in enumerate(names)]
    items += [named(_total(field(q.name), q), q.name) for q in ctx.quantities]
    return select(
        items,
        derived(inner, "_cz_b"),
        group=[field(n) for n in names] or None,
    )


def _one_row_each(source: exp.Select, dims: list[Any], ctx: RewriteContext) -> exp.Select:
    """Every person has one row (a unique entity column, one table): each row is already
    one person's bounded contribution, so the groups sum rows directly."""
    items: list[Any] = [named(d, f"_cz_d{i}") for i, d in enumerate(dims)]
    items += [named(_row_total(q, ctx.engine), q.name) for q in ctx.quantities]
    out = exp.Select(expressions=items)
    out.set("from_", source.args["from_"])
    out.set("joins", source.args.get("joins"))
    out.set("where", source.args.get("where"))
    if dims:
        out.set("group", exp.Group(expressions=[d.copy() for d in dims]))
    return out


def _total(value: exp.Expression, quantity: Quantity) -> exp.Expression:
    """A group's total of per-row (one row per entity) contributions."""
    if quantity.kind == "distinct":
        return exp.Count(this=exp.Distinct(expressions=[value]))
    return exp.Cast(this=exp.Sum(this=value), to=exp.DataType.build("BIGINT"))


def _group_total(value: exp.Expression, quantity: Quantity) -> exp.Expression:
    """A group's total of per-entity contributions (a list of values for ``distinct``)."""
    if quantity.kind == "distinct":
        merged = exp.Anonymous(this="flatten", expressions=[exp.ArrayAgg(this=value)])
        return exp.Anonymous(this="list_unique", expressions=[merged])
    return exp.Cast(this=exp.Sum(this=value), to=exp.DataType.build("BIGINT"))


def _per_entity(quantity: Quantity, cap: int, engine: str) -> exp.Expression:
    if quantity.kind == "distinct":  # at most ``cap`` of the entity's distinct values
        assert quantity.column is not None
        values = exp.Anonymous(
            this="list_sort",
            expressions=[exp.ArrayAgg(this=exp.Distinct(expressions=[quantity.column.copy()]))],
        )
        return exp.Anonymous(this="list_slice", expressions=[values, _num(1), _num(cap)])
    if quantity.kind == "rows":
        return _least(exp.Count(this=exp.Star()), _num(cap))
    if quantity.kind == "nonnull":
        assert quantity.column is not None
        return _least(exp.Count(this=quantity.column.copy()), _num(cap))
    if quantity.kind == "entities":
        return _num(1)
    assert quantity.bound is not None
    bound = quantity.bound
    total = exp.Coalesce(this=exp.Sum(this=_scaled(quantity, engine)), expressions=[_num(0)])
    return _least(_greatest(total, _num(cap * bound.low)), _num(cap * bound.high))


def bound_contributions(expression: exp.Select, *, ctx: RewriteContext) -> exp.Select:
    """Rewrite an aggregate query into bounded per-group integer quantities."""
    source = expression.copy()
    group = source.args.get("group")
    dims = [d.copy() for d in group.expressions] if group is not None else []
    if ctx.entity_unique:
        return _one_row_each(source, dims, ctx)
    if ctx.max_rows_per_entity == 1 and ctx.max_groups_per_entity == 1 and ctx.engine == "duckdb":
        # (DuckDB's ARG_MIN over a struct key; other engines bound with the general form)
        packed = one_packed_row_per_entity(source, dims, ctx, _per_row)
        return packed if packed is not None else _one_row_per_entity(source, dims, ctx)
    names = [f"_cz_d{i}" for i in range(len(dims))]
    inner_items: list[Any] = [exp.alias_(d, _q(n)) for d, n in zip(dims, names, strict=True)]
    inner_items += [
        exp.alias_(_per_entity(q, ctx.max_rows_per_entity, ctx.engine), _q(q.name))
        for q in ctx.quantities
    ]
    inner = exp.select(*inner_items)
    inner.set("from_", source.args["from_"])
    inner.set("joins", source.args.get("joins"))
    inner.set("where", source.args.get("where"))
    inner = inner.group_by(ctx.entity.copy(), *[d.copy() for d in dims])
    if dims:
        key = exp.Anonymous(
            this="hash", expressions=[*[d.copy() for d in dims], exp.Literal.number(ctx.salt)]
        )
        rank = exp.Window(
            this=exp.RowNumber(),
            partition_by=[ctx.entity.copy()],
            order=exp.Order(expressions=[exp.Ordered(this=key)]),
        )
        inner.set(
            "qualify",
            exp.Qualify(this=exp.LTE(this=rank, expression=_num(ctx.max_groups_per_entity))),
        )
    outer_items: list[Any] = [exp.column(_q(n), table=_q("_cz_b")) for n in names]
    outer_items += [
        exp.alias_(_group_total(exp.column(_q(q.name), table=_q("_cz_b")), q), _q(q.name))
        for q in ctx.quantities
    ]
    outer = exp.select(*outer_items).from_(
        exp.alias_(exp.Subquery(this=inner), _q("_cz_b"), table=True)
    )
    if names:
        outer = outer.group_by(*[exp.column(_q(n), table=_q("_cz_b")) for n in names])
    return outer
