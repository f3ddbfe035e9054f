"""The disclosure audit of one aggregation release, seen from each protected dataset.

For every dataset of another owner in the query, the released rows become cells of that
dataset's audited space (:mod:`collabzone.disclosure`): each cell's people (salted hashes
from the engine), the dataset's own condition and group values (to place the phantoms of
empty regions), and, for each join, the set of keys the rest of the query matched it with
(so a key the analyst joined on but that is not in the data still counts as a region).
The release goes out only if no covered atom of any space falls under the minimum; the
new spaces travel with the outcome and are stored in the release transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
from sqlglot import exp

from collabzone import disclosure
from collabzone.errors import PolicyRefusal, Reason
from collabzone.model import Column
from collabzone.techniques.base import AuditUpdate, RunContext
from collabzone.techniques.sql._compiled import Compiled
from collabzone.techniques.sql._engines import DuckDBEngine, Engine
from collabzone.techniques.sql._protect import (
    Protected,
    components,
    other_conditions,
    own_condition,
)
from collabzone.techniques.sql.rules._context import GROUP_VALUE, MEMBERS
from collabzone.techniques.sql.rules.enforce_min_group_size import member_hash


def member_salt(ctx: RunContext) -> int:
    """The zone's salt of people's hashes (kept inside the zone, never shown)."""
    return int.from_bytes(ctx.derive_key(disclosure.MEMBER_SALT_PURPOSE, 6), "little")


def space_name(protected: Protected, scope: str, requester: str) -> str:
    return disclosure.space_name(protected.dataset, protected.entity.column.name, scope, requester)


def members_of(table: pa.Table, name: str) -> list[np.ndarray]:
    """Each row's hashed people as a sorted, distinct uint64 array, without a Python int per
    person."""
    out: list[np.ndarray] = []
    for chunk in table.column(name).chunks:
        lists = chunk.cast(pa.list_(pa.uint64()))
        offsets = lists.offsets.to_numpy()
        flat = lists.values.to_numpy(zero_copy_only=False).astype(np.uint64, copy=False)
        # the engine lists each row's people as its rows come (repeats, any order)
        out += [_distinct_sorted(flat[offsets[i] : offsets[i + 1]]) for i in range(len(lists))]
    return out


def jitter_of(compiled: Compiled, ctx: RunContext) -> disclosure.Jitter:
    eff = compiled.effective
    width = eff.threshold_jitter
    if width is None:
        width = eff.min_group_size // 2
    return disclosure.Jitter(ctx.derive_key(disclosure.JITTER_PURPOSE), max(0, int(width)))


def _token_sets(
    compiled: Compiled, engine: Engine, protected: Protected, group_of_rows: list[tuple[Any, ...]],
    salt: int,
) -> dict[str, list[np.ndarray | None]]:  # fmt: skip
    """Per join of ``protected``: per released row, the keys the other side matched with.

    The engine groups the keys by the other side's group values and hands each group's
    keys over as one list (one row per group, not per key): no Python pass over the keys
    beyond sorting each group's list once."""
    query, shape = compiled.query, compiled.shape
    out: dict[str, list[np.ndarray | None]] = {}
    for part in components(protected.alias, query, shape.join_pairs):
        aliases = set(part.aliases)
        grouped = [i for i, ref in enumerate(shape.group_by) if ref.alias in aliases]
        refs = [
            exp.column(exp.to_identifier(r.column.name, quoted=True),
                       table=exp.to_identifier(r.alias, quoted=True))
            for r in part.other_refs
        ]  # fmt: skip
        key = member_hash(exp.Tuple(expressions=refs) if len(refs) > 1 else refs[0], salt)
        # named like the rewrite's people lists, so every engine hands it back the same way
        # (a sorted list<uint64> per row)
        items: list[Any] = [exp.alias_(exp.ArrayAgg(this=key), _KEYS, quoted=True)]
        group_items: list[exp.Expression] = []
        group_refs = shape.group_by
        for j in grouped:
            ref = group_refs[j]
            value = exp.column(exp.to_identifier(ref.column.name, quoted=True),
                               table=exp.to_identifier(ref.alias, quoted=True))  # fmt: skip
            items.append(exp.alias_(value, f"_cz_c{j}", quoted=True))
            group_items.append(value.copy())
        tables = [
            exp.Table(this=exp.to_identifier(query.tables[a], quoted=True),
                      alias=exp.TableAlias(this=exp.to_identifier(a, quoted=True)))
            for a in part.aliases
        ]  # fmt: skip
        select = exp.Select(expressions=items, from_=exp.From(this=tables[0]))
        for extra in tables[1:]:
            select.append("joins", exp.Join(this=extra))
        conditions: list[exp.Expression] = other_conditions(query, aliases)
        for left, right in shape.join_pairs:
            if left.alias in aliases and right.alias in aliases:
                conditions.append(
                    exp.EQ(
                        this=exp.column(exp.to_identifier(left.column.name, quoted=True),
                                        table=exp.to_identifier(left.alias, quoted=True)),
                        expression=exp.column(exp.to_identifier(right.column.name, quoted=True),
                                              table=exp.to_identifier(right.alias, quoted=True)),
                    )
                )  # fmt: skip
        if conditions:
            where = conditions[0]
            for c in conditions[1:]:
                where = exp.And(this=where, expression=c)
            select.set("where", exp.Where(this=where))
        if group_items:
            select.set("group", exp.Group(expressions=group_items))
        table = engine.run(select, timeout_s=compiled.effective.timeout_s, max_rows=None)
        sets = _sets_by_group(table, [f"_cz_c{j}" for j in grouped])
        empty = np.zeros(0, dtype=np.uint64)
        column = ",".join(part.own_columns)
        out[column] = [
            sets.get(tuple(values[j] for j in grouped), empty) for values in group_of_rows
        ]
    return out


