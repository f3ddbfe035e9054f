"""The ``sql`` technique: governed SQL behind the plan / check / run / release interface.

``plan`` compiles the request (no data) and prices it; ``check`` repeats the rule checks
with the zone's merged agreement rules; ``run`` executes the rewritten tree on the zone's
DuckDB connection (timeout, row cap, data-independent errors), applies the query monitor
and, for ``dp``, the DP core; ``release`` lets out the payload to the requester (or to the
list recipient). It reaches data, history and budget only through the context.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from collabzone.errors import PolicyRefusal
from collabzone.techniques.base import Outcome, Plan, PlanContext, Rules, RunContext, Technique
from collabzone.techniques.sql._compile import compile_request
from collabzone.techniques.sql._compiled import Compiled
from collabzone.techniques.sql._engines import RemoteEngine, engine_for
from collabzone.techniques.sql._execute import configure
from collabzone.techniques.sql._rules import RULE_SPECS
from collabzone.techniques.sql._run import run_aggregation, run_list
from collabzone.techniques.sql._run_dp import run_dp

MEMORY_LIMIT = "4GB"


def _rule_sets(ctx: PlanContext, names: Sequence[str]) -> dict[str, list[Mapping[str, Any]]]:
    """The rules of every ``sql`` agreement granting the requester, per dataset.

    ADAPTER (until the context states the request's purpose): when ``ctx`` has a
    ``purpose`` attribute only the agreements allowing it count; otherwise every ``sql``
    agreement counts and numeric rules merge most restrictively across them.
    """
    purpose = getattr(ctx, "purpose", None)
    return {
        name: [
            a.rules
            for a in ctx.agreements_for(name)
            if a.technique == GovernedSQL.name
            and (not isinstance(purpose, str) or a.allows_purpose(purpose))
        ]
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
        engine = engine_for(compiled.datasets, ctx)
        if isinstance(engine, RemoteEngine):  # a construct the warehouse lacks: refused now,
            # before a private derivation of limits could spend anything
            engine.sql(compiled.rewritten(collect_members=compiled.audited, engine=engine.name))
        con = ctx.connection()
        configure(con, memory_limit=MEMORY_LIMIT, threads=None)
        if compiled.mode == "dp":
            return run_dp(compiled, ctx, engine)
        if compiled.mode == "list":
            return run_list(compiled, ctx, engine)
        return run_aggregation(compiled, ctx, engine)

    def release(self, plan: Plan, outcome: Outcome, rules: Rules) -> Outcome:
        return outcome
