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
privacy map. Order statistics are released over the whole table (no GROUP BY): the rule
check refuses them in grouped queries.
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
    target = share * SAFETY
    unit = float(_measurement(grid, q, zcdp, 1.0).map(max_rows))
    first = unit / target if not zcdp else math.sqrt(unit / target)
    meas, _ = calibrate(
        lambda s: _measurement(grid, q, zcdp, s), max_rows, target, first * (1 - 1e-9)
    )
    return float(meas(values)), float(meas.map(max_rows))


def _values_sql(compiled: Compiled, agg: Aggregate, max_rows: int, salt: int) -> str:
    """The bounded rows of the column: at most ``max_rows`` per entity, clamped to bounds."""
    assert agg.ref is not None
    ctx = compiled.rewrite_context(salt=salt, max_rows=max_rows)
    tree = bound_joined_tables(compiled.query.tree, ctx=ctx).copy()
    column: exp.Expression = exp.column(
        exp.to_identifier(agg.ref.column.name, quoted=True),
        table=exp.to_identifier(agg.ref.alias, quoted=True),
    )
    if agg.ref.column.type == ColumnType.BOOLEAN:
        column = exp.Cast(this=column, to=exp.DataType.build("INTEGER"))
    select = exp.Select(expressions=[exp.alias_(exp.Cast(this=column, to="DOUBLE"), "_cz_v")])
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
            partition_by=[ctx.entity.copy()],
            order=exp.Order(expressions=[exp.Ordered(this=key)]),
        )
        select.set(
            "qualify", exp.Qualify(this=exp.LTE(this=rank, expression=exp.Literal.number(max_rows)))
        )
    return str(select.sql(dialect="duckdb"))


def release_order_statistics(
    compiled: Compiled, connection: Any, *, share: float, zcdp: bool, max_rows: int, salt: int
) -> tuple[dict[str, tuple[float, tuple[float, float]]], float]:
    """Every order statistic of the query, each within ``share``; returns them by name
    (value and the declared bounds, its interval) and the total loss spent."""
    out: dict[str, tuple[float, tuple[float, float]]] = {}
    spent = 0.0
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
            _values_sql(compiled, agg, max_rows, salt),
            timeout_s=compiled.effective.timeout_s,
            max_rows=None,
        )
        raw = np.asarray(table.column("_cz_v").to_numpy(zero_copy_only=False), dtype=np.float64)
        values = np.clip(raw[~np.isnan(raw)], low, high).tolist()
        value, loss = private_quantile(
            values, grid, agg.q, share=share, zcdp=zcdp, max_rows=max_rows
        )
        spent += loss
        out[order_statistic_key(agg.func, agg.ref, agg.q)] = (value, (low, high))
    return out, spent
