"""Running DP queries: limits, the bounded query, OpenDP noise, intervals, the cache.

A repeated query (same canonical meaning, same requester, same budget) returns the
earlier noisy answer at no cost, re-labelled for the new names and order.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np
import pyarrow as pa
from sqlglot import exp

from collabzone.budget import PrivacyCost
from collabzone.errors import CollabzoneError, InvalidInputError
from collabzone.techniques.base import FailedAfterSpending, Outcome, RunContext
from collabzone.techniques.sql import _postprocess
from collabzone.techniques.sql._bounds import AUTO_SHARE, derive_limit
from collabzone.techniques.sql._canonical import canonical_key
from collabzone.techniques.sql._compiled import Compiled
from collabzone.techniques.sql._dp import Budget, Measure, NoisyTable, release
from collabzone.techniques.sql._engines import Engine
from collabzone.techniques.sql._order_stats import release_order_statistics
from collabzone.techniques.sql._payload import jsonable
from collabzone.techniques.sql._quantities import order_statistics
from collabzone.techniques.sql._run import history
from collabzone.techniques.sql._shape import AGG_FUNCS
from collabzone.techniques.sql.rules.profile_contributions import profile_contributions

EXACT_LIMIT = 2**62
"""Exact group totals are clamped into +-EXACT_LIMIT before OpenDP reads them as i64."""


def _dp_cache_key(compiled: Compiled) -> str:
    budget = compiled.budget
    assert budget is not None
    return canonical_key(
        compiled.query.tree,
        compiled.query.tables,
        extra=[
            sorted(compiled.quantity_index),
            _ordering(compiled),
            compiled.shape.limit,
            _having(compiled),
            budget.epsilon,
            budget.rho,
            budget.delta,
            compiled.spec.get("alpha", 0.05),
            compiled.effective.to_json(),
        ],
    )


def _ordering(compiled: Compiled) -> list[tuple[str, bool]]:
    """ORDER BY by what each output is (two queries may give one name different meanings)."""
    ids = dict(zip((item.name for item in compiled.shape.items), _item_ids(compiled), strict=True))
    return [(ids[name], desc) for name, desc in compiled.shape.order_by]


def _having(compiled: Compiled) -> str | None:
    """The HAVING condition (it filters the cached rows), tables named by dataset."""
    having = compiled.query.tree.args.get("having")
    if having is None:
        return None
    outputs = {item.name.lower(): item.node for item in compiled.shape.items}
    node = having.this.copy()
    for column in list(node.find_all(exp.Column)):
        if column.table not in compiled.query.tables and column.name.lower() in outputs:
            column.replace(exp.Paren(this=outputs[column.name.lower()].copy()))  # n's meaning
    for column in node.find_all(exp.Column):
        if column.table in compiled.query.tables:
            column.set("table", exp.to_identifier(compiled.query.tables[column.table]))
    return str(node.sql())


def _item_ids(compiled: Compiled) -> list[str]:
    """What each output is, independent of its name and position."""
    ids = []
    for item in compiled.shape.items:
        if item.dimension is not None:
            ids.append(f"dim:{item.dimension.dataset}.{item.dimension.column.name}")
        elif len(item.aggregates) == 1 and item.node.find(*AGG_FUNCS) is item.node:
            agg = item.aggregates[0]
            quantile = f"@{agg.q}" if agg.q is not None else ""
            ids.append(
                f"{agg.func}{quantile}:{agg.ref.dataset}.{agg.ref.column.name}"
                if agg.ref
                else "COUNT:*"
            )
        else:  # an expression of aggregates or a constant: its text, tables by dataset
            node = item.node.copy()
            for column in node.find_all(exp.Column):
                column.set("table", exp.to_identifier(compiled.query.tables[column.table]))
            ids.append(f"expr:{node.sql()}")
    return ids


def _from_cache(cached: Mapping[str, Any], ids: list[str], names: list[str]) -> Outcome:
    """The earlier noisy answer, re-labelled for this query's names and order (no cost)."""
    old = cached["payload"]
    where = [list(cached["item_ids"]).index(i) for i in ids]
    renamed = {old["columns"][w]: names[n] for n, w in enumerate(where)}
    payload = dict(old)
    payload["columns"] = names
    payload["rows"] = [[row[w] for w in where] for row in old["rows"]]
    for key in ("confidence_intervals", "noise_scale"):
        payload[key] = {renamed[k]: v for k, v in (old.get(key) or {}).items() if k in renamed}
    payload["spent"] = {"epsilon": 0.0, "delta": 0.0, "rho": 0.0}
    payload["notes"] = [
        *old.get("notes", []),
        "repeated query: the earlier noisy answer is returned at no extra cost",
    ]
    payload["_monitor"] = {"kind": "dp", "dp_cache": dict(cached)}
    return Outcome(
        payload=payload,
        mechanism=payload.get("mechanism"),
        noise_scale=payload.get("max_noise_scale"),
        spent={},
    )


