"""The overlap's cells: distinct people linked, per match key and per dimension, audited.

A count of linked *records* lets a probe of fifteen copies of one token answer 15 against
nothing; so every released count is of distinct people (the entity column of each side,
or the token when a record has none), and a cell is shown only if both sides have the
minimum of people in it (jittered near the threshold). Released cells enter each
protected side's audited space (:mod:`collabzone.disclosure`), shared with governed SQL:
the left side sees them as its own dimension and "key in the right side's tokens"
conditions (a record counts at its best key: in key j's tokens and in none of the earlier
keys'), the right side as "key in the tokens the left side linked".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from collabzone import disclosure
from collabzone.errors import PolicyRefusal, Reason
from collabzone.model import ColumnClass, Dataset
from collabzone.techniques.base import AuditUpdate, Plan, RunContext
from collabzone.techniques.linking._spec import TOKEN_PREFIX


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def entity_of(dataset: Dataset) -> str:
    """The column counting a dataset's people: its first join key."""
    keys = dataset.columns_of(ColumnClass.JOIN_KEY)
    return keys[0].name


@dataclass(frozen=True)
class Linked:
    """Left records linked at their best key, and the right people they matched."""

    level: np.ndarray
    left_token: list[str]
    left_token_hash: np.ndarray
    left_person: np.ndarray
    dim: list[Any]
    right_level: np.ndarray
    right_token_hash: np.ndarray
    right_person: np.ndarray
    right_dim: list[Any]
    right_sets: dict[int, np.ndarray]
    """Per key level, every token hash of the right side (what a left record is matched in)."""
    left_sets: dict[tuple[int, str | None], np.ndarray]
    """Per (key level, dimension label or None for all), every token hash of the left side:
    what the right side is matched against, linked or not (the analyst may know it)."""


def link(con: Any, plan: Plan, left_entity: str, right_entity: str, salt: int) -> Linked:
    """Run the cascade; hash tokens and people with the zone's member salt."""
    left, right = plan.datasets
    keys: list[str] = list(plan.details["match_keys"])
    by = plan.details.get("by")
    columns = ", ".join(_quote(TOKEN_PREFIX + k) for k in keys)
    dim = _quote(by) if by else "NULL"
    linked_sql = " UNION ALL ".join(
        f"SELECT rid, {level} AS level FROM l WHERE {_quote(TOKEN_PREFIX + key)} IN "
        f"(SELECT {_quote(TOKEN_PREFIX + key)} FROM {_quote(right)} "
        f"WHERE {_quote(TOKEN_PREFIX + key)} <> '')"
        for level, key in enumerate(keys)
    )
    token_case = " ".join(
        f"WHEN {level} THEN l.{_quote(TOKEN_PREFIX + key)}" for level, key in enumerate(keys)
    )
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE _cz_linked AS "
        f"WITH l AS (SELECT row_number() OVER () AS rid, {columns}, {dim} AS __dim, "
        f"CAST({_quote(left_entity)} AS VARCHAR) AS __entity FROM {_quote(left)}), "
        f"best AS (SELECT rid, min(level) AS level FROM ({linked_sql}) GROUP BY rid) "
        f"SELECT best.level AS level, CASE best.level {token_case} END AS token, "
        f"l.__entity AS entity, l.__dim AS dim, rid FROM best JOIN l USING (rid)"
    )
    left_rows = con.sql(
        f"SELECT level, token, hash(token, {salt}) AS t, "
        f"hash(coalesce(entity, token), {salt}) AS p, dim FROM _cz_linked ORDER BY rid"
    ).to_arrow_table()
    right_parts = []
    sets: dict[int, np.ndarray] = {}
    for level, key in enumerate(keys):
        column = _quote(TOKEN_PREFIX + key)
        right_parts.append(
            f"SELECT DISTINCT {level} AS level, hash(r.{column}, {salt}) AS t, "
            f"hash(coalesce(CAST(r.{_quote(right_entity)} AS VARCHAR), r.{column}), {salt}) AS p, "
            f"k.dim AS dim FROM {_quote(right)} AS r JOIN _cz_linked AS k "
            f"ON k.level = {level} AND r.{column} = k.token"
        )
        every = con.execute(
            f"SELECT DISTINCT hash({column}, {salt}) FROM {_quote(right)} "
            f"WHERE {column} IS NOT NULL AND {column} <> ''"
        ).fetchnumpy()
        sets[level] = np.asarray(next(iter(every.values())), dtype=np.uint64)
    right_rows = con.sql(" UNION ALL ".join(right_parts)).to_arrow_table()
    con.execute("DROP TABLE _cz_linked")
    left_sets: dict[tuple[int, str | None], np.ndarray] = {}
    for level, key in enumerate(keys):
        column = _quote(TOKEN_PREFIX + key)
        rows = con.sql(
            f"SELECT DISTINCT hash({column}, {salt}) AS t, {dim} AS d FROM {_quote(left)} "
            f"WHERE {column} IS NOT NULL AND {column} <> ''"
        ).to_arrow_table()
        hashes = np.asarray(rows.column("t").to_numpy(), dtype=np.uint64)
        labels = [_label(d) for d in rows.column("d").to_pylist()]
        left_sets[(level, None)] = np.unique(hashes)
        if by:
            for label in set(labels):
                mask = np.array([x == label for x in labels], dtype=np.bool_)
                left_sets[(level, label)] = np.unique(hashes[mask])
    return Linked(
        level=_ints(left_rows, "level"),
        left_token=[str(t) for t in left_rows.column("token").to_pylist()],
        left_token_hash=_hashes(left_rows, "t"),
        left_person=_hashes(left_rows, "p"),
        dim=left_rows.column("dim").to_pylist(),
        right_level=_ints(right_rows, "level"),
        right_token_hash=_hashes(right_rows, "t"),
        right_person=_hashes(right_rows, "p"),
        right_dim=right_rows.column("dim").to_pylist(),
        right_sets=sets,
        left_sets=left_sets,
    )


