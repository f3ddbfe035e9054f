"""Order statistics in dp mode: MIN, MAX, MEDIAN and QUANTILE_CONT by a private quantile.

Each is OpenDP's ``make_private_quantile`` (exponential mechanism / report-noisy-max over
the quantile score of a public grid of candidates spanning the column's declared bounds),
as Tumult and OpenDP's own SQL-less APIs release them: MIN is the 0-quantile, MAX the
1-quantile, MEDIAN the 0.5-quantile. The released value is always a grid point, so an
outlier's exact value never leaves (MAX of a column with one extreme value is some
candidate near the top of the data, not that value).

Contribution bounding is the same as for sums: at most ``max_rows_per_entity`` rows per
entity (a salted ``ROW_NUMBER() <= k`` inside the engine's plan), so one entity moves the
input vector by at most ``max_rows`` records (symmetric distance), the ``d_in`` of the
privacy map.

Per group (GROUP BY over public groups only: declared domains or public bins, so which
groups exist is never read from the data), each entity is also kept in at most
``max_groups_per_entity`` groups (a salted ``DENSE_RANK`` of its groups in the same plan),
with at most ``max_rows`` rows in each. Every group's quantile is then one mechanism
calibrated at ``share / max_groups`` for ``d_in = max_rows``: a person changes at most
``max_groups`` groups by at most ``max_rows`` records each, so by parallel composition the
whole set of groups costs at most ``share`` (the receipt says so). Empty groups are
released too (a draw over the grid), so a group's presence tells nothing.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from sqlglot import exp

from collabzone._opendp import dp
from collabzone.errors import InvalidInputError
from collabzone.model import ColumnType
from collabzone.techniques.sql import _rules
from collabzone.techniques.sql._compiled import Compiled
from collabzone.techniques.sql._dp import SAFETY, calibrate
from collabzone.techniques.sql._execute import execute
from collabzone.techniques.sql._quantities import order_statistic_key, order_statistics
from collabzone.techniques.sql._shape import Aggregate
from collabzone.techniques.sql.rules.bound_joined_tables import bound_joined_tables

GRID = 1001
"""Candidates of a float column's grid (an integer column with a smaller range uses every
integer in it): the released value is within (high - low) / 1000 of a grid point."""


def candidates(low: float, high: float, integral: bool) -> list[float]:
    """The public grid over the declared bounds (never the data)."""
    if integral and high - low + 1 <= GRID:
        return [float(v) for v in range(math.ceil(low), math.floor(high) + 1)]
    return [float(v) for v in np.linspace(low, high, GRID)]


def _measurement(grid: list[float], q: float, zcdp: bool, scale: float) -> Any:
    measure = dp.zero_concentrated_divergence() if zcdp else dp.max_divergence()
    return dp.m.make_private_quantile(
        dp.vector_domain(dp.atom_domain(T=float, nan=False)),
        dp.symmetric_distance(),
        measure,
        candidates=grid,
        alpha=q,
        scale=scale,
    )


def private_quantile(
    values: list[float], grid: list[float], q: float, *, share: float, zcdp: bool, max_rows: int
) -> tuple[float, float]:
    """The q-quantile of ``values`` released within ``share`` (epsilon or rho) when one
    entity moves at most ``max_rows`` of them; returns (value, loss from OpenDP's map)."""
    meas, loss = quantile_measurement(grid, q, share=share, zcdp=zcdp, max_rows=max_rows)
    return float(meas(values)), loss


def _values_sql(
    compiled: Compiled, agg: Aggregate, max_rows: int, salt: int, max_groups: int = 1
) -> str:
    """The bounded rows of the column: at most ``max_rows`` per entity (per group, and at
    most ``max_groups`` groups per entity when grouped), clamped to bounds."""
    assert agg.ref is not None
    ctx = compiled.rewrite_context(salt=salt, max_rows=max_rows)
    tree = bound_joined_tables(compiled.query.tree, ctx=ctx).copy()
    column: exp.Expression = exp.column(
        exp.to_identifier(agg.ref.column.name, quoted=True),
        table=exp.to_identifier(agg.ref.alias, quoted=True),
    )
    if agg.ref.column.type == ColumnType.BOOLEAN:
        column = exp.Cast(this=column, to=exp.DataType.build("INTEGER"))
    group = tree.args.get("group")
    dims = [d.copy() for d in group.expressions] if group is not None else []
    items = [exp.alias_(d.copy(), f"_cz_d{i}", quoted=True) for i, d in enumerate(dims)]
    items.append(exp.alias_(exp.Cast(this=column, to="DOUBLE"), "_cz_v"))
    select = exp.Select(expressions=items)
    for part in ("from_", "joins", "where"):
        select.set(part, tree.args.get(part))
    nonnull = exp.Not(this=exp.Is(this=column.copy(), expression=exp.Null()))
    where = select.args.get("where")
    select.set(
        "where", exp.Where(this=exp.and_(where.this, nonnull) if where is not None else nonnull)
    )
    if not compiled.entity_unique:
        key = exp.Anonymous(this="hash", expressions=[column.copy(), exp.Literal.number(salt)])
        rank = exp.Window(
            this=exp.RowNumber(),
            partition_by=[ctx.entity.copy(), *[d.copy() for d in dims]],
            order=exp.Order(expressions=[exp.Ordered(this=key)]),
        )
        keep: exp.Expression | exp.Condition = exp.LTE(
            this=rank, expression=exp.Literal.number(max_rows)
        )
        if dims:  # at most max_groups groups per entity, chosen by a salted hash of the group
            group_key = exp.Anonymous(
                this="hash", expressions=[*[d.copy() for d in dims], exp.Literal.number(salt)]
            )
            order = [exp.Ordered(this=group_key), *[exp.Ordered(this=d.copy()) for d in dims]]
            groups = exp.Window(
                this=exp.Anonymous(this="dense_rank"),
                partition_by=[ctx.entity.copy()],
                order=exp.Order(expressions=order),
            )
            keep = exp.and_(keep, exp.LTE(this=groups, expression=exp.Literal.number(max_groups)))
        select.set("qualify", exp.Qualify(this=keep))
    return str(select.sql(dialect="duckdb"))


def release_order_statistics(
    compiled: Compiled,
    connection: Any,
    *,
    share: float,
    zcdp: bool,
    max_rows: int,
    salt: int,
    keys: list[tuple[Any, ...]] | None = None,
    max_groups: int = 1,
) -> tuple[dict[str, tuple[list[float], tuple[float, float]]], float]:
    """Every order statistic of the query, each within ``share``; returns them by name
    (one value per key of ``keys``, the public groups, or one value ungrouped, and the
    declared bounds, its interval) and the total loss spent."""
    from collabzone.techniques.sql._payload import jsonable

    out: dict[str, tuple[list[float], tuple[float, float]]] = {}
    spent = 0.0
    grouped = keys is not None and bool(compiled.shape.group_by)
    groups = max(1, max_groups) if grouped else 1
    for agg in order_statistics(compiled):
        assert agg.ref is not None and agg.q is not None
        bounds = _rules.bounds_of(agg.ref, compiled.effective.of(agg.ref.dataset))
        if bounds is None or not bounds[0] <= bounds[1]:
            raise InvalidInputError(f"{agg.func} of {agg.ref.column.name!r} needs bounds")
        low, high = bounds
        integral = agg.ref.column.type in (ColumnType.INTEGER, ColumnType.BOOLEAN)
        grid = candidates(low, high, integral)
        table = execute(
            connection,
            _values_sql(compiled, agg, max_rows, salt, groups),
            timeout_s=compiled.effective.timeout_s,
            max_rows=None,
        )
        raw = np.asarray(table.column("_cz_v").to_numpy(zero_copy_only=False), dtype=np.float64)
        known = ~np.isnan(raw)
        values = np.clip(raw[known], low, high)
        meas, loss = quantile_measurement(
            grid, agg.q, share=share / groups, zcdp=zcdp, max_rows=max_rows
        )
        if not grouped:
            released = [float(meas(values.tolist()))]
        else:
            assert keys is not None
            dims = [table.column(f"_cz_d{i}").to_pylist() for i in range(len(keys[0]))]
            labels = [tuple(jsonable(v) for v in key) for key in zip(*dims, strict=True)]
            labels = [label for label, ok in zip(labels, known.tolist(), strict=True) if ok]
            by_group: dict[tuple[Any, ...], list[float]] = {}
            for label, value in zip(labels, values.tolist(), strict=True):
                by_group.setdefault(label, []).append(value)
            # every public group is released, empty ones too; groups outside them never are
            released = [float(meas(by_group.get(tuple(key), []))) for key in keys]
        spent += loss * groups
        out[order_statistic_key(agg.func, agg.ref, agg.q)] = (released, (low, high))
    return out, spent


def quantile_measurement(
    grid: list[float], q: float, *, share: float, zcdp: bool, max_rows: int
) -> tuple[Any, float]:
    """OpenDP's private quantile calibrated to spend at most ``share`` when one entity
    moves ``max_rows`` records; returns it and its loss (from its privacy map)."""
    target = share * SAFETY
    unit = float(_measurement(grid, q, zcdp, 1.0).map(max_rows))
    first = unit / target if not zcdp else math.sqrt(unit / target)
    meas, _ = calibrate(
        lambda s: _measurement(grid, q, zcdp, s), max_rows, target, first * (1 - 1e-9)
    )
    return meas, float(meas.map(max_rows))