class _Derivation:
    """The privacy loss the private derivation of limits has spent so far: charged even
    when a later step fails, since the failure may depend on the derived value."""

    def __init__(self, zcdp: bool) -> None:
        self.zcdp = zcdp
        self.amount = 0.0

    def cost(self) -> PrivacyCost:
        return PrivacyCost(rho=self.amount) if self.zcdp else PrivacyCost(epsilon=self.amount)


def _limits(
    compiled: Compiled, engine: Engine, budget: Budget, derivation: _Derivation
) -> tuple[Budget, int, int, list[str]]:
    """Contribution limits: the agreement's, or derived privately with a share of the budget."""
    eff = compiled.effective
    grouped = bool(compiled.shape.group_by)
    rows, groups = eff.max_rows_per_entity, eff.max_groups_per_entity if grouped else 1
    if compiled.entity_unique:  # one row per person (checked at ingest): both limits are 1
        rows, groups = 1, 1
    missing = [name for name, value in (("rows", rows), ("groups", groups)) if value is None]
    if not missing:
        return budget, int(rows or 1), int(groups or 1), []
    total = budget.rho if budget.zcdp else budget.epsilon
    assert total is not None
    share = total * AUTO_SHARE / len(missing)
    tree = profile_contributions(compiled.query.tree, ctx=compiled.rewrite_context())
    # the engine returns the histogram of contributions, never one row per person
    histogram = engine.run(_histogram(tree), timeout_s=eff.timeout_s, max_rows=None)
    counts = np.asarray(histogram.column("_cz_n").to_pylist(), dtype=np.int64)

    def expanded(name: str) -> list[int]:
        values = np.asarray(histogram.column(name).to_pylist(), dtype=np.int64)
        return [int(v) for v in np.repeat(values, counts)]

    notes = []
    if rows is None:
        derivation.amount += share
        rows, cost = derive_limit(expanded("_cz_rows"), share=share, zcdp=budget.zcdp)
        notes.append(f"max rows per entity per group derived privately: {rows} (cost {cost:.3g})")
    if groups is None:
        derivation.amount += share
        groups, cost = derive_limit(expanded("_cz_groups"), share=share, zcdp=budget.zcdp)
        notes.append(f"max groups per entity derived privately: {groups} (cost {cost:.3g})")
    if compiled.public_keys is not None and grouped:  # no one is in more groups than exist
        groups = min(int(groups), max(1, len(compiled.public_keys)))
    rest = total * (1 - AUTO_SHARE)
    main = replace(budget, rho=rest) if budget.zcdp else replace(budget, epsilon=rest)
    return main, int(rows), int(groups), notes


def _histogram(profile: exp.Select) -> exp.Select:
    """How many people have each (rows, groups) contribution profile."""
    names = [exp.column(exp.to_identifier(n, quoted=True)) for n in ("_cz_rows", "_cz_groups")]
    return (
        exp.select(*[n.copy() for n in names], exp.alias_(exp.Count(this=exp.Star()), "_cz_n"))
        .from_(profile.subquery("_cz_h"))
        .group_by(*names)
    )


def _share(budget: Budget, fraction: float) -> Budget:
    """A fraction of a query's budget (its delta kept whole: only the table selects groups)."""
    if budget.zcdp:
        return replace(budget, rho=(budget.rho or 0.0) * fraction) if fraction else budget
    return replace(budget, epsilon=(budget.epsilon or 0.0) * fraction) if fraction else budget


def _saturate(value: Any) -> int:
    """An exact bounded total as an i64 for OpenDP: clamping a group's total into a fixed
    range moves it by no more than one person could, so the sensitivity is unchanged."""
    return max(-EXACT_LIMIT, min(EXACT_LIMIT, int(value or 0)))


