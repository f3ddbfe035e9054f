"""Differentially private counts of entities, overall or per public category.

The simplest DP technique: how many distinct entities (by a ``join_key`` column, so one
person contributes at most one) a dataset holds, optionally broken down by a dimension
whose categories the agreement or the schema declares public (no partition selection
needed: every declared category is reported, none is censored). Noise is OpenDP's discrete
Laplace (pure epsilon-DP) or discrete Gaussian (rho-zCDP); every count comes with a 95%
confidence interval. Each entity is counted in one category only (the smallest of its values).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from collabzone.budget import PrivacyCost, privacy_parameter
from collabzone.errors import InternalError, InvalidInputError, Reason
from collabzone.model import ColumnClass
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

ALPHA = 0.05


SPEC_KEYS = frozenset({"dataset", "entity", "by", "epsilon", "rho"})


def _check_privacy_map(actual: float, charged: float) -> None:
    """OpenDP's own privacy map must not exceed what the ledger is charged."""
    if actual > charged * (1 + 1e-9):
        raise InternalError(f"mechanism loss {actual} exceeds the {charged} charged")


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class DPCount(Technique):
    """DP count of distinct entities, optionally by a public dimension."""

    name = "dp_count"
    summary = "differentially private entity counts (discrete Laplace or Gaussian, OpenDP)"
    rule_specs = (
        RuleSpec(
            "public_domains",
            Merge.PER_DATASET,
            "declared category lists per dimension column",
            dict,
        ),
    )

    def plan(self, spec: Mapping[str, Any], ctx: PlanContext) -> Plan:
        unknown = set(spec) - SPEC_KEYS
        if unknown:
            raise InvalidInputError(f"unknown dp_count spec keys: {', '.join(sorted(unknown))}")
        dataset_name = spec.get("dataset")
        if not isinstance(dataset_name, str):
            raise InvalidInputError("dp_count needs `dataset`: the name of the dataset to count")
        dataset = ctx.dataset(dataset_name)
        entity = spec.get("entity") or next(
            (c.name for c in dataset.columns_of(ColumnClass.JOIN_KEY)), None
        )
        if entity is None or dataset.column(entity) is None:
            raise InvalidInputError(
                f"name the `entity` column (a join_key of {dataset_name!r}) to count"
            )
        by = spec.get("by")
        if by is not None:
            column = dataset.column(by)
            if column is None or column.column_class is not ColumnClass.DIMENSION:
                raise InvalidInputError(f"`by` must name a dimension column of {dataset_name!r}")
        if ("rho" in spec) == ("epsilon" in spec):
            raise InvalidInputError("give exactly one of epsilon (pure DP) or rho (zCDP)")
        if "rho" in spec:
            cost = PrivacyCost(rho=privacy_parameter("rho", spec["rho"]))
        else:
            cost = PrivacyCost(epsilon=privacy_parameter("epsilon", spec["epsilon"]))
        return Plan(
            technique=self.name,
            datasets=(dataset_name,),
            cost={dataset_name: cost},
            columns={dataset_name: tuple(c for c in (entity, by) if c)},
            outputs="noisy counts with 95% confidence intervals",
            details={"entity": entity, "by": by},
        )

    def _categories(
        self, plan: Plan, rules: Mapping[str, Any], ctx: PlanContext
    ) -> list[Any] | None:
        by = plan.details["by"]
        if by is None:
            return None
        declared = (rules.get("public_domains") or {}).get(by)
        if declared is None:
            column = ctx.dataset(plan.datasets[0]).column(by)
            declared = (
                column.domain if column is not None and isinstance(column.domain, list) else None
            )
        return list(declared) if declared is not None else None

    def check(self, plan: Plan, rules: Rules, ctx: PlanContext) -> list[Reason]:
        dataset = plan.datasets[0]
        if (
            plan.details["by"] is not None
            and self._categories(plan, rules.by_dataset.get(dataset, {}), ctx) is None
        ):
            return [
                Reason(
                    "DOMAIN_NOT_PUBLIC",
                    f"public_domains.{plan.details['by']}",
                    "grouping needs a declared public domain for the column (schema domain or the "
                    "agreement's public_domains)",
                )
            ]
        return []

    def run(self, plan: Plan, ctx: RunContext) -> Outcome:
        import opendp.prelude as dp

        dp.enable_features("contrib")
        dataset = plan.datasets[0]
        entity, by = plan.details["entity"], plan.details["by"]
        con = ctx.connection()
        rules = {}
        for agreement in ctx.agreements_for(dataset):
            if agreement.technique == self.name:
                rules = dict(agreement.rules)
        categories = self._categories(plan, rules, ctx)
        if by is None:
            row = con.execute(
                f"SELECT count(DISTINCT {_quote(entity)}) FROM {_quote(dataset)}"
            ).fetchall()[0]
            labels: list[Any] = ["all"]
            exact = [int(row[0]) if row else 0]
        else:
            assert categories is not None
            counts = dict(
                con.execute(
                    f"SELECT grp, count(*) FROM (SELECT {_quote(entity)} AS e, min({_quote(by)}) AS grp "
                    f"FROM {_quote(dataset)} WHERE {_quote(entity)} IS NOT NULL GROUP BY e) GROUP BY grp"
                ).fetchall()
            )
            labels = categories
            exact = [int(counts.get(c, 0)) for c in categories]
        cost = plan.cost[dataset]
        domain = dp.vector_domain(dp.atom_domain(T=int))
        if cost.rho > 0:
            # an entity moves one count by one: L2 sensitivity 1; rho = 1 / (2 scale^2)
            scale = math.sqrt(1 / (2 * cost.rho))
            measurement = dp.m.make_gaussian(domain, dp.l2_distance(T=int), scale=scale)
            _check_privacy_map(measurement.map(1), cost.rho)
            half_width = dp.discrete_gaussian_scale_to_accuracy(scale=scale, alpha=ALPHA)
            mechanism = "discrete Gaussian (OpenDP), rho-zCDP"
        else:
            scale = 1 / cost.epsilon
            measurement = dp.m.make_laplace(domain, dp.l1_distance(T=int), scale=scale)
            _check_privacy_map(measurement.map(1), cost.epsilon)
            half_width = dp.discrete_laplacian_scale_to_accuracy(scale=scale, alpha=ALPHA)
            mechanism = "discrete Laplace (OpenDP), pure epsilon-DP"
        noisy = [
            max(0, int(v)) for v in measurement(exact)
        ]  # post-processing: a count is never negative
        rows = [
            [label, value, max(0, int(value - half_width)), int(value + half_width)]
            for label, value in zip(labels, noisy, strict=True)
        ]
        return Outcome(
            payload={
                "columns": [by or "group", "count", "ci95_low", "ci95_high"],
                "rows": rows,
                "confidence": 1 - ALPHA,
            },
            mechanism=mechanism,
            noise_scale=scale,
            spent={dataset: cost},
            notes=(
                f"each of the {len(rows)} counts is within +/-{half_width:g} of the truth with 95% confidence",
            ),
        )
