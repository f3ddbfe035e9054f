"""The ``synthetic`` technique: a differentially private synthetic copy of one dataset.

The owner's agreement grants ``synthetic`` (optionally limiting ``methods``); the analyst
asks for a synthetic version of a dataset with a method and a privacy budget, given as
``rho`` (zCDP) or as ``epsilon`` and ``delta``. The budget is converted once to rho (the
largest rho whose zCDP-to-(epsilon, delta) conversion stays within the request), the
method's OpenDP mechanisms must together spend no more than that rho, and the ledger is
charged exactly the request's cost, once. The released table is post-processing of those
measurements: whatever is computed from it later costs nothing more.

Columns are discretised on the bins their declared public domains give (never on the
data); identifier and join-key columns are never synthesised.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from collabzone.budget import PrivacyCost, privacy_parameter
from collabzone.errors import InvalidInputError, Reason
from collabzone.model import ColumnClass, ColumnType
from collabzone.techniques.base import (
    DerivedDataset,
    FailedAfterSpending,
    Merge,
    Outcome,
    Plan,
    PlanContext,
    Rules,
    RuleSpec,
    RunContext,
    Technique,
)
from collabzone.techniques.view import ResultView

METHODS = ("mst", "aim")
SPEC_KEYS = frozenset(
    {"dataset", "name", "method", "columns", "epsilon", "delta", "rho", "rows", "bins", "iters"}
)
SUPPORTED_TYPES = (ColumnType.STRING, ColumnType.INTEGER, ColumnType.FLOAT, ColumnType.BOOLEAN)
NEVER = (ColumnClass.IDENTIFIER, ColumnClass.JOIN_KEY)


def rho_for(epsilon: float, delta: float) -> float:
    """The largest rho whose rho-zCDP implies (epsilon, delta)-DP by Bun and Steinke's
    conversion epsilon = rho + 2 sqrt(rho ln(1/delta)) (the one OpenDP's
    ``make_zCDP_to_approxDP`` bounds from above; its own is tighter)."""
    if delta <= 0:
        raise InvalidInputError("synthetic data under epsilon needs a delta > 0 (or give rho)")
    log_term = math.log(1 / delta)
    return (math.sqrt(log_term + epsilon) - math.sqrt(log_term)) ** 2


class Synthetic(Technique):
    """Differentially private synthetic data (MST or AIM on Private-PGM, OpenDP measurements)."""

    name = "synthetic"
    summary = "differentially private synthetic table (MST or AIM; OpenDP Gaussian, zCDP)"
    rule_specs = (
        RuleSpec("methods", Merge.SUBSET, "synthesis methods the owner allows (mst, aim)", list),
    )

    def plan(self, spec: Mapping[str, Any], ctx: PlanContext) -> Plan:
        unknown = set(spec) - SPEC_KEYS
        if unknown:
            raise InvalidInputError(f"unknown synthetic spec keys: {', '.join(sorted(unknown))}")
        name = spec.get("dataset")
        if not isinstance(name, str):
            raise InvalidInputError("synthetic needs `dataset`: the dataset to synthesise")
        dataset = ctx.dataset(name)
        method = spec.get("method", "mst")
        if method not in METHODS:
            raise InvalidInputError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
        columns = spec.get("columns") or [
            c.name for c in dataset.columns if c.column_class not in NEVER
        ]
        if not isinstance(columns, list) or len(columns) < 2:
            raise InvalidInputError("synthetic needs at least two `columns`")
        for column_name in columns:
            column = dataset.column(column_name)
            if column is None:
                raise InvalidInputError(f"{name!r} has no column {column_name!r}")
            if column.column_class in NEVER:
                raise InvalidInputError(
                    f"column {column_name!r} is a {column.column_class.value}: identifiers are "
                    "never synthesised; leave it out of `columns`"
                )
            if column.type not in SUPPORTED_TYPES:
                raise InvalidInputError(
                    f"column {column_name!r} is a {column.type.value}; synthetic supports "
                    "string, integer, float and boolean columns"
                )
            if column.domain is None:
                raise InvalidInputError(
                    f"column {column_name!r} declares no public domain; the owner must declare "
                    "its categories or min/max so the bins do not depend on the data"
                )
        if "rho" in spec:
            if "epsilon" in spec:
                raise InvalidInputError("give either rho or epsilon (with delta), not both")
            rho = privacy_parameter("rho", spec["rho"])
            cost = PrivacyCost(rho=rho)
        elif "epsilon" in spec:
            epsilon = privacy_parameter("epsilon", spec["epsilon"])
            delta = privacy_parameter("delta", spec.get("delta", 1e-6))
            rho = rho_for(epsilon, delta)
            cost = PrivacyCost(epsilon=epsilon, delta=delta)
        else:
            raise InvalidInputError("give a budget: rho, or epsilon (and delta, default 1e-6)")
        target = spec.get("name", f"{name}_synthetic")
        if not isinstance(target, str) or not target:
            raise InvalidInputError("`name` (the new dataset's name) must be a non-empty string")
        if any(d.name == target for d in ctx.visible_datasets()):
            raise InvalidInputError(
                f"a dataset named {target!r} already exists; choose another `name`"
            )
        bins = spec.get("bins", 16)
        iters = spec.get("iters", 500)
        rows = spec.get("rows")
        for key, value, low, high in (("bins", bins, 2, 256), ("iters", iters, 10, 10000)):
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise InvalidInputError(f"{key} must be an integer from {low} to {high}")
        if rows is not None and (
            isinstance(rows, bool) or not isinstance(rows, int) or not 1 <= rows <= 10_000_000
        ):
            raise InvalidInputError("rows must be an integer from 1 to 10000000")
        return Plan(
            technique=self.name,
            datasets=(name,),
            cost={name: cost},
            columns={name: tuple(columns)},
            outputs=f"a synthetic table of {len(columns)} columns ({method.upper()}, rho={rho:.6g})",
            details={
                "method": method,
                "rho": rho,
                "bins": bins,
                "iters": iters,
                "rows": rows,
                "name": target,
            },
        )

    def result_view(self, payload: Mapping[str, Any]) -> ResultView:
        """The release's report (measured noisy marginals vs synthetic, association heat
        map, budget) with its two figures; see :mod:`.view`."""
        from collabzone.techniques.synthetic.view import result_view

        return result_view(payload)

    def check(self, plan: Plan, rules: Rules, ctx: PlanContext) -> list[Reason]:
        allowed = rules.get("methods")
        method = plan.details["method"]
        if allowed is not None and method not in allowed:
            return [
                Reason(
                    "METHOD_NOT_ALLOWED",
                    "methods",
                    f"the agreement allows {', '.join(allowed)} only",
                )
            ]
        return []

    def run(self, plan: Plan, ctx: RunContext) -> Outcome:
        from collabzone.techniques.synthetic import aim as aim_module
        from collabzone.techniques.synthetic import mst as mst_module
        from collabzone.techniques.synthetic.encode import OTHER, table_codec
        from collabzone.techniques.synthetic.view import report_payload

        name = plan.datasets[0]
        dataset = ctx.dataset(name)
        columns = list(plan.columns[name])
        domains = {}
        for c in columns:
            column = dataset.column(c)
            domains[c] = column.domain if column is not None else None
        codec = table_codec(domains, bins=plan.details["bins"])
        frame = ctx.table(name).select(columns).to_pandas()
        seed = int(ctx.rng.integers(2**31))
        method = plan.details["method"]
        generate = aim_module.aim if method == "aim" else mst_module.mst
        try:
            result = generate(
                codec.encode(frame),
                codec.shape,
                plan.details["rho"],
                rows=plan.details["rows"],
                iters=plan.details["iters"],
                seed=seed,
            )
        except Exception as exc:  # measurements may already have run: charge them
            raise FailedAfterSpending(
                f"{method.upper()} failed after measuring ({type(exc).__name__}); "
                "the budget is charged",
                {name: plan.cost[name]},
            ) from exc
        synthetic = codec.decode(result.codes, ctx.rng)
        specs = []
        for c in columns:
            column = dataset.column(c)
            assert column is not None
            if column.type is ColumnType.INTEGER:
                synthetic[c] = [round(v) if isinstance(v, float) else v for v in synthetic[c]]
            if isinstance(column.domain, list) and column.domain:
                # "other" (values outside the declared domain) becomes a random declared
                # category: public randomness, post-processing, keeps the table ingestible
                declared = list(column.domain)
                synthetic[c] = [
                    declared[int(ctx.rng.integers(len(declared)))] if v == OTHER else v
                    for v in synthetic[c]
                ]
            spec = column.model_dump(by_alias=True, mode="json")
            spec["unique"] = False
            specs.append(spec)
        rows = synthetic.astype(object).values.tolist()
        cost = plan.cost[name]
        derived = DerivedDataset(
            name=plan.details["name"],
            columns=tuple(specs),
            rows=tuple(tuple(r) for r in rows),
            provenance={
                "source": name,
                "source_version": dataset.version,
                "method": plan.details["method"],
                "rho": plan.details["rho"],
                **cost.as_dict(),
            },
            description=f"DP synthetic version of {name} ({plan.details['method'].upper()})",
        )
        privacy = {
            **{k: v for k, v in cost.as_dict().items() if v},
            "rho": plan.details["rho"],
            "rho_spent": result.spend.rho,
            "opendp_measurements": len(result.spend.parts),
        }
        structure = (
            {"tree": [list(p) for p in result.tree]}
            if isinstance(result, mst_module.MSTResult)
            else {"measured": [list(c) for c in result.measured]}
        )
        return Outcome(
            payload={
                "columns": columns,
                "rows": rows,
                "dataset": plan.details["name"],
                "method": method,
                **structure,
                "report": report_payload(codec, result.codes, result.measurements, privacy),
            },
            mechanism=(
                "MST (McKenna et al. 2021)" if method == "mst" else "AIM (McKenna et al. 2022)"
            )
            + ": OpenDP Gaussian + noisy max, rho-zCDP",
            spent={name: cost},
            derived=derived,
            notes=(
                f"{method.upper()} spent rho={result.spend.rho:.6g} of {plan.details['rho']:.6g} over "
                f"{len(result.spend.parts)} OpenDP measurements",
                "the table is post-processing: analyses of it spend no further budget",
            ),
        )