def _saturated(column: pa.ChunkedArray) -> Any:
    """A column of exact totals, each ``_saturate``d, as one int64 numpy vector (an
    integer column at once; anything else, e.g. HUGEINT, value by value)."""
    if pa.types.is_integer(column.type) and column.type.bit_width <= 64:
        filled = (column.fill_null(0) if column.null_count else column).to_numpy()
        filled = filled.astype(np.int64, copy=False)
        out = np.clip(filled, -EXACT_LIMIT, EXACT_LIMIT)
    else:
        out = np.asarray([_saturate(v) for v in column.to_pylist()], dtype=np.int64)
    return out if out.size else np.zeros(1, dtype=np.int64)


def _json_column(column: pa.ChunkedArray) -> list[Any]:
    """A group column's values, JSON-safe (text and integers as they are, no per-cell
    conversion; dates, decimals and floats through ``jsonable``)."""
    values: list[Any] = column.to_pylist()
    kind = column.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_integer(kind):
        return values
    return [jsonable(v) for v in values]


def run_dp(compiled: Compiled, ctx: RunContext, engine: Engine) -> Outcome:
    """The cached answer, or a fresh noisy one; a failure after the private derivation of
    limits raises FailedAfterSpending so the zone charges what the derivation spent."""
    budget = compiled.budget
    assert budget is not None
    key = _dp_cache_key(compiled)
    names = [item.name for item in compiled.shape.items]
    ids = _item_ids(compiled)
    for entry in history(compiled, ctx):
        cached = entry.get("dp_cache") if entry.get("requester") == ctx.requester.name else None
        if cached and cached.get("key") == key and set(ids) <= set(cached.get("item_ids", [])):
            return _from_cache(cached, ids, names)
    if order_statistics(compiled) and engine.name != "duckdb":
        raise InvalidInputError(
            "MIN / MAX / MEDIAN / QUANTILE_CONT in dp mode read each person's values into the "
            f"zone; on a table left in {engine.name} they are not offered: ask COUNT, SUM, "
            "AVG, VAR or STDDEV"
        )
    derivation = _Derivation(budget.zcdp)
    try:
        return _answer(compiled, ctx, engine, budget, derivation, key, ids, names)
    except Exception as exc:
        if derivation.amount == 0:
            raise
        why = (
            exc.message
            if isinstance(exc, CollabzoneError)
            else f"the DP query failed ({type(exc).__name__})"
        )
        raise FailedAfterSpending(
            f"{why}; the privacy loss of deriving its contribution limits is charged",
            {d: derivation.cost() for d in compiled.datasets},
        ) from exc


