"""Who a query must protect, and what each protected dataset's part of the query is.

A dataset is *protected* when the requester does not own it: its people are counted for
the minimum group size, its contributions are bounded, and what is released about it is
audited (see :mod:`collabzone.disclosure`). For the audit, a query is seen from each
protected dataset in turn: its own condition (the WHERE conjuncts on its columns), its own
group columns, and, for every join, the set of keys the rest of the query matched it with.
That view needs conditions that belong to one table each, so audited queries may not mix
tables inside one OR.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlglot import exp

from collabzone.errors import Reason
from collabzone.model import ColumnType, Dataset
from collabzone.techniques.sql._frontend import ColumnRef, ResolvedQuery
from collabzone.techniques.sql._rules import entity_column
from collabzone.techniques.sql._shape import Shape


@dataclass(frozen=True)
class Protected:
    """A dataset of another owner in the query: its alias and the column counting people."""

    alias: str
    dataset: str
    owner: str
    entity: ColumnRef


@dataclass(frozen=True)
class Component:
    """The rest of the query joined to one protected alias through one set of key pairs.

    ``own_columns[i]`` of the protected table equals ``other_refs[i]`` in ``aliases``.
    """

    aliases: tuple[str, ...]
    own_columns: tuple[str, ...]
    other_refs: tuple[ColumnRef, ...]


def protected_of(
    query: ResolvedQuery,
    by_name: Mapping[str, Dataset],
    owners: Mapping[str, str],
    rules_of: Mapping[str, Mapping[str, object]],
    requester: str,
) -> tuple[list[Protected], list[Reason]]:
    """Every protected alias with its entity column, and why one cannot be protected."""
    found: list[Protected] = []
    reasons: list[Reason] = []
    for alias, name in query.tables.items():
        if owners[name] == requester:
            continue
        dataset = by_name[name]
        entity = entity_column(dataset, rules_of.get(name, {}))
        if entity is None:
            reasons.append(
                Reason(
                    "NO_ENTITY_KEY",
                    "sql.entity_key",
                    f"dataset {name!r} names no entity key (rule entity_key), so the people "
                    "behind a row cannot be counted; ask its owner",
                    owners[name],
                )
            )
            continue
        column = dataset.column(entity)
        assert column is not None
        found.append(Protected(alias, name, owners[name], ColumnRef(alias, name, column)))
    return found, reasons


def conjuncts(node: Any) -> list[exp.Expression]:
    """The top-level AND operands of a condition (parentheses looked through)."""
    if node is None:
        return []
    if isinstance(node, exp.Paren):
        return conjuncts(node.this)
    if isinstance(node, exp.And):
        return conjuncts(node.left) + conjuncts(node.right)
    return [node]


def aliases_in(node: exp.Expression, query: ResolvedQuery) -> set[str]:
    return {query.ref(c).alias for c in node.find_all(exp.Column) if id(c) in query.refs}


def where_of(query: ResolvedQuery) -> exp.Expression | None:
    where = query.tree.args.get("where")
    return where.this if where is not None else None


def mixed_conditions(query: ResolvedQuery) -> list[Reason]:
    """Audited queries keep each condition on one table (so each dataset's view is exact)."""
    if len(query.tables) < 2:
        return []
    for part in conjuncts(where_of(query)):
        if len(aliases_in(part, query)) > 1:
            return [
                Reason(
                    "MIXED_CONDITION",
                    "sql.audit",
                    "a condition combines columns of several tables in one OR / NOT; write "
                    "each table's conditions separately, joined by AND",
                )
            ]
    return []


def text_ranges(shape: Shape, protected: Sequence[Protected]) -> list[Reason]:
    """Range comparisons on text cannot be audited region by region: use = or IN."""
    aliases = {p.alias for p in protected}
    for condition in shape.conditions:
        ref = condition.ref
        if (
            ref.alias in aliases
            and ref.column.type == ColumnType.STRING
            and condition.op in ("GT", "GTE", "LT", "LTE", "BETWEEN")
        ):
            return [
                Reason(
                    "CONSTRUCT_NOT_ALLOWED",
                    "sql.audit",
                    f"compare the text column {ref.column.name!r} with = or IN, not a range",
                )
            ]
    return []


def self_joins(query: ResolvedQuery, protected: Sequence[Protected]) -> list[Reason]:
    """A shared dataset joined with itself multiplies its people; refuse it."""
    seen: dict[str, str] = {}
    for item in protected:
        if item.dataset in seen:
            return [
                Reason(
                    "SELF_JOIN",
                    "sql.join_keys",
                    f"dataset {item.dataset!r} is joined with itself; a shared dataset may be "
                    "joined only with datasets of other owners",
                    item.owner,
                )
            ]
        seen[item.dataset] = item.alias
    return []


def own_condition(query: ResolvedQuery, alias: str) -> exp.Expression | None:
    """The WHERE conjuncts on ``alias`` alone, with columns unqualified (a copy)."""
    parts = [p for p in conjuncts(where_of(query)) if aliases_in(p, query) == {alias}]
    if not parts:
        return None
    combined: exp.Expression = parts[0].copy()
    for part in parts[1:]:
        combined = exp.And(this=exp.Paren(this=combined), expression=exp.Paren(this=part.copy()))
    for column in combined.find_all(exp.Column):
        column.set("table", None)
    return combined


def other_conditions(query: ResolvedQuery, aliases: set[str]) -> list[exp.Expression]:
    """The WHERE conjuncts that lie entirely within ``aliases`` (copies, qualified)."""
    return [
        p.copy()
        for p in conjuncts(where_of(query))
        if aliases_in(p, query) and aliases_in(p, query) <= aliases
    ]


def components(
    alias: str, query: ResolvedQuery, pairs: Sequence[tuple[ColumnRef, ColumnRef]]
) -> list[Component]:
    """The parts of the join graph hanging off ``alias`` (its own key columns each)."""
    others = [a for a in query.tables if a != alias]
    parent = {a: a for a in others}

    def find(a: str) -> str:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for left, right in pairs:
        if alias not in (left.alias, right.alias):
            parent[find(left.alias)] = find(right.alias)
    groups: dict[str, list[str]] = {}
    for a in others:
        groups.setdefault(find(a), []).append(a)
    out: list[Component] = []
    for members in groups.values():
        own: list[str] = []
        refs: list[ColumnRef] = []
        for left, right in pairs:
            if left.alias == alias and right.alias in members:
                own.append(left.column.name)
                refs.append(right)
            elif right.alias == alias and left.alias in members:
                own.append(right.column.name)
                refs.append(left)
        if own:
            out.append(Component(tuple(members), tuple(own), tuple(refs)))
    return out