_KEYS = f"{MEMBERS}keys"
"""The column of the keys a join matched, one list per group of the other side."""


def _sets_by_group(table: pa.Table, names: list[str]) -> dict[tuple[Any, ...], np.ndarray]:
    """Each group's keys, sorted and distinct (``table``: one row per group, its keys as one
    list; sorted here rather than by a DISTINCT ... ORDER BY in the engine, which is
    several times slower on a few large groups)."""
    lists = members_of(table, _KEYS)
    if not names:
        return {(): lists[0] if lists else np.zeros(0, dtype=np.uint64)}
    columns = [
        [None if v is None or v != v else v for v in table.column(name).to_pylist()]
        for name in names
    ]
    return {tuple(column[row] for column in columns): keys for row, keys in enumerate(lists)}


def _distinct_sorted(values: np.ndarray) -> np.ndarray:
    """``values`` sorted without repeats (``np.unique`` hashes first: slower here)."""
    ordered = np.sort(values)
    return ordered[np.concatenate(([True], ordered[1:] != ordered[:-1]))]


@dataclass(frozen=True)
class _View:
    """One protected dataset's view of every candidate row (computed once)."""

    protected: Protected
    spaces: tuple[str, ...]
    """The space to check first, then spaces only recorded (a narrowed scope's "all")."""
    columns: Mapping[str, Column]
    members: list[np.ndarray]
    own_group: list[int]
    condition: str | None
    literals: dict[str, list[Any]]
    token_sets: dict[str, list[np.ndarray | None]]


def _views(
    compiled: Compiled, ctx: RunContext, members: list[list[np.ndarray]],
    group_of_rows: list[tuple[Any, ...]], salt: int, engine: Engine,
) -> list[_View]:  # fmt: skip
    shape, query, eff = compiled.shape, compiled.query, compiled.effective
    views = []
    for index, protected in enumerate(compiled.protected):
        rules = eff.of(protected.dataset)
        if rules.get("query_monitor") is False:
            continue
        condition = own_condition(query, protected.alias)
        literals: dict[str, list[Any]] = {}
        for cond in shape.conditions:
            if cond.ref.alias == protected.alias:
                literals.setdefault(cond.ref.column.name, []).extend(cond.values)
        scope = "requester" if rules.get("audit_scope") == "requester" else "all"
        spaces = [space_name(protected, scope, ctx.requester.name)]
        if scope != "all":
            spaces.append(space_name(protected, "all", ctx.requester.name))
        views.append(
            _View(
                protected=protected,
                spaces=tuple(spaces),
                columns={c.name: c for c in ctx.dataset(protected.dataset).columns},
                members=members[index],
                own_group=[j for j, r in enumerate(shape.group_by) if r.alias == protected.alias],
                condition=condition.sql(dialect="duckdb") if condition is not None else None,
                literals=literals,
                token_sets=_token_sets(compiled, engine, protected, group_of_rows, salt),
            )
        )
    return views


def _attempt(
    views: list[_View],
    rows: list[int],
    group_of_rows: list[tuple[Any, ...]],
    compiled: Compiled,
    ctx: RunContext,
    jitter: disclosure.Jitter,
    findings: dict[str, disclosure.Finding] | None = None,
) -> tuple[AuditUpdate, ...] | None:
    """The new states if releasing ``rows`` (table row numbers) keeps every space safe.

    ``findings``, when given, receives each checked space's finding (for the risk report).
    """
    updates: list[AuditUpdate] = []
    safe = True
    for view in views:
        cells = disclosure.ReleasedCells(
            members=[view.members[r] for r in rows],
            condition_sql=view.condition,
            condition_literals=view.literals,
            group_columns=tuple(compiled.shape.group_by[j].column.name for j in view.own_group),
            own_values=[tuple(group_of_rows[r][j] for j in view.own_group) for r in rows],
            token_sets={c: [sets[r] for r in rows] for c, sets in view.token_sets.items()},
        )
        for position, space in enumerate(view.spaces):
            stored = ctx.audit_state(space)
            before = disclosure.Space.from_bytes(stored[1]) if stored else disclosure.Space()
            try:
                result = disclosure.audit(
                    before,
                    cells,
                    view.columns,
                    ctx.connection(),
                    min_size=compiled.effective.min_group_size,
                    jitter=jitter,
                )
            except disclosure.GridTooLarge:
                raise PolicyRefusal(_too_fine(view.protected)) from None
            if position == 0:
                if findings is not None:
                    findings[view.protected.dataset] = result.finding
                if not result.finding.safe:
                    safe = False
                    if findings is None:
                        return None
            updates.append(
                AuditUpdate(space, stored[0] if stored else None, result.space.to_bytes())
            )
    return tuple(updates) if safe else None


