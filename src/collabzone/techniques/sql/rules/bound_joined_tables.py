"""Rule: the requester's own tables join as at most one row per join key.

A party that owns one side of a join could otherwise put a thousand rows behind one
victim's key and multiply that person's contribution to every sum, or count one person a
thousand times. Before the join, each of the requester's own tables keeps one row per
value of each join-key column it is joined on (the first in the order of all its columns,
so the choice does not depend on storage order). Its columns still filter and group; its
rows no longer multiply anyone else's.
"""

from __future__ import annotations

from sqlglot import exp

from collabzone.techniques.sql.rules._context import OwnTable, RewriteContext, quoted


def _one_per_key(table: OwnTable) -> exp.Select:
    source: exp.Expression = exp.Table(this=quoted(table.dataset))
    tree: exp.Select | None = None
    for n, key in enumerate(table.keys):
        rank = exp.Window(
            this=exp.RowNumber(),
            partition_by=[exp.column(quoted(key))],
            order=exp.Order(
                expressions=[exp.Ordered(this=exp.column(quoted(c))) for c in table.columns]
            ),
        )
        tree = exp.Select(expressions=[exp.Star()], from_=exp.From(this=source))
        tree.set("qualify", exp.Qualify(this=exp.EQ(this=rank, expression=exp.Literal.number(1))))
        source = exp.Subquery(this=tree, alias=exp.TableAlias(this=quoted(f"_cz_u{n}")))
    assert tree is not None
    return tree


def bound_joined_tables(expression: exp.Select, *, ctx: RewriteContext) -> exp.Select:
    """Replace each of the requester's own joined tables by its one-row-per-key form."""
    if not ctx.own_tables:
        return expression
    tree = expression.copy()
    sources = [tree.args["from_"].this] + [j.this for j in tree.args.get("joins") or []]
    for source in sources:
        if not isinstance(source, exp.Table):
            continue
        own = ctx.own_tables.get(source.alias_or_name)
        if own is None or not own.keys:
            continue
        source.replace(
            exp.Subquery(
                this=_one_per_key(own), alias=exp.TableAlias(this=quoted(source.alias_or_name))
            )
        )
    return tree
