"""What a rewrite rule may know: the entity column, thresholds and output names."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlglot import exp

ENTITIES = "_cz_entities"
ENTITY_COUNT = "_cz_e"
"""Prefix of the per-protected-dataset distinct-people counts (``_cz_e0``, ``_cz_e1``...)."""
MEMBERS = "_cz_m"
"""Prefix of the per-protected-dataset hashed people lists, for the disclosure audit."""
GROUP_VALUE = "_cz_g"
"""Prefix of the hidden group values (``_cz_g0``...), for the disclosure audit."""


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
    (COUNT(DISTINCT entity)), ``distinct`` (COUNT(DISTINCT col) of another column: at most
    ``max_rows_per_entity`` values per entity and group) or ``sum`` (SUM of clamped,
    integer-scaled values).
    """

    name: str
    kind: str
    column: exp.Expression | None = None
    bound: SumBound | None = None


@dataclass(frozen=True)
class OwnTable:
    """A table of the requester's own, joined as at most one row per join key."""

    dataset: str
    keys: tuple[str, ...]
    """Join-key columns: at most one row is kept per value of each (nested)."""
    columns: tuple[str, ...]
    """Every column, ordering the rows so the one kept does not depend on storage order."""


@dataclass(frozen=True)
class RewriteContext:
    """Parameters shared by the rules; each rule reads what it needs."""

    output_names: tuple[str, ...]
    entity: exp.Column
    """The qualified column whose distinct values are the people behind a row (the first
    protected dataset's; DP bounds contributions per value of it)."""
    entities: tuple[exp.Column, ...] = ()
    """One entity column per protected dataset: every released row needs the minimum of
    distinct people in each (defaults to ``entity`` alone)."""
    min_group_size: int = 1
    collect_members: bool = False
    member_salt: int = 0
    """Salt of the 64-bit hashes of people kept for the disclosure audit."""
    value_bounds: Mapping[tuple[str, str], SumBound] = field(default_factory=dict)
    """(table alias, column) -> clamping bounds of aggregated values (aggregation mode)."""
    own_tables: Mapping[str, OwnTable] = field(default_factory=dict)
    """Table alias -> the requester's own table, joined one row per key."""
    max_result_rows: int | None = None
    order_by: tuple[tuple[str, bool], ...] = ()
    limit: int | None = None
    max_rows_per_entity: int = 1
    max_groups_per_entity: int = 1
    quantities: tuple[Quantity, ...] = field(default_factory=tuple)
    salt: int = 0
    """Per-run salt of the hash that picks which groups an entity keeps (DP)."""
    entity_unique: bool = False
    """The query reads one table whose entity column is declared (and checked) unique:
    every person has one row, so DP's contribution bounding is the identity."""
    engine: str = "duckdb"
    """The engine the tree is for: a rule avoids constructs another engine lacks."""
    group_domains: tuple[tuple[Any, ...], ...] | None = None
    """Each GROUP BY column's public values when every one has a packable public domain
    (``packed_bounding``): DP then carries each person's kept row as one BIGINT."""

    @property
    def counted(self) -> tuple[exp.Column, ...]:
        """The entity columns whose distinct values must each reach the minimum."""
        return self.entities or (self.entity,)


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