def audit_release(
    compiled: Compiled,
    ctx: RunContext,
    table: pa.Table,
    rows: Sequence[int],
    salt: int,
    assessment: dict[str, Any] | None = None,
    engine: Engine | None = None,
    members: list[list[np.ndarray]] | None = None,
) -> tuple[list[int], tuple[AuditUpdate, ...]]:
    """The rows that may go out and the audited spaces with them.

    ``members`` are :func:`all_members` of ``table`` when the caller has them already.

    When releasing every candidate row would leave an atom under the minimum (a total
    minus the shown groups, a difference with an earlier answer), the smallest rows are
    withheld one at a time until it would not: complementary suppression, which looks
    exactly like a group under the threshold. A scalar answer that would combine badly is
    withheld whole, so "too small" and "would single someone out" look the same.
    """
    if not rows:
        return [], ()
    group_values = [
        table.column(f"{GROUP_VALUE}{j}").to_pylist() for j in range(len(compiled.shape.group_by))
    ]
    group_of_rows = [tuple(col[r] for col in group_values) for r in range(table.num_rows)]
    if members is None:
        members = all_members(compiled, table)
    views = _views(compiled, ctx, members, group_of_rows, salt, engine or DuckDBEngine(ctx))
    if not views:
        return list(rows), ()
    jitter = jitter_of(compiled, ctx)
    remaining = list(rows)
    first = True
    while remaining:
        findings: dict[str, disclosure.Finding] | None = (
            {} if first and assessment is not None else None
        )
        updates = _attempt(views, remaining, group_of_rows, compiled, ctx, jitter, findings)
        if findings is not None and assessment is not None:
            assessment["if_everything_were_released"] = {
                dataset: _finding_json(f) for dataset, f in findings.items()
            }
        first = False
        if updates is not None:
            if assessment is not None:
                assessment["withheld_to_protect_combinations"] = len(rows) - len(remaining)
            return remaining, updates
        # ties broken by the group's values, not the engine's row order: every engine
        # withholds the same rows
        smallest = min(
            remaining,
            key=lambda r: (min(v.members[r].size for v in views), _order_key(group_of_rows[r])),
        )
        remaining.remove(smallest)
    if assessment is not None:
        assessment["withheld_to_protect_combinations"] = len(rows)
    return [], ()


def _order_key(values: tuple[Any, ...]) -> tuple[tuple[bool, str, str], ...]:
    """A total order on group values of any types (None first)."""
    return tuple((v is not None, type(v).__name__, repr(v)) for v in values)


def _finding_json(finding: disclosure.Finding) -> dict[str, Any]:
    return {
        "groups_under_minimum": finding.small_atoms,
        "people_in_them": finding.people,
        "smallest_group": finding.smallest,
        "empty_groups_revealed": finding.empty_regions,
    }


def _too_fine(protected: Protected) -> Reason:
    return Reason(
        "AUDIT_LIMIT",
        "sql.audit",
        f"the answers already released on {protected.dataset!r} tell apart too many regions "
        "to audit another exact answer; ask with DP (analysis dp) or ask its owner",
        protected.owner,
    )


def all_members(compiled: Compiled, table: pa.Table) -> list[list[np.ndarray]]:
    """Per protected dataset, each result row's people (:func:`members_of`)."""
    return [members_of(table, f"{MEMBERS}{i}") for i in range(len(compiled.protected))]


def protected_rows(
    compiled: Compiled, members: list[list[np.ndarray]], rows: int, jitter: disclosure.Jitter
) -> list[int]:
    """The result rows (of ``rows``) that reach the jittered threshold in every protected
    dataset (``members``: :func:`all_members`)."""
    keep = np.ones(rows, dtype=np.bool_)
    for listed in members:
        keep &= ~disclosure.below_jittered(listed, jitter, compiled.effective.min_group_size)
    return np.flatnonzero(keep).tolist()


__all__ = [
    "all_members",
    "audit_release",
    "jitter_of",
    "member_salt",
    "protected_rows",
]
