"""Zone adapters: ``deid`` (one provider's dataset) and ``mediate`` (several providers').

The agreement states the required model (rules ``k``, ``l``, ``l_variant``, ``c``, ``t``,
``t_distance``, ``suppression_limit``, ``quasi_identifiers``, ``sensitive``,
``hierarchies``) and the reference datasets its owner approves for enrichment
(``references``); a request may ask for a stricter model, never a weaker one (see
``_zone_job.py`` for how the request, the catalogue and the rules combine). The request
spec is validated strictly (``_request.py``). Both techniques run merge (mediate only)
-> enrich / derive -> de-identify. ``release`` recounts k and l on the rows that leave
and checks that every released column is accounted for.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pyarrow as pa

from collabzone.budget import PrivacyCost
from collabzone.errors import InternalError, InvalidInputError, PolicyRefusal, Reason
from collabzone.techniques.base import (
    Merge,
    Outcome,
    Plan,
    PlanContext,
    Rules,
    RuleSpec,
    RunContext,
    Technique,
)
from collabzone.techniques.deid._encode import UnknownValueError
from collabzone.techniques.deid._engine import deidentify
from collabzone.techniques.deid._mediator import mediate
from collabzone.techniques.deid._request import (
    DeidRequest,
    MediateRequest,
    ZoneRequest,
    parse_request,
)
from collabzone.techniques.deid._zone_job import ZoneJob, build_job, strictest

__all__ = ["RULE_SPECS", "Deidentify", "Mediate", "strictest"]

RULE_SPECS = (
    RuleSpec("k", Merge.AT_LEAST, "every released class holds at least k rows", int),
    RuleSpec("l", Merge.AT_LEAST, "l-diversity of every sensitive attribute", (int, float)),
    RuleSpec("l_variant", Merge.SAME, "distinct, entropy or recursive", str),
    RuleSpec("c", Merge.AT_MOST, "c of recursive (c,l)-diversity", (int, float)),
    RuleSpec("t", Merge.AT_MOST, "t-closeness of every sensitive attribute", (int, float)),
    RuleSpec("t_distance", Merge.SAME, "equal, ordered or hierarchical", str),
    RuleSpec("suppression_limit", Merge.AT_MOST, "share of rows that may be removed", (int, float)),
    RuleSpec("quasi_identifiers", Merge.PER_DATASET, "columns always generalised", list),
    RuleSpec("sensitive", Merge.PER_DATASET, "columns protected by l / t", list),
    RuleSpec("hierarchies", Merge.PER_DATASET, "hierarchy spec per column", dict),
    RuleSpec("references", Merge.PER_DATASET, "reference datasets approved for enrichment", list),
)
RuleSets = dict[str, list[Mapping[str, Any]]]


def _payload(table: pa.Table, report: dict[str, Any]) -> dict[str, Any]:
    rows = [list(r.values()) for r in table.to_pylist()]
    return {"columns": table.column_names, "rows": rows, "report": report}


def _claimed(report: Mapping[str, Any], rules: Mapping[str, Any]) -> list[Reason]:
    """The report's own claims must meet the merged rules."""
    problems = []
    achieved = report["privacy"]
    if rules.get("k") is not None and report["rows_out"] and achieved["k"] < rules["k"]:
        problems.append(
            Reason(
                "DEID_K_NOT_MET",
                "k",
                f"released classes hold {achieved['k']} rows, the agreement needs {rules['k']}",
            )
        )
    if (
        rules.get("suppression_limit") is not None
        and report["suppressed_rows"] > rules["suppression_limit"] * report["rows_in"] + 1e-9
    ):
        problems.append(
            Reason(
                "DEID_SUPPRESSION",
                "suppression_limit",
                "more rows were suppressed than the agreement allows",
            )
        )
    return problems


def _recounted(payload: Mapping[str, Any], rules: Mapping[str, Any]) -> list[Reason]:
    """Recount on the rows that would leave: every column accounted for, every class of
    the quasi-identifiers at least k rows and at least l distinct sensitive values (any
    l variant needs that many)."""
    declared = payload["report"].get("columns") or {}
    qis = list(declared.get("quasi_identifiers", []))
    sensitive = list(declared.get("sensitive", []))
    accounted = {*qis, *sensitive, *declared.get("keep", [])}
    columns = list(payload["columns"])
    if set(columns) != accounted or not qis:
        return [
            Reason(
                "DEID_UNACCOUNTED_COLUMN",
                "columns",
                f"the release's columns {sorted(columns)} are not exactly the declared ones",
            )
        ]
    rows = payload["rows"]
    if not rows:
        return []
    at = [columns.index(q) for q in qis]
    sizes: dict[tuple[Any, ...], int] = defaultdict(int)
    values: dict[tuple[str, tuple[Any, ...]], set[Any]] = defaultdict(set)
    for row in rows:
        key = tuple(row[i] for i in at)
        sizes[key] += 1
        for s in sensitive:
            values[(s, key)].add(row[columns.index(s)])
    problems = []
    if rules.get("k") is not None and min(sizes.values()) < rules["k"]:
        problems.append(
            Reason(
                "DEID_K_NOT_MET", "k", "a released class holds fewer rows than the agreement's k"
            )
        )
    if rules.get("l") is not None and sensitive:
        need = math.ceil(rules["l"] - 1e-9)
        if min(len(v) for v in values.values()) < need:
            problems.append(
                Reason(
                    "DEID_L_NOT_MET", "l", "a released class is less diverse than the agreement's l"
                )
            )
    return problems


