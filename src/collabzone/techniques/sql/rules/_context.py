"""What a rewrite rule may know: the entity column, thresholds and output names."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlglot import exp

ENTITIES = "_cz_entities"
MEMBERS = "_cz_members"
SUPPRESSED = "_cz_suppressed"


@dataclass(frozen=True)
class SumBound:
    """Clamping bounds of one summed column, already scaled to integers."""

    low: int
    high: int
    scale: int
    """Values are multiplied by ``scale`` and rounded, so sums are exact integers."""


@dataclass(frozen=True)
class Quantity:
    """One integer quantity the DP rewrite computes per group.

    ``kind`` is ``rows`` (COUNT(*)), ``nonnull`` (COUNT(col)), ``entities``
    (COUNT(DISTINCT entity)) or ``sum`` (SUM of clamped, integer-scaled values).
    """

    name: str
    kind: str
    column: exp.Expression | None = None
    bound: SumBound | None = None


@dataclass(frozen=True)
class RewriteContext:
    """Parameters shared by the rules; each rule reads what it needs."""

    output_names: tuple[str, ...]
    entity: exp.Column
    """The qualified column whose distinct values are the people behind a row."""
    min_group_size: int = 1
    collect_members: bool = False
    max_result_rows: int | None = None
    order_by: tuple[tuple[str, bool], ...] = ()
    limit: int | None = None
    max_rows_per_entity: int = 1
    max_groups_per_entity: int = 1
    quantities: tuple[Quantity, ...] = field(default_factory=tuple)
    salt: int = 0
    """Per-run salt of the hash that picks which groups an entity keeps (DP)."""


def quoted(name: str) -> exp.Identifier:
    """A quoted identifier (exact name, whatever the engine's case rules)."""
    return exp.to_identifier(name, quoted=True)


def named(node: exp.Expression, name: str) -> exp.Alias:
    """``node AS "name"`` built in place (no copy: rules copy their input once)."""
    return exp.Alias(this=node, alias=quoted(name))


def derived(select: exp.Select, name: str) -> exp.Subquery:
    """``(select) AS "name"`` as a FROM source."""
    return exp.Subquery(this=select, alias=exp.TableAlias(this=quoted(name)))


def column(name: str, table: str | None = None) -> exp.Column:
    return exp.Column(this=quoted(name), table=quoted(table) if table else None)


def select(
    items: list[exp.Expression],
    source: exp.Expression,
    *,
    where: exp.Expression | None = None,
    group: list[exp.Expression] | None = None,
    order: list[tuple[exp.Expression, bool]] | None = None,
    limit: int | None = None,
) -> exp.Select:
    """A SELECT assembled from parts without the builder API's defensive copies."""
    tree = exp.Select(expressions=items, from_=exp.From(this=source))
    if where is not None:
        tree.set("where", exp.Where(this=where))
    if group:
        tree.set("group", exp.Group(expressions=group))
    if order:
        tree.set("order", exp.Order(expressions=[exp.Ordered(this=e, desc=d) for e, d in order]))
    if limit is not None:
        tree.set("limit", exp.Limit(expression=exp.Literal.number(limit)))
    return tree
