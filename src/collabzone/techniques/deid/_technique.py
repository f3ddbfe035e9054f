"""Zone adapters: ``deid`` (one provider's dataset) and ``mediate`` (several providers').

The agreement states the required model (rules ``k``, ``l``, ``l_variant``, ``c``, ``t``,
``t_distance``, ``suppression_limit``, ``quasi_identifiers``, ``sensitive``,
``hierarchies``); a request may ask for a stricter one, never a weaker one: the strictest
value of the request and of every agreement on the dataset is applied. Identifier and
join-key columns never leave. ``release`` re-checks the report against the rules.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import pyarrow as pa

from collabzone.errors import InvalidInputError, PolicyRefusal, Reason
from collabzone.model import ColumnClass, Dataset
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
from collabzone.techniques.deid._config import DeidConfig, HierarchySpec, parse_config
from collabzone.techniques.deid._encode import UnknownValueError
from collabzone.techniques.deid._engine import deidentify
from collabzone.techniques.deid._mediator import mediate

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
)
_MODEL_KEYS = ("k", "l", "l_variant", "c", "t", "t_distance")
_NEVER_RELEASED = (ColumnClass.IDENTIFIER, ColumnClass.JOIN_KEY)
_PROTECTED = (ColumnClass.QUASI_IDENTIFIER, ColumnClass.SENSITIVE)


def _keep(spec: Mapping[str, Any]) -> list[str]:
    """Columns the request wants released unchanged (measures, labels, other)."""
    keep = spec.get("keep", [])
    if not isinstance(keep, list) or not all(isinstance(c, str) for c in keep):
        raise InvalidInputError("keep must be a list of column names")
    return list(keep)


def strictest(rule_sets: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Merge rule sets most restrictively (k, l up; c, t, suppression limit down)."""
    out: dict[str, Any] = {}
    for rules in rule_sets:
        for key, value in rules.items():
            if value is None or key not in {"suppression_limit", *_MODEL_KEYS}:
                continue
            if key not in out:
                out[key] = value
            elif key in ("k", "l"):
                out[key] = max(out[key], value)
            elif key in ("c", "t", "suppression_limit"):
                out[key] = min(out[key], value)
            elif out[key] != value:
                raise InvalidInputError(f"the agreements disagree on {key!r}: align them")
    return out


def _spec_qis(spec: Mapping[str, Any]) -> dict[str, Any]:
    qis = spec.get("quasi_identifiers") or {}
    if isinstance(qis, list):
        return dict.fromkeys(qis)
    if not isinstance(qis, dict):
        raise InvalidInputError("quasi_identifiers must be a list of columns or a mapping")
    return dict(qis)


