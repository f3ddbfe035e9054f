"""Rule: one row per entity with its largest rows-per-group and its number of groups.

Input of the private derivation of contribution limits (see ``_bounds``): the analyst's
FROM / JOIN / WHERE are kept, rows are counted per (entity, group), then folded per entity.
Values are capped at ``cap`` so no entity's figure is unbounded.
"""

from __future__ import annotations

from typing import Any

from sqlglot import exp

from collabzone.techniques.sql.rules._context import RewriteContext, column, derived, named, select

CAP = 100


def profile_contributions(expression: exp.Select, *, ctx: RewriteContext) -> exp.Select:
    """Per entity: ``_cz_rows`` (max rows in one group) and ``_cz_groups`` (groups touched)."""
    source = expression.copy()
    group = source.args.get("group")
    dims: list[Any] = [d.copy() for d in group.expressions] if group is not None else []
    inner = exp.Select(
        expressions=[named(ctx.entity.copy(), "_cz_e"), named(exp.Count(this=exp.Star()), "_cz_n")]
    )
    inner.set("from_", source.args["from_"])
    inner.set("joins", source.args.get("joins"))
    inner.set("where", source.args.get("where"))
    inner.set("group", exp.Group(expressions=[ctx.entity.copy(), *dims]))
    cap = exp.Literal.number(CAP)
    rows = exp.Least(
        this=exp.Max(this=column("_cz_n", "_cz_p")), expressions=[cap], ignore_nulls=True
    )
    groups = exp.Least(this=exp.Count(this=exp.Star()), expressions=[cap.copy()], ignore_nulls=True)
    return select(
        [named(rows, "_cz_rows"), named(groups, "_cz_groups")],
        derived(inner, "_cz_p"),
        group=[column("_cz_e", "_cz_p")],
    )