def _answer(
    compiled: Compiled,
    ctx: RunContext,
    engine: Engine,
    budget: Budget,
    derivation: _Derivation,
    key: str,
    ids: list[str],
    names: list[str],
) -> Outcome:
    eff = compiled.effective
    main_budget, max_rows, max_groups, notes = _limits(compiled, engine, budget, derivation)
    keys: list[tuple[Any, ...]] = [()]
    data: dict[str, list[int]] = {}
    if compiled.quantities:  # (a query of order statistics alone has no noisy table)
        tree = compiled.rewritten(
            salt=secrets.randbelow(2**31),
            max_rows=max_rows,
            max_groups=max_groups,
            engine=engine.name,
        )
        table = engine.run(tree, timeout_s=eff.timeout_s, max_rows=None)
        dims = [f"_cz_d{i}" for i in range(len(compiled.shape.group_by))]
        dim_values = [_json_column(table.column(d)) for d in dims]
        keys = list(zip(*dim_values, strict=True)) if dims else [()] * table.num_rows
        if not dims and not keys:
            keys = [()]
        data = {q.name: _saturated(table.column(q.name)) for q in compiled.quantities}
    measures = []
    for q in compiled.quantities:
        linf = (
            max_rows * max(abs(q.bound.low), abs(q.bound.high))
            if q.bound is not None
            else (1 if q.kind == "entities" else max_rows)  # distinct: max_rows values
        )
        measures.append(Measure(q.name, max(1, linf)))
    alpha = float(compiled.spec.get("alpha", 0.05))
    public = compiled.public_keys if compiled.shape.group_by else [()]
    stats = order_statistics(compiled)
    parts = len(measures) + len(stats)  # each noisy quantity and order statistic: one share
    table_budget = _share(main_budget, len(measures) / parts)
    if measures:
        noisy = release(
            keys,
            data,
            measures,
            budget=table_budget,
            max_groups=max_groups,
            alpha=alpha,
            public_keys=public,
            selector=compiled.quantity_index.get("rows"),
        )
    else:  # only order statistics: one row (or one per public group), nothing to noise
        noisy = NoisyTable(
            list(dict.fromkeys(public or [()])), {}, {}, {}, replace(budget, delta=0.0).cost()
        )
    if stats:
        total = (main_budget.rho if main_budget.zcdp else main_budget.epsilon) or 0.0
        grouped = bool(compiled.shape.group_by)
        noisy.order_stats, _ = release_order_statistics(
            compiled,
            ctx.connection(),
            share=total / parts,
            zcdp=main_budget.zcdp,
            max_rows=max_rows,
            salt=secrets.randbelow(2**31),
            keys=noisy.keys if grouped else None,
            max_groups=max_groups,
        )
        notes.append(
            "MIN / MAX / MEDIAN / QUANTILE_CONT are private quantiles over a public grid of "
            "the declared bounds: the value is a grid point, its interval the bounds"
        )
        if grouped:
            notes.append(
                f"order statistics per group: each person is kept in at most {max_groups} "
                f"group(s) with at most {max_rows} row(s) in each; every public group's "
                f"quantile spends 1/{max_groups} of the order statistic's share, so by "
                "parallel composition over groups the whole set costs that share once"
            )
    # the whole budget is charged: the answer's share and the share that derived the limits
    charged = budget.cost() if noisy.threshold is not None else replace(budget, delta=0.0).cost()
    scale_of = {q.name: (q.bound.scale if q.bound is not None else 1) for q in compiled.quantities}
    released = _postprocess.answer(compiled, noisy, scale_of, alpha)
    rows, intervals = released.rows, released.intervals
    item_scale = released.noise
    notes = [*notes, *released.notes]
    noisy_columns = dwarfed(rows, intervals, names)
    if noisy_columns:
        notes = [
            *notes,
            f"the noise is larger than most values of {', '.join(noisy_columns)}: ask with a "
            "larger epsilon, coarser groups or over more people for a useful answer",
        ]
    mechanism_scale = max((noisy.scales[q] / scale_of[q] for q in noisy.scales), default=None)
    if compiled.public_keys is not None:  # declared group values: made JSON-safe here
        rows = [[jsonable(v) for v in row] for row in rows]
    payload: dict[str, Any] = {"columns": list(names), "rows": rows}  # (else JSON-safe: Answer)
    payload.update(
        {
            "analysis": "dp",
            "mechanism": ("discrete_gaussian (zCDP)" if budget.zcdp else "discrete_laplace")
            + (" + private_quantile" if stats else ""),
            "confidence_level": 1 - alpha,
            "confidence_intervals": intervals,
            "noise_scale": item_scale,
            "max_noise_scale": mechanism_scale,
            "partition_selection": "public domain"
            if compiled.public_keys is not None
            else f"private (threshold {noisy.threshold})",
            "contribution_bounds": {
                "max_rows_per_entity": max_rows,
                "max_groups_per_entity": max_groups,
            },
            "spent": charged.as_dict(),
            "notes": notes,
        }
    )
    public_payload = {k: v for k, v in payload.items() if not k.startswith("_")}
    cache = {"key": key, "item_ids": ids, "payload": public_payload}
    payload["_monitor"] = {"kind": "dp", "dp_cache": cache}
    spent = {d: charged for d in compiled.datasets}
    return Outcome(
        payload=payload,
        mechanism=payload["mechanism"],
        noise_scale=payload["max_noise_scale"],
        spent=spent,
    )


def dwarfed(rows: list[list[Any]], intervals: Mapping[str, list[list[float | None]]],
            names: list[str]) -> list[str]:  # fmt: skip
    """Columns where the noise is larger than most values (the interval's half-width
    exceeds the value itself in more than half of the rows): worth saying in the notes."""
    out = []
    for name, column in intervals.items():
        idx = names.index(name)
        wide = 0
        for row, (low, high) in zip(rows, column, strict=True):
            value = row[idx]
            if value is None or low is None or high is None:
                continue
            wide += (high - low) / 2 > abs(value)
        if column and wide * 2 > len(column):
            out.append(name)
    return out