def _columns(
    dataset: Dataset, rules: Mapping[str, Any], spec: Mapping[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    """Effective quasi-identifiers (with hierarchy specs) and sensitive columns."""
    qis = _spec_qis(spec)
    for name in [
        *rules.get("quasi_identifiers", []),
        *(c.name for c in dataset.columns_of(ColumnClass.QUASI_IDENTIFIER)),
    ]:
        qis.setdefault(name, None)
    for name, h in (rules.get("hierarchies") or {}).items():
        if name in qis:
            qis[name] = h  # the owner's hierarchy wins over the requester's
    sensitive = list(
        dict.fromkeys(
            [
                *spec.get("sensitive", []),
                *rules.get("sensitive", []),
                *(c.name for c in dataset.columns_of(ColumnClass.SENSITIVE)),
            ]
        )
    )
    return qis, sensitive


def _reasons(
    dataset: Dataset,
    rules: Mapping[str, Any],
    qis: Mapping[str, Any],
    sensitive: list[str],
    owner: str,
    keep: Sequence[str] = (),
) -> list[Reason]:
    reasons = []
    if rules.get("k") is None:
        reasons.append(
            Reason(
                "DEID_NO_K",
                "k",
                "the agreement states no k: rows leave only under a stated k",
                owner,
            )
        )
    for name in keep:
        column = dataset.column(name)
        if column is not None and column.column_class in _PROTECTED:
            reasons.append(
                Reason(
                    "DEID_KEEP_PROTECTED",
                    "keep",
                    f"column {name!r} is a {column.column_class.value}: it is generalised or "
                    "protected, never released unchanged; remove it from keep",
                    owner,
                )
            )
    for name in [*qis, *sensitive, *keep]:
        column = dataset.column(name)
        if column is None:
            reasons.append(
                Reason(
                    "UNKNOWN_COLUMN",
                    "columns",
                    f"dataset {dataset.name!r} has no column {name!r}",
                    owner,
                )
            )
        elif column.column_class in _NEVER_RELEASED:
            reasons.append(
                Reason(
                    "IDENTIFIER_COLUMN",
                    "columns",
                    f"column {name!r} is a {column.column_class.value} and never leaves: remove it from the request",
                    owner,
                )
            )
    return reasons


def _config(
    spec: Mapping[str, Any], rules: Mapping[str, Any], qis: Mapping[str, Any], sensitive: list[str]
) -> DeidConfig:
    both = strictest([{k: spec.get("privacy", {}).get(k) for k in _MODEL_KEYS}, rules])
    model = {k: v for k, v in both.items() if k in _MODEL_KEYS}
    limit = strictest([{"suppression_limit": spec.get("suppression_limit", 0.0)}, rules]).get(
        "suppression_limit", 0.0
    )
    return parse_config(
        {
            "quasi_identifiers": {
                q: (h if h is None or isinstance(h, HierarchySpec) else dict(h))
                for q, h in qis.items()
            },
            "sensitive": sensitive,
            "privacy": model,
            "suppression_limit": limit,
            "metric": spec.get("metric", "discernibility"),
            "algorithm": spec.get("algorithm", "auto"),
            "shuffle": True,
            "keep": [c for c in _keep(spec) if c not in qis and c not in sensitive],
        }
    )


def _payload(table: pa.Table, report: dict[str, Any]) -> dict[str, Any]:
    rows = [list(r.values()) for r in table.to_pylist()]
    return {"columns": table.column_names, "rows": rows, "report": report}


def _verify(report: Mapping[str, Any], rules: Mapping[str, Any]) -> list[Reason]:
    """The last filter: the achieved levels must meet the merged rules."""
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
    if (
        rules.get("l") is not None
        and rules.get("l_variant", "distinct") == "distinct"
        and report["rows_out"]
        and min(achieved.get("l_distinct", {}).values(), default=0) < rules["l"]
    ):
        problems.append(
            Reason("DEID_L_NOT_MET", "l", "a released class is less diverse than the agreement's l")
        )
    return problems


def _generalised(
    compute: Callable[[], tuple[pa.Table, dict[str, Any]]], merged: Mapping[str, Any]
) -> Outcome:
    """Run a de-identification and wrap its table and report as the technique's outcome;
    a value missing from a hierarchy is reported without echoing it."""
    try:
        out, report = compute()
    except UnknownValueError as exc:
        raise exc.redacted() from None
    report["rules"] = dict(merged)
    return Outcome(
        _payload(out, report), rows_suppressed=report["suppressed_rows"], mechanism="generalisation"
    )


def _checked_release(outcome: Outcome, rules: Rules) -> Outcome:
    """Let the outcome out only if its report meets every merged rule."""
    problems = _verify(outcome.payload["report"], rules.merged)
    if problems:
        raise PolicyRefusal(problems)
    return outcome


class Deidentify(Technique):
    """Release one dataset generalised to the agreement's k / l / t model."""

    name = "deid"
    summary = "de-identified rows (k-anonymity, l-diversity, t-closeness) with a risk report"
    rule_specs = RULE_SPECS

    def plan(self, spec: Mapping[str, Any], ctx: PlanContext) -> Plan:
        name = spec.get("dataset")
        if not isinstance(name, str):
            raise InvalidInputError("the deid request needs 'dataset': the dataset's name")
        dataset = ctx.dataset(name)
        qis, sensitive = _columns(dataset, {}, spec)
        return Plan(
            self.name,
            (name,),
            columns={name: (*qis, *sensitive, *_keep(spec))},
            outputs="rows",
            details={"spec": dict(spec)},
        )

    def check(self, plan: Plan, rules: Rules, ctx: PlanContext) -> list[Reason]:
        name = plan.datasets[0]
        dataset = ctx.dataset(name)
        ds_rules = {**rules.merged, **rules.by_dataset.get(name, {})}
        spec = plan.details["spec"]
        qis, sensitive = _columns(dataset, ds_rules, spec)
        return _reasons(dataset, ds_rules, qis, sensitive, dataset.owner, _keep(spec))

    def run(self, plan: Plan, ctx: RunContext) -> Outcome:
        name = plan.datasets[0]
        dataset = ctx.dataset(name)
        rule_sets = [a.rules for a in ctx.agreements_for(name) if a.technique == self.name]
        merged = strictest(rule_sets)
        per_ds: dict[str, Any] = {}
        for rules in rule_sets:
            for key in ("quasi_identifiers", "sensitive"):
                per_ds[key] = [*per_ds.get(key, []), *rules.get(key, [])]
            per_ds.setdefault("hierarchies", {}).update(rules.get("hierarchies") or {})
        spec = plan.details["spec"]
        qis, sensitive = _columns(dataset, per_ds, spec)
        keep = [c for c in _keep(spec) if c not in qis and c not in sensitive]
        reasons = _reasons(dataset, merged, qis, sensitive, dataset.owner, keep)
        if reasons:
            raise PolicyRefusal(reasons)
        config = _config(plan.details["spec"], merged, qis, sensitive)
        table = ctx.table(name).select([*qis, *sensitive, *keep])
        return _generalised(lambda: deidentify(table, config, rng=ctx.rng), merged)

    def release(self, plan: Plan, outcome: Outcome, rules: Rules) -> Outcome:
        return _checked_release(outcome, rules)


class Mediate(Technique):
    """Mix several providers' extracts, de-identify the union, release to the requester
    without revealing which provider any record came from."""

    name = "mediate"
    summary = "merged, shuffled and re-de-identified rows of several providers, provenance dropped"
    rule_specs = RULE_SPECS

    def plan(self, spec: Mapping[str, Any], ctx: PlanContext) -> Plan:
        names = spec.get("datasets")
        if (
            not isinstance(names, list)
            or len(names) < 2
            or not all(isinstance(n, str) for n in names)
        ):
            raise InvalidInputError(
                "the mediate request needs 'datasets': two or more dataset names"
            )
        if len(set(names)) != len(names):
            raise InvalidInputError("the mediate request lists a dataset twice")
        columns = {}
        for name in names:
            qis, sensitive = _columns(ctx.dataset(name), {}, spec)
            columns[name] = (*qis, *sensitive)
        return Plan(
            self.name, tuple(names), columns=columns, outputs="rows", details={"spec": dict(spec)}
        )

    def _effective(
        self, plan: Plan, ctx: PlanContext, rule_sets: Mapping[str, Sequence[Mapping[str, Any]]]
    ) -> tuple[dict[str, Any], dict[str, Any], list[str], list[Reason]]:
        merged = strictest(r for rules in rule_sets.values() for r in rules)
        qis: dict[str, Any] = _spec_qis(plan.details["spec"])
        sensitive: list[str] = list(plan.details["spec"].get("sensitive", []))
        reasons: list[Reason] = []
        for name in plan.datasets:
            dataset = ctx.dataset(name)
            per_ds: dict[str, Any] = {}
            for rules in rule_sets.get(name, []):
                for key in ("quasi_identifiers", "sensitive"):
                    per_ds[key] = [*per_ds.get(key, []), *rules.get(key, [])]
                per_ds.setdefault("hierarchies", {}).update(rules.get("hierarchies") or {})
            ds_qis, ds_sens = _columns(dataset, per_ds, plan.details["spec"])
            for q, h in ds_qis.items():
                if qis.get(q) is None:
                    qis[q] = h
            sensitive = list(dict.fromkeys([*sensitive, *ds_sens]))
            keep = _keep(plan.details["spec"])
            reasons += _reasons(dataset, merged, ds_qis, ds_sens, dataset.owner, keep)
        return merged, qis, sensitive, reasons

    def check(self, plan: Plan, rules: Rules, ctx: PlanContext) -> list[Reason]:
        sets = {
            name: [{**rules.merged, **rules.by_dataset.get(name, {})}] for name in plan.datasets
        }
        return self._effective(plan, ctx, sets)[3]

    def run(self, plan: Plan, ctx: RunContext) -> Outcome:
        sets = {
            n: [a.rules for a in ctx.agreements_for(n) if a.technique == self.name]
            for n in plan.datasets
        }
        merged, qis, sensitive, reasons = self._effective(plan, ctx, sets)
        if reasons:
            raise PolicyRefusal(reasons)
        config = _config(plan.details["spec"], merged, qis, sensitive)
        extracts = [ctx.table(n) for n in plan.datasets]
        return _generalised(lambda: mediate(extracts, config, ctx.rng), merged)

    def release(self, plan: Plan, outcome: Outcome, rules: Rules) -> Outcome:
        return _checked_release(outcome, rules)
