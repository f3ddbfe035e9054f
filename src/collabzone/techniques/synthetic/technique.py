"""The ``synthetic`` technique: a differentially private synthetic copy of one dataset, or
of a join of datasets over their linked tokens (bounded to one row per person: :mod:`.join`).

Each owner's agreement grants ``synthetic`` (optionally limiting ``methods``); the analyst
asks for a synthetic version of a dataset (or join) with a method and a privacy budget, given as
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
from collabzone.model import Column, ColumnClass, ColumnType, Dataset
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
from collabzone.techniques.synthetic.join import Source, join_sources
from collabzone.techniques.view import ResultView

METHODS = ("mst", "aim", "privbayes")
PURE = ("privbayes",)
"""Methods under pure epsilon-DP: the budget is ``epsilon`` alone, charged as it is."""
MECHANISMS = {
    "mst": "MST (McKenna et al. 2021): OpenDP Gaussian + noisy max, rho-zCDP",
    "aim": "AIM (McKenna et al. 2022): OpenDP Gaussian + noisy max, rho-zCDP",
    "privbayes": "PrivBayes (Zhang et al. 2017): OpenDP noisy max + discrete Laplace, pure DP",
}
SPEC_KEYS = frozenset(
    {
        *("dataset", "datasets", "on", "name", "method", "columns"),
        *("epsilon", "delta", "rho", "rows", "bins", "iters"),
        *("degree", "max_cells", "max_model_size"),
    }
)
METHOD_OPTIONS: dict[str, dict[str, tuple[float, float]]] = {
    "mst": {},
    "aim": {"degree": (2, 3), "max_cells": (100, 1_000_000), "max_model_size": (0.1, 1024.0)},
    "privbayes": {"degree": (1, 3)},
}
"""Each method's own options and their allowed ranges: AIM's workload (marginals of up to
``degree`` columns with at most ``max_cells`` cells) and model size in MB, PrivBayes's
number of parents per attribute (``degree``)."""
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


def _eligible(column: Column) -> bool:
    return column.column_class not in NEVER


def _sources(spec: Mapping[str, Any], ctx: PlanContext) -> tuple[Source, ...]:
    """What the request synthesises: one dataset (``dataset``) or the join of several on
    their linked tokens (``datasets``, optional ``on``); see :mod:`.join`."""
    single, several = spec.get("dataset"), spec.get("datasets")
    if (single is None) == (several is None):
        raise InvalidInputError(
            "synthetic needs `dataset` (one dataset) or `datasets` (a join on linked tokens)"
        )
    columns = spec.get("columns")
    if single is not None:
        if not isinstance(single, str):
            raise InvalidInputError("`dataset` must be a dataset name")
        if "on" in spec:
            raise InvalidInputError("`on` applies to a join: give `datasets`")
        dataset = ctx.dataset(single)
        names = columns or [c.name for c in dataset.columns if _eligible(c)]
        if not isinstance(names, list) or not all(isinstance(c, str) for c in names):
            raise InvalidInputError("`columns` must be a list of column names")
        return (Source(single, None, tuple((c, c) for c in names)),)
    if (
        not isinstance(several, list)
        or len(several) < 2
        or not all(isinstance(d, str) for d in several)
    ):
        raise InvalidInputError("`datasets` must list two or more dataset names to join")
    on = spec.get("on", {})
    if not isinstance(on, Mapping):
        raise InvalidInputError("`on` maps each dataset to its token column")
    return join_sources([ctx.dataset(d) for d in several], on, columns, _eligible)


def _check_table_size(sources: tuple[Source, ...], ctx: PlanContext, bins: Any) -> None:
    """Refuse, before anything is measured, a PrivBayes whose tables would be too big."""
    from collabzone.techniques.synthetic.encode import table_codec
    from collabzone.techniques.synthetic.privbayes import MAX_TABLE_CELLS, table_cells

    if isinstance(bins, bool) or not isinstance(bins, int) or not 2 <= bins <= 256:
        return  # refused with its own message below
    domains = {
        new: column.domain
        for s in sources
        for old, new in s.columns
        if (column := ctx.dataset(s.dataset).column(old)) is not None
    }
    cells = table_cells(table_codec(domains, bins=bins).shape, 1)
    if cells > MAX_TABLE_CELLS:
        raise InvalidInputError(
            f"PrivBayes would measure tables of up to {cells} cells (limit {MAX_TABLE_CELLS}): "
            "ask for fewer `bins` or fewer columns with large domains"
        )


def method_options(spec: Mapping[str, Any], method: str) -> dict[str, Any]:
    """The method's own options the request gives (``degree``, ``max_cells``,
    ``max_model_size``), checked against their ranges; the owners see them in the plan."""
    allowed = METHOD_OPTIONS[method]
    options: dict[str, Any] = {}
    for key in ("degree", "max_cells", "max_model_size"):
        if key not in spec:
            continue
        if key not in allowed:
            users = [m for m, opts in METHOD_OPTIONS.items() if key in opts]
            raise InvalidInputError(
                f"`{key}` is an option of {' and '.join(users)}, not of {method}"
            )
        value, (low, high) = spec[key], allowed[key]
        integral = key != "max_model_size"
        kinds = (int,) if integral else (int, float)
        if isinstance(value, bool) or not isinstance(value, kinds) or not low <= value <= high:
            what = "an integer" if integral else "a number"
            raise InvalidInputError(f"{key} of {method} must be {what} from {low:g} to {high:g}")
        options[key] = int(value) if integral else float(value)
    return options


def _check_columns(dataset: Dataset, columns: list[str]) -> None:
    for column_name in columns:
        column = dataset.column(column_name)
        if column is None:
            raise InvalidInputError(f"{dataset.name!r} has no column {column_name!r}")
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


class Synthetic(Technique):
    """Differentially private synthetic data (MST or AIM on Private-PGM, PrivBayes; every
    measurement OpenDP's)."""

    name = "synthetic"
    summary = "differentially private synthetic table (MST, AIM: zCDP; PrivBayes: pure DP)"
    rule_specs = (
        RuleSpec(
            "methods",
            Merge.SUBSET,
            "synthesis methods the owner allows (mst, aim, privbayes)",
            list,
        ),
    )

    def plan(self, spec: Mapping[str, Any], ctx: PlanContext) -> Plan:
        unknown = set(spec) - SPEC_KEYS
        if unknown:
            raise InvalidInputError(f"unknown synthetic spec keys: {', '.join(sorted(unknown))}")
        sources = _sources(spec, ctx)
        method = spec.get("method", "mst")
        if method not in METHODS:
            raise InvalidInputError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
        width = sum(len(s.columns) for s in sources)
        if width < 2:
            raise InvalidInputError("synthetic needs at least two `columns`")
        for source in sources:
            _check_columns(ctx.dataset(source.dataset), [c for c, _ in source.columns])
        if method in PURE:
            if "rho" in spec or "delta" in spec or "epsilon" not in spec:
                raise InvalidInputError(
                    f"{method} is pure epsilon-DP: give `epsilon` only (no rho, no delta)"
                )
            epsilon = privacy_parameter("epsilon", spec["epsilon"])
            budget = {"epsilon": epsilon}  # its OpenDP privacy maps sum to at most this
            cost = PrivacyCost(epsilon=epsilon)
            _check_table_size(sources, ctx, spec.get("bins", 16))
        elif "rho" in spec:
            if "epsilon" in spec:
                raise InvalidInputError("give either rho or epsilon (with delta), not both")
            rho = privacy_parameter("rho", spec["rho"])
            budget = {"rho": rho}
            cost = PrivacyCost(rho=rho)
        elif "epsilon" in spec:
            epsilon = privacy_parameter("epsilon", spec["epsilon"])
            delta = privacy_parameter("delta", spec.get("delta", 1e-6))
            budget = {"rho": rho_for(epsilon, delta)}
            cost = PrivacyCost(epsilon=epsilon, delta=delta)
        else:
            raise InvalidInputError("give a budget: rho, or epsilon (and delta, default 1e-6)")
        names = [src.dataset for src in sources]
        target = spec.get("name", f"{'_'.join(names)}_synthetic")
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
        options = method_options(spec, method)
        joined = f" of the join of {', '.join(names)} on linked tokens" if len(names) > 1 else ""
        return Plan(
            technique=self.name,
            datasets=tuple(names),
            # one person moves the (bounded) joined table by one row: every owner's budget
            # pays the whole cost, as every owner's people are protected by it
            cost={n: cost for n in names},
            columns={
                src.dataset: ((src.key,) if src.key else ()) + tuple(c for c, _ in src.columns)
                for src in sources
            },
            outputs=f"a synthetic table of {width} columns{joined} ({method.upper()}, "
            + ", ".join(f"{k}={v:.6g}" for k, v in {**budget, **options}.items())
            + ")",
            details={
                "sources": [src.as_dict() for src in sources],
                "method": method,
                "rho": budget.get("rho"),
                "epsilon": budget.get("epsilon"),
                "bins": bins,
                "iters": iters,
                "rows": rows,
                "name": target,
                "options": options,
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

        sources = [Source.of(d) for d in plan.details["sources"]]
        frame, models = _read(sources, ctx)
        columns = list(models)
        codec = table_codec({c: models[c].domain for c in columns}, bins=plan.details["bins"])
        seed = int(ctx.rng.integers(2**31))
        method = plan.details["method"]
        options: dict[str, Any] = dict(plan.details.get("options") or {})
        try:
            if method == "privbayes":
                from collabzone.techniques.synthetic.privbayes import privbayes

                # a public bound on the rows: the catalogue's counts (a join has at most
                # one row per person, so no more than its smallest side)
                bound = min(ctx.dataset(d).row_count for d in plan.datasets)
                result: Any = privbayes(
                    codec.encode(frame),
                    codec.shape,
                    plan.details["epsilon"],
                    max_rows=max(bound, 1),
                    rows=plan.details["rows"],
                    seed=seed,
                    rng=ctx.rng,
                    **options,
                )
            else:
                generate = aim_module.aim if method == "aim" else mst_module.mst
                result = generate(
                    codec.encode(frame),
                    codec.shape,
                    plan.details["rho"],
                    rows=plan.details["rows"],
                    iters=plan.details["iters"],
                    seed=seed,
                    **options,
                )
        except Exception as exc:  # measurements may already have run: charge them
            raise FailedAfterSpending(
                f"{method.upper()} failed after measuring ({type(exc).__name__}); "
                "the budget is charged",
                dict(plan.cost),
            ) from exc
        synthetic = codec.decode(result.codes, ctx.rng)
        specs = []
        for c in columns:
            column = models[c]
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
            spec["name"], spec["unique"] = c, False
            specs.append(spec)
        rows = synthetic.astype(object).values.tolist()
        cost = plan.cost[plan.datasets[0]]
        names = " joined with ".join(plan.datasets)
        derived = DerivedDataset(
            name=plan.details["name"],
            columns=tuple(specs),
            rows=tuple(tuple(r) for r in rows),
            provenance={
                **_provenance(sources, ctx),
                "method": plan.details["method"],
                **cost.as_dict(),
                # the zCDP budget the request's (epsilon, delta) converts to
                **({"rho": plan.details["rho"]} if plan.details.get("rho") is not None else {}),
            },
            description=f"DP synthetic version of {names} ({plan.details['method'].upper()})",
        )
        privacy = {
            **{k: v for k, v in cost.as_dict().items() if v},
            **(
                {"epsilon_spent": result.spend.rho}
                if method in PURE
                else {"rho": plan.details["rho"], "rho_spent": result.spend.rho}
            ),
            "opendp_measurements": len(result.spend.parts),
        }
        if isinstance(result, mst_module.MSTResult):
            structure: dict[str, Any] = {"tree": [list(p) for p in result.tree]}
        elif method == "privbayes":
            structure = {"network": [[c, list(p)] for c, p in result.network]}
        else:
            structure = {"measured": [list(c) for c in result.measured]}
        unit = "epsilon" if method in PURE else "rho"
        budget = plan.details[unit]
        return Outcome(
            payload={
                "columns": columns,
                "rows": rows,
                "dataset": plan.details["name"],
                "method": method,
                **structure,
                "report": report_payload(codec, result.codes, result.measurements, privacy),
            },
            mechanism=MECHANISMS[method],
            spent=dict(plan.cost),
            derived=derived,
            notes=(
                f"{method.upper()} spent {unit}={result.spend.rho:.6g} of {budget:.6g} over "
                f"{len(result.spend.parts)} OpenDP measurements",
                "the table is post-processing: analyses of it spend no further budget",
            ),
        )


def _read(sources: list[Source], ctx: RunContext) -> tuple[Any, dict[str, Column]]:
    """The table to synthesise (one dataset, or the person-bounded join of several) with
    its columns' models under their names in the synthetic table."""
    from collabzone.techniques.synthetic.join import bounded_join, one_row_per_person

    models: dict[str, Column] = {}
    for source in sources:
        dataset = ctx.dataset(source.dataset)
        for column, new in source.columns:
            model = dataset.column(column)
            assert model is not None  # checked by plan
            models[new] = model
    if len(sources) == 1 and sources[0].key is None:
        # one dataset: bounded per person too when it has an entity column (its first
        # join key), so a person an owner holds many rows of weighs one row, as in a join
        dataset = ctx.dataset(sources[0].dataset)
        entity = next(iter(dataset.columns_of(ColumnClass.JOIN_KEY)), None)
        if entity is None:
            return ctx.table(dataset.name).select(list(models)).to_pandas(), models
        frame = ctx.table(dataset.name).select([entity.name, *models]).to_pandas()
        bounded = one_row_per_person(frame, entity.name, ctx.rng)
        return bounded[list(models)].reset_index(drop=True), models
    frames = {
        s.dataset: ctx.table(s.dataset).select([s.key, *(c for c, _ in s.columns)]).to_pandas()
        for s in sources
    }
    return bounded_join(frames, sources, ctx.rng), models


def _provenance(sources: list[Source], ctx: RunContext) -> dict[str, Any]:
    if len(sources) == 1:
        dataset = ctx.dataset(sources[0].dataset)
        return {"source": dataset.name, "source_version": dataset.version}
    return {
        "sources": [
            {"dataset": s.dataset, "version": ctx.dataset(s.dataset).version, "token": s.key}
            for s in sources
        ],
        "join": "inner join on linked tokens, one row per token per dataset",
    }
