"""The noisy quantities of a DP query and which aggregate is read from which.

A DP answer does not noise its aggregates directly: it noises a few per-group quantities
(row count, non-null counts, distinct counts, clamped sums, sums of squares) and computes
COUNT / SUM / AVG / VAR / STDDEV from them (``_postprocess``). ``quantities`` lists what
a compiled query needs (each with its column in the rewrite and its clamping bound);
``quantity_key`` and the order-statistic helpers name, for one aggregate, the released
values it is read from.
"""

from __future__ import annotations

from sqlglot import exp

from collabzone.model import ColumnType
from collabzone.techniques.sql import _rules
from collabzone.techniques.sql._bounds import FLOAT_SUM_SCALE, bad_bounds, scaled_bound
from collabzone.techniques.sql._compiled import Compiled
from collabzone.techniques.sql._frontend import ColumnRef
from collabzone.techniques.sql._moments import MOMENTS, clamped_square, square_bounds
from collabzone.techniques.sql._shape import QUANTILE_FUNCS, Aggregate
from collabzone.techniques.sql.rules._context import Quantity, SumBound


def quantities(compiled: Compiled) -> dict[str, Quantity]:
    """The quantities a DP query noises, by key (``rows``, ``sum:alias.col``...); bounds that
    cannot be scaled become reasons on ``compiled``."""
    names: dict[str, Quantity] = {}

    def add(
        key: str, kind: str, ref: ColumnRef | None = None, bound: SumBound | None = None
    ) -> None:
        if key not in names:
            column: exp.Expression | None = None
            if ref is not None:
                column = exp.column(
                    exp.to_identifier(ref.column.name, quoted=True),
                    table=exp.to_identifier(ref.alias, quoted=True),
                )
                if ref.column.type == ColumnType.BOOLEAN:
                    column = exp.Cast(this=column, to=exp.DataType.build("INTEGER"))
            names[key] = Quantity(f"_cz_q{len(names)}", kind, column, bound)

    if compiled.public_keys is None:
        add("rows", "rows")
    for agg in compiled.shape.aggregates:
        if agg.ref is None:
            add("rows", "rows")
        elif agg.func == "COUNT":
            add(f"nonnull:{agg.ref.alias}.{agg.ref.column.name}", "nonnull", agg.ref)
        elif agg.func == "COUNT_DISTINCT" and not is_entity(compiled, agg.ref):
            add(f"distinct:{agg.ref.alias}.{agg.ref.column.name}", "distinct", agg.ref)
        elif agg.func == "COUNT_DISTINCT":
            add("entities", "entities")
        elif agg.func in ("SUM", "AVG", *MOMENTS):
            low_high = _rules.bounds_of(agg.ref, compiled.effective.of(agg.ref.dataset))
            if low_high is None:
                continue
            integral = agg.ref.column.type in (ColumnType.INTEGER, ColumnType.BOOLEAN)
            scale = 1 if integral else FLOAT_SUM_SCALE
            bound = scaled_bound(low_high, scale)
            if bound is None:
                compiled.reasons.append(
                    bad_bounds(agg.ref.column.name, compiled.owners[agg.ref.dataset])
                )
                continue
            col = f"{agg.ref.alias}.{agg.ref.column.name}"
            add(f"sum:{col}", "sum", agg.ref, bound)
            if agg.func != "SUM":
                add(f"nonnull:{col}", "nonnull", agg.ref)
            if agg.func in MOMENTS:
                squares = scaled_bound(square_bounds(low_high), scale)
                if squares is None:
                    compiled.reasons.append(
                        bad_bounds(agg.ref.column.name, compiled.owners[agg.ref.dataset])
                    )
                    continue
                if f"sumsq:{col}" not in names:
                    names[f"sumsq:{col}"] = Quantity(
                        f"_cz_q{len(names)}", "sum", clamped_square(agg.ref, low_high), squares
                    )
    return names


def quantity_key(
    compiled: Compiled, func: str, ref: ColumnRef | None, q: float | None = None
) -> list[str]:
    """Which quantities (by rewrite name) an aggregate is computed from."""
    by_key = compiled.quantity_index
    if ref is None:
        return [by_key["rows"]]
    col = f"{ref.alias}.{ref.column.name}"
    if func == "COUNT":
        return [by_key[f"nonnull:{col}"]]
    if func == "COUNT_DISTINCT":
        return [by_key["entities" if is_entity(compiled, ref) else f"distinct:{col}"]]
    if func == "SUM":
        return [by_key[f"sum:{col}"]]
    if func in QUANTILE_FUNCS:
        return [order_statistic_key(func, ref, q)]
    if func in MOMENTS:
        return [by_key[f"sum:{col}"], by_key[f"sumsq:{col}"], by_key[f"nonnull:{col}"]]
    return [by_key[f"sum:{col}"], by_key[f"nonnull:{col}"]]


def order_statistic_key(func: str, ref: ColumnRef, q: float | None) -> str:
    """The name of one released order statistic (MIN, MAX, MEDIAN, QUANTILE_CONT)."""
    return f"_cz_os:{ref.alias}.{ref.column.name}@{q}"


def order_statistics(compiled: Compiled) -> list[Aggregate]:
    """The distinct order statistics a DP query releases (each one private quantile)."""
    seen: dict[str, Aggregate] = {}
    for agg in compiled.shape.aggregates:
        if agg.func in QUANTILE_FUNCS and agg.ref is not None:
            seen.setdefault(order_statistic_key(agg.func, agg.ref, agg.q), agg)
    return list(seen.values())


def is_entity(compiled: Compiled, ref: ColumnRef) -> bool:
    """Whether COUNT(DISTINCT ref) counts people (the entity key) rather than values."""
    return compiled.entity is not None and ref.key == compiled.entity.key