def _ints(table: pa.Table, name: str) -> np.ndarray:
    return np.asarray(table.column(name).to_numpy(), dtype=np.int64)


def _hashes(table: pa.Table, name: str) -> np.ndarray:
    return np.asarray(table.column(name).to_numpy(), dtype=np.uint64)


@dataclass(frozen=True)
class Cell:
    """One released count: its name and what it selects of the linked records."""

    name: str
    level: int | None = None
    """A match key level, or None for every level."""
    dim: Any = None
    """The dimension's label (``(missing)`` for NULL) for a by-dimension cell."""
    by_dimension: bool = False
    raw: Any = None
    """The dimension's value as stored (None for NULL)."""

    def left_mask(self, linked: Linked) -> np.ndarray:
        mask = np.ones(linked.level.size, dtype=np.bool_)
        if self.level is not None:
            mask &= linked.level == self.level
        if self.by_dimension:
            mask &= np.array([_label(d) == self.dim for d in linked.dim], dtype=np.bool_)
        return mask

    def right_mask(self, linked: Linked) -> np.ndarray:
        mask = np.ones(linked.right_level.size, dtype=np.bool_)
        if self.level is not None:
            mask &= linked.right_level == self.level
        if self.by_dimension:
            mask &= np.array([_label(d) == self.dim for d in linked.right_dim], dtype=np.bool_)
        return mask


def _label(value: Any) -> str:
    return "(missing)" if value is None else str(value)


def cells_of(linked: Linked, keys: Sequence[str], by: str | None) -> list[Cell]:
    out = [Cell("total")]
    out += [Cell(f"key:{key}", level=level) for level, key in enumerate(keys)]
    if by:
        values = {_label(d): d for d in linked.dim}
        out += [
            Cell(f"dim:{label}", dim=label, by_dimension=True, raw=values[label])
            for label in sorted(values)
        ]
    return out


def people(linked: Linked, cell: Cell) -> tuple[np.ndarray, np.ndarray]:
    """The distinct people of each side in ``cell``."""
    return (
        np.unique(linked.left_person[cell.left_mask(linked)]),
        np.unique(linked.right_person[cell.right_mask(linked)]),
    )