def _generalised(
    compute: Callable[[], tuple[pa.Table, dict[str, Any]]],
    merged: Mapping[str, Any],
    spent: Mapping[str, PrivacyCost] | None = None,
) -> Outcome:
    """Run a de-identification and wrap its table and report as the technique's outcome;
    a value missing from a hierarchy is reported without echoing it. ``spent``: the
    privacy loss SafePub charges (OpenDP's search loss must fit in what is charged)."""
    try:
        out, report = compute()
    except UnknownValueError as exc:
        raise exc.redacted() from None
    report["rules"] = dict(merged)
    dp_part = report.get("dp")
    if dp_part is not None and dp_part["search_epsilon_spent"] > dp_part["search_epsilon"] * (
        1 + 1e-9
    ):
        raise InternalError("SafePub's search spent more than its share of epsilon")
    return Outcome(
        _payload(out, report),
        rows_suppressed=report["suppressed_rows"],
        mechanism="safepub" if dp_part is not None else "generalisation",
        spent=dict(spent or {}),
    )


def _checked_release(outcome: Outcome, rules: Rules) -> Outcome:
    """Let the outcome out only if its report and its rows meet every merged rule."""
    problems = _claimed(outcome.payload["report"], rules.merged)
    problems += [p for p in _recounted(outcome.payload, rules.merged) if p not in problems]
    if problems:
        raise PolicyRefusal(problems)
    return outcome


def _job(
    request: ZoneRequest, ctx: PlanContext, rule_sets: Mapping[str, Sequence[Mapping[str, Any]]]
) -> ZoneJob:
    providers = [ctx.dataset(n) for n in request.providers()]
    references = {n: ctx.dataset(n) for n in request.references()}
    return build_job(request, providers, references, rule_sets, ctx.requester.name)


def _cost(request: ZoneRequest) -> dict[str, PrivacyCost]:
    """SafePub's (epsilon, delta) on every provider's dataset; nothing otherwise."""
    if request.safepub is None:
        return {}
    cost = PrivacyCost(epsilon=request.safepub.epsilon, delta=request.safepub.delta)
    return dict.fromkeys(request.providers(), cost)


def _plan(name: str, request: ZoneRequest, spec: Mapping[str, Any], ctx: PlanContext) -> Plan:
    job = _job(request, ctx, {})
    providers = request.providers()
    return Plan(
        name,
        (*providers, *request.references()),
        cost=_cost(request),
        columns={**{p: job.inputs for p in providers}, **job.reference_columns},
        outputs="rows",
        details={"spec": dict(spec)},
    )


def _check(kind: type[ZoneRequest], plan: Plan, rules: Rules, ctx: PlanContext) -> list[Reason]:
    sets: RuleSets = {n: [rules.by_dataset[n]] for n in plan.datasets if n in rules.by_dataset}
    try:
        return list(_job(parse_request(kind, plan.details["spec"]), ctx, sets).reasons)
    except InvalidInputError as exc:
        return [Reason(exc.code, "request spec", exc.message)]


def _run_job(
    technique: str, kind: type[ZoneRequest], plan: Plan, ctx: RunContext
) -> tuple[ZoneJob, ZoneRequest, dict[str, pa.Table]]:
    request = parse_request(kind, plan.details["spec"])
    sets: RuleSets = {
        n: [a.rules for a in ctx.agreements_for(n) if a.technique == technique]
        for n in plan.datasets
    }
    job = _job(request, ctx, sets)
    if job.reasons:
        raise PolicyRefusal(list(job.reasons))
    references = {n: ctx.table(n).select(list(cols)) for n, cols in job.reference_columns.items()}
    return job, request, references


class Deidentify(Technique):
    """Release one dataset generalised to the agreement's k / l / t model."""

    name = "deid"
    summary = "de-identified rows (k-anonymity, l-diversity, t-closeness) with a risk report"
    rule_specs = RULE_SPECS

    def plan(self, spec: Mapping[str, Any], ctx: PlanContext) -> Plan:
        return _plan(self.name, parse_request(DeidRequest, spec), spec, ctx)

    def check(self, plan: Plan, rules: Rules, ctx: PlanContext) -> list[Reason]:
        return _check(DeidRequest, plan, rules, ctx)

    def run(self, plan: Plan, ctx: RunContext) -> Outcome:
        job, request, references = _run_job(self.name, DeidRequest, plan, ctx)
        table = ctx.table(request.providers()[0]).select(list(job.inputs))
        return _generalised(
            lambda: deidentify(table, job.config, references=references, rng=ctx.rng),
            job.merged,
            _cost(request),
        )

    def release(self, plan: Plan, outcome: Outcome, rules: Rules) -> Outcome:
        return _checked_release(outcome, rules)


class Mediate(Technique):
    """Mix several providers' extracts, enrich / derive, de-identify the union, release to
    the requester without revealing which provider any record came from."""

    name = "mediate"
    summary = "merged, shuffled and re-de-identified rows of several providers, provenance dropped"
    rule_specs = RULE_SPECS

    def plan(self, spec: Mapping[str, Any], ctx: PlanContext) -> Plan:
        return _plan(self.name, parse_request(MediateRequest, spec), spec, ctx)

    def check(self, plan: Plan, rules: Rules, ctx: PlanContext) -> list[Reason]:
        return _check(MediateRequest, plan, rules, ctx)

    def run(self, plan: Plan, ctx: RunContext) -> Outcome:
        job, request, references = _run_job(self.name, MediateRequest, plan, ctx)
        extracts = [ctx.table(n) for n in request.providers()]
        return _generalised(
            lambda: mediate(extracts, job.config, ctx.rng, references=references),
            job.merged,
            _cost(request),
        )

    def release(self, plan: Plan, outcome: Outcome, rules: Rules) -> Outcome:
        return _checked_release(outcome, rules)
