"""Rule: release only groups with at least ``min_group_size`` distinct people of every
protected dataset behind them.

The query becomes two nested SELECTs. The inner one groups the analyst's rows and computes
each aggregate once (``_cz_a0``...), the output dimensions, every GROUP BY value
(``_cz_g0``..., hidden, for the disclosure audit) and, per protected dataset,
``COUNT(DISTINCT entity)`` (``_cz_e0``...) or, when the audit needs them, the list of
its people's salted hashes (``_cz_m0``..., one per row, unsorted), whose number of
distinct values is the count. The outer one keeps the groups where each count reaches the
threshold and only then evaluates the analyst's expressions over aggregates, HAVING,
ORDER BY and LIMIT, so arithmetic on a suppressed group can never fail (or succeed) where
the analyst could see it. The threshold is enforced by the engine; no suppressed row ever
reaches Python, and nothing says how many were suppressed.
"""

from __future__ import annotations

from typing import Any

from sqlglot import exp

from collabzone.techniques.sql.rules._context import (
    ENTITY_COUNT,
    GROUP_VALUE,
    MEMBERS,
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


def member_hash(entity: exp.Expression, salt: int) -> exp.Expression:
    """The salted 64-bit hash of one person, as kept for the disclosure audit."""
    return exp.Anonymous(this="hash", expressions=[entity, exp.Literal.number(salt)])


def enforce_min_group_size(expression: exp.Select, *, ctx: RewriteContext) -> exp.Select:
    """Wrap ``expression`` so that rows with fewer than the minimum people are dropped."""
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
    group = expression.args.get("group")
    hidden: list[str] = []
    for i, dim in enumerate(group.expressions if group is not None else []):
        inner_items.append(named(dim.copy(), f"{GROUP_VALUE}{i}"))
        hidden.append(f"{GROUP_VALUE}{i}")
    threshold = exp.Literal.number(ctx.min_group_size)
    keep: exp.Expression | None = None
    for i, entity in enumerate(ctx.counted):
        counted = f"{ENTITY_COUNT}{i}"
        if ctx.collect_members:
            # the audit's list of people, as the rows list them (repeats, any order: the
            # audit sorts and de-duplicates each list, which costs a third of DuckDB's
            # DISTINCT + list_sort); its count of distinct values is the count of people
            hashed = member_hash(entity.copy(), ctx.member_salt)
            members = f"{MEMBERS}{i}"
            listed = exp.Filter(
                this=exp.ArrayAgg(this=hashed),
                expression=exp.Where(
                    this=exp.Not(this=exp.Is(this=entity.copy(), expression=exp.Null()))
                ),
            )
            inner_items.append(named(listed, members))
            hidden.append(members)
            size: exp.Expression = exp.Coalesce(
                this=exp.Anonymous(this="list_unique", expressions=[column(members, "_cz_g")]),
                expressions=[exp.Literal.number(0)],
            )
        else:
            inner_items.append(
                named(exp.Count(this=exp.Distinct(expressions=[entity.copy()])), counted)
            )
            hidden.append(counted)
            size = column(counted, "_cz_g")
        test = exp.GTE(this=size, expression=threshold.copy())
        keep = test if keep is None else exp.And(this=keep, expression=test)
    inner = expression.copy()
    for part in ("order", "limit", "having"):
        inner.set(part, None)
    inner.set("expressions", inner_items)
    outer_items += [column(name, "_cz_g") for name in hidden]
    assert keep is not None
    if having_test is not None:
        keep = exp.And(this=keep, expression=exp.Paren(this=having_test))
    return select(
        outer_items,
        derived(inner, "_cz_g"),
        where=keep,
        order=[(column(name), desc) for name, desc in ctx.order_by],
        limit=ctx.limit,
    )