def audit_overlap(
    plan: Plan,
    ctx: RunContext,
    linked: Linked,
    candidates: Sequence[Cell],
    min_size: int,
    jitter: disclosure.Jitter,
    entities: Mapping[str, str],
) -> tuple[list[Cell], tuple[AuditUpdate, ...]]:
    """The cells that may go out, and each protected side's audited space with them.

    When the candidates together would leave an atom under the minimum (a total minus the
    shown breakdown, a difference with an earlier overlap), the smallest breakdown cells
    are withheld first, then the total: complementary suppression, indistinguishable from
    a cell under the threshold.
    """
    remaining = list(candidates)
    while remaining:
        updates = _attempt(plan, ctx, linked, remaining, min_size, jitter, entities)
        if updates is not None:
            return remaining, updates
        breakdown = [c for c in remaining if c.level is not None or c.by_dimension]
        pool = breakdown or remaining
        remaining.remove(min(pool, key=lambda c: int(people(linked, c)[0].size)))
    return [], ()


def _attempt(
    plan: Plan,
    ctx: RunContext,
    linked: Linked,
    released: Sequence[Cell],
    min_size: int,
    jitter: disclosure.Jitter,
    entities: Mapping[str, str],
) -> tuple[AuditUpdate, ...] | None:
    left, right = plan.datasets
    keys: list[str] = list(plan.details["match_keys"])
    by = plan.details.get("by")
    updates: list[AuditUpdate] = []
    for side in (left, right):
        dataset = ctx.dataset(side)
        if dataset.owner == ctx.requester.name:
            continue
        columns = {c.name: c for c in dataset.columns}
        batches = _batches(linked, released, keys, by, left_side=side == left)
        space = disclosure.space_name(side, entities[side], "all", ctx.requester.name)
        stored = ctx.audit_state(space)
        current = disclosure.Space.from_bytes(stored[1]) if stored else disclosure.Space()
        for cells in batches:
            try:
                result = disclosure.audit(
                    current, cells, columns, ctx.connection(), min_size=min_size, jitter=jitter
                )
            except disclosure.GridTooLarge:
                raise PolicyRefusal(_too_fine(side, dataset.owner)) from None
            if not result.finding.safe:
                return None
            current = result.space
        updates.append(AuditUpdate(space, stored[0] if stored else None, current.to_bytes()))
    return tuple(updates)


def _batches(
    linked: Linked,
    released: Sequence[Cell],
    keys: Sequence[str],
    by: str | None,
    *,
    left_side: bool,
) -> list[disclosure.ReleasedCells]:
    """The released cells as one side's conditions (OR over keys, then per key)."""
    columns = [TOKEN_PREFIX + k for k in keys]
    anywhere = [c for c in released if c.level is None]
    per_key = [c for c in released if c.level is not None]
    out: list[disclosure.ReleasedCells] = []

    def members(cell: Cell) -> np.ndarray:
        return people(linked, cell)[0 if left_side else 1]

    def right_tokens(level: int, cell: Cell) -> np.ndarray:
        label = cell.dim if cell.by_dimension else None
        return linked.left_sets.get((level, label), np.zeros(0, dtype=np.uint64))

    if anywhere:
        own = [c for c in anywhere if c.by_dimension]
        plain = [c for c in anywhere if not c.by_dimension]
        for group in (plain, own):
            if not group:
                continue
            if left_side:
                sets = {col: [linked.right_sets[j]] * len(group) for j, col in enumerate(columns)}
            else:
                sets = {col: [right_tokens(j, c) for c in group] for j, col in enumerate(columns)}
            with_dim = bool(group[0].by_dimension) and left_side and by is not None
            out.append(
                disclosure.ReleasedCells(
                    members=[members(c) for c in group],
                    group_columns=(by,) if with_dim and by else (),
                    own_values=[(c.raw,) for c in group] if with_dim else [],
                    token_sets=sets,
                    any_token=True,
                )
            )
    for cell in per_key:
        assert cell.level is not None
        level = cell.level
        if left_side:
            sets = {columns[level]: [linked.right_sets[level]]}
            excluded = {columns[j]: [linked.right_sets[j]] for j in range(level)}
        else:
            sets = {columns[level]: [right_tokens(level, cell)]}
            excluded = {}
        out.append(
            disclosure.ReleasedCells(
                members=[members(cell)], token_sets=sets, token_excluded=excluded
            )
        )
    return out


def _too_fine(dataset: str, owner: str) -> Reason:
    return Reason(
        "AUDIT_LIMIT",
        "overlap.audit",
        f"the answers already released on {dataset!r} tell apart too many regions to audit "
        "another exact count; ask its owner",
        owner,
    )
