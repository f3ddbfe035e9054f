"""The ``sql`` technique: governed SQL behind the plan / check / run / release interface.

``plan`` compiles the request (no data) and prices it; ``check`` repeats the rule checks
with the zone's merged agreement rules; ``run`` executes the rewritten tree on the zone's
DuckDB connection (timeout, row cap, data-independent errors), applies the query monitor
and, for ``dp``, the DP core; ``release`` lets out the payload to the requester (or to the
list recipient). It reaches data, history and budget only through the context.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from collabzone.errors import PolicyRefusal
from collabzone.techniques.base import Outcome, Plan, PlanContext, Rules, RunContext, Technique
from collabzone.techniques.sql import _monitor
from collabzone.techniques.sql._canonical import canonical_key
from collabzone.techniques.sql._compile import Compiled, compile_request, quantity_key
from collabzone.techniques.sql._dp import Measure, release
from collabzone.techniques.sql._execute import configure, execute
from collabzone.techniques.sql._payload import jsonable, table_payload
from collabzone.techniques.sql._rules import RULE_SPECS
from collabzone.techniques.sql.rules._context import MEMBERS, SUPPRESSED

MEMORY_LIMIT = "4GB"


def _rule_sets(ctx: PlanContext, names: Sequence[str]) -> dict[str, list[Mapping[str, Any]]]:
    return {
        name: [a.rules for a in ctx.agreements_for(name) if a.technique == GovernedSQL.name]
        for name in names
    }


def compile_for(spec: Mapping[str, Any], ctx: PlanContext) -> Compiled:
    """Compile ``spec`` against what ``ctx`` lets the requester see and the agreements."""
    catalogue = ctx.visible_datasets()
    rule_sets = _rule_sets(ctx, [d.name for d in catalogue])
    return compile_request(spec, catalogue, rule_sets, ctx.requester.name)


class GovernedSQL(Technique):
    """Aggregate, list, template and differentially private SQL under agreement rules."""

    name = "sql"
    summary = "governed SQL: thresholds, allowed columns, query monitor, DP with budgets"
    rule_specs = RULE_SPECS

    def plan(self, spec: Mapping[str, Any], ctx: PlanContext) -> Plan:
        compiled = compile_for(spec, ctx)
        cost = {}
        if compiled.budget is not None:
            cost = {d: compiled.budget.cost() for d in compiled.datasets}
        governed = None if compiled.reasons else compiled.rewritten().sql(dialect="duckdb")
        details = {
            "spec": dict(spec),
            "mode": compiled.mode,
            "governed_sql": governed,
            "rules": compiled.effective.to_json(),
            "refusals": [str(r) for r in compiled.reasons],
            "partition_selection": (
                None
                if compiled.mode != "dp"
                else "public"
                if compiled.public_keys is not None
                else "private"
            ),
        }
        return Plan(
            technique=self.name,
            datasets=compiled.datasets,
            cost=cost,
            columns=compiled.query.columns_by_dataset(),
            outputs=", ".join(item.name for item in compiled.shape.items),
            details=details,
        )

    def check(self, plan: Plan, rules: Rules, ctx: PlanContext) -> list[Any]:
        catalogue = ctx.visible_datasets()
        rule_sets = {d.name: [rules.by_dataset.get(d.name, {})] for d in catalogue}
        compiled = compile_request(plan.details["spec"], catalogue, rule_sets, ctx.requester.name)
        return compiled.reasons

    def run(self, plan: Plan, ctx: RunContext) -> Outcome:
        compiled = compile_for(plan.details["spec"], ctx)
        if compiled.reasons:
            raise PolicyRefusal(compiled.reasons)
        con = ctx.connection()
        configure(con, memory_limit=MEMORY_LIMIT, threads=None)
        if compiled.mode == "dp":
            return _run_dp(compiled, ctx)
        if compiled.mode == "list":
            return _run_list(compiled, ctx)
        return _run_aggregation(compiled, ctx)

    def release(self, plan: Plan, outcome: Outcome, rules: Rules) -> Outcome:
        return outcome


def _history(compiled: Compiled, ctx: RunContext) -> list[Mapping[str, Any]]:
    me = ctx.requester.name
    entries: list[Mapping[str, Any]] = []
    for dataset in compiled.datasets:
        for entry in ctx.history(dataset):
            if compiled.effective.across_parties or entry.get("requester") == me:
                entries.append(entry)
    return entries


def _run_aggregation(compiled: Compiled, ctx: RunContext) -> Outcome:
    eff = compiled.effective
    monitor = eff.monitor
    con = ctx.connection()
    tree = compiled.rewritten(collect_members=monitor)
    table = execute(
        con, tree.sql(dialect="duckdb"), timeout_s=eff.timeout_s, max_rows=eff.max_result_rows
    )
    names = [item.name for item in compiled.shape.items]
    suppressed_col = table.column(SUPPRESSED).to_pylist()
    suppressed = int(suppressed_col[0]) if suppressed_col else _count_all_suppressed(compiled, ctx)
    sets: list[_monitor.EntitySet] = []
    if monitor:
        sets = [_monitor.EntitySet.of(m or []) for m in table.column(MEMBERS).to_pylist()]
        reasons = _monitor.check_differencing(
            sets, _history(compiled, ctx), min_group_size=eff.min_group_size
        )
        if reasons:
            raise PolicyRefusal(reasons)
    rows = (
        [list(r) for r in zip(*(table.column(n).to_pylist() for n in names), strict=True)]
        if names
        else []
    )
    payload = table_payload(names, rows)
    payload.update(
        {
            "analysis": compiled.mode,
            "min_group_size": eff.min_group_size,
            "suppressed_rows": suppressed,
            "_monitor": {"kind": "aggregation", "entities": _monitor.record(sets)}
            if monitor
            else {},
        }
    )
    return Outcome(payload=payload, rows_suppressed=suppressed, mechanism="min_group_size")


def _count_all_suppressed(compiled: Compiled, ctx: RunContext) -> int:
    """When nothing passed the threshold: how many groups were cut (groups only, no values)."""
    from sqlglot import exp

    middle = compiled.rewritten().args["from_"].this.this
    count = exp.select(exp.Count(this=exp.Star())).from_(
        exp.alias_(exp.Subquery(this=middle), "m", table=True)
    )
    table = execute(
        ctx.connection(),
        count.sql(dialect="duckdb"),
        timeout_s=compiled.effective.timeout_s,
        max_rows=1,
    )
    return int(table.column(0)[0].as_py())


def _run_list(compiled: Compiled, ctx: RunContext) -> Outcome:
    eff = compiled.effective
    tree = compiled.rewritten()
    table = execute(
        ctx.connection(),
        tree.sql(dialect="duckdb"),
        timeout_s=eff.timeout_s,
        max_rows=eff.max_result_rows,
    )
    names = [item.name for item in compiled.shape.items]
    rows = [list(r) for r in zip(*(table.column(n).to_pylist() for n in names), strict=True)]
    payload = table_payload(names, rows)
    notes = ()
    if not rows:
        notes = (
            f"no rows: the overlap is empty or covers fewer than {eff.min_group_size} people (suppressed)",
        )
    payload.update({"analysis": "list", "min_group_size": eff.min_group_size, "notes": list(notes)})
    return Outcome(
        payload=payload, mechanism="min_group_size", released_to=(ctx.requester.name,), notes=notes
    )


def _dp_cache_key(compiled: Compiled) -> str:
    budget = compiled.budget
    assert budget is not None
    return canonical_key(
        compiled.query.tree,
        compiled.query.tables,
        extra=[sorted(compiled.quantity_index), budget.epsilon, budget.rho, budget.delta,
               compiled.spec.get("alpha", 0.05), compiled.effective.to_json()],
    )  # fmt: skip


def _run_dp(compiled: Compiled, ctx: RunContext) -> Outcome:
    budget = compiled.budget
    assert budget is not None
    key = _dp_cache_key(compiled)
    names = [item.name for item in compiled.shape.items]
    for entry in _history(compiled, ctx):
        cached = entry.get("dp_cache") if entry.get("requester") == ctx.requester.name else None
        if cached and cached.get("key") == key:
            payload = dict(cached["payload"])
            payload["columns"] = names
            payload["notes"] = [
                *payload.get("notes", []),
                "repeated query: the earlier noisy answer is returned at no extra cost",
            ]
            payload["_monitor"] = {"kind": "dp", "dp_cache": cached}
            return Outcome(
                payload=payload,
                mechanism=payload.get("mechanism"),
                noise_scale=payload.get("max_noise_scale"),
                spent={},
            )
    eff = compiled.effective
    max_rows = eff.max_rows_per_entity or 1
    max_groups = (eff.max_groups_per_entity or 1) if compiled.shape.group_by else 1
    tree = compiled.rewritten(salt=secrets.randbelow(2**31))
    table = execute(
        ctx.connection(), tree.sql(dialect="duckdb"), timeout_s=eff.timeout_s, max_rows=None
    )
    dims = [f"_cz_d{i}" for i in range(len(compiled.shape.group_by))]
    dim_values = [table.column(d).to_pylist() for d in dims]
    keys = (
        [tuple(jsonable(v) for v in key_) for key_ in zip(*dim_values, strict=True)]
        if dims
        else [()] * table.num_rows
    )
    if not dims and not keys:
        keys = [()]
    data = {
        q.name: [int(v or 0) for v in table.column(q.name).to_pylist()] or [0]
        for q in compiled.quantities
    }
    measures = []
    for q in compiled.quantities:
        linf = (
            max_rows * max(abs(q.bound.low), abs(q.bound.high))
            if q.bound is not None
            else (1 if q.kind == "entities" else max_rows)
        )
        measures.append(Measure(q.name, max(1, linf)))
    alpha = float(compiled.spec.get("alpha", 0.05))
    public = compiled.public_keys if compiled.shape.group_by else [()]
    noisy = release(keys, data, measures, budget=budget, max_groups=max_groups, alpha=alpha,
                    public_keys=public, selector=compiled.quantity_index.get("rows"))  # fmt: skip
    scale_of = {q.name: (q.bound.scale if q.bound is not None else 1) for q in compiled.quantities}
    rows, intervals = _dp_rows(compiled, noisy, scale_of, alpha)
    order = compiled.shape.order_by
    for name, desc in reversed(order):
        idx = names.index(name)
        perm = sorted(
            range(len(rows)), key=lambda i: (rows[i][idx] is None, rows[i][idx]), reverse=desc
        )
        rows = [rows[i] for i in perm]
        intervals = {k: [v[i] for i in perm] for k, v in intervals.items()}
    if compiled.shape.limit is not None:
        rows = rows[: compiled.shape.limit]
        intervals = {k: v[: compiled.shape.limit] for k, v in intervals.items()}
    item_scale = _item_scales(compiled, noisy.scales, scale_of)
    payload = table_payload(names, rows)
    payload.update(
        {
            "analysis": "dp",
            "mechanism": "discrete_gaussian (zCDP)" if budget.zcdp else "discrete_laplace",
            "confidence_level": 1 - alpha,
            "confidence_intervals": intervals,
            "noise_scale": item_scale,
            "max_noise_scale": max(item_scale.values()) if item_scale else None,
            "partition_selection": "public domain" if compiled.public_keys is not None else f"private (threshold {noisy.threshold})",
            "contribution_bounds": {"max_rows_per_entity": max_rows, "max_groups_per_entity": max_groups},
            "spent": noisy.spent.as_dict(),
            "notes": [],
        }
    )  # fmt: skip
    public_payload = {k: v for k, v in payload.items() if not k.startswith("_")}
    payload["_monitor"] = {"kind": "dp", "dp_cache": {"key": key, "payload": public_payload}}
    spent = {d: noisy.spent for d in compiled.datasets}
    return Outcome(
        payload=payload,
        mechanism=payload["mechanism"],
        noise_scale=payload["max_noise_scale"],
        spent=spent,
    )


def _item_scales(
    compiled: Compiled, scales: Mapping[str, float], scale_of: Mapping[str, int]
) -> dict[str, float]:
    out: dict[str, float] = {}
    for item in compiled.shape.items:
        if item.is_aggregate:
            agg = item.aggregates[0]
            first = quantity_key(compiled, agg.func, agg.ref)[0]
            out[item.name] = scales[first] / scale_of[first]
    return out


def _dp_rows(
    compiled: Compiled, noisy: Any, scale_of: Mapping[str, int], alpha: float
) -> tuple[list[list[Any]], dict[str, list[list[float | None]]]]:
    rows: list[list[Any]] = []
    intervals: dict[str, list[list[float | None]]] = {}
    dims = {ref.key: i for i, ref in enumerate(compiled.shape.group_by)}
    for index, key in enumerate(noisy.keys):
        row: list[Any] = []
        for item in compiled.shape.items:
            if item.dimension is not None:
                row.append(key[dims[item.dimension.key]])
                continue
            agg = item.aggregates[0]
            parts = quantity_key(compiled, agg.func, agg.ref)
            values = [noisy.values[p][index] / scale_of[p] for p in parts]
            widths = [noisy.accuracy[p] / scale_of[p] for p in parts]
            if agg.func == "AVG":
                total, count = values
                value = total / count if count > 0 else None
                low_count = count - widths[1]
                interval: list[float | None] = [None, None]
                if low_count > 0 and value is not None:
                    candidates = [
                        (total + s * widths[0]) / (count + c * widths[1])
                        for s in (-1, 1)
                        for c in (-1, 1)
                    ]
                    interval = [min(candidates), max(candidates)]
                row.append(value)
            else:
                value = values[0]
                row.append(int(value) if scale_of[parts[0]] == 1 else value)
                interval = [value - widths[0], value + widths[0]]
            intervals.setdefault(item.name, []).append(interval)
        rows.append(row)
    return rows, intervals
