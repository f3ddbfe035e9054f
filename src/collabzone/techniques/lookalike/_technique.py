"""The ``lookalike`` technique: the bank's seed labels train a model on the partner's
features inside the zone; the partner gets an audience of its own non-overlap customers.

Request spec (submitted by the owner of the seed dataset)::

    {"seed": "bank_seed", "label": "bought_x",             # seed: link_<key> + a label
     "features": "partner_customers",                     # partner: link_<key> + features
     "columns": ["age", "income", "region"],              # optional: default all
     "match_key": "email",                                # optional: first shared key
     "model": "logistic_regression" | "gradient_boosting"  # allowlisted, or
              | {"sealed": "<code sha256>"},              # the requester's sealed module
     "audience_size": 500, "score_threshold": 0.6,        # threshold optional
     "label_epsilon": 1.0,                                # optional randomized response
     "quality_epsilon": 0.5}                              # optional DP on AUC / lift

The overlap (partner rows whose token is in the seed) is the training set, a held-out
third of it measures quality. Every *non-overlap* partner customer is scored; overlap
members are never candidates (their presence would tell the partner who banks with the
bank). What leaves is split by party (:attr:`Outcome.parts`): the partner reads the
audience as its own tokens, the requester reads the audience size and rounded AUC / lift.

Rules (agreement ``rules``, on the features dataset unless said): ``min_audience`` (the
smallest audience that may be delivered; required), ``allowed_models`` (required list),
``delivery_rate`` (share of look-alikes whose delivery coin may show heads; at most, 0.25
when unset), ``min_training_rows`` (overlap rows needed to train and to release quality),
``max_label_epsilon`` (labels must be protected with at most this epsilon; the seed
owner's own dataset carries no agreement, so a partner demands it, or the seed owner
sets ``label_epsilon`` on its own), ``quality_epsilon`` (the AUC and lift told the seed
owner carry OpenDP Laplace noise at this epsilon, at most; charged to the features
dataset's ledger for the seed owner, so its ``epsilon_budget`` bounds how often quality
is asked; unset: rounded and thresholded only). When the spec sets no
``quality_epsilon``, the plan takes the agreements' own.

A sealed model (:mod:`._sealed_model`) replaces ``allowed_models`` by
``allowed_code_sha256`` (the hashes the partner approved), may be capped by
``max_cpu_seconds`` / ``max_memory_mb`` / ``max_wall_seconds``, and needs
``quality_epsilon``: its scores are chosen by code the partner cannot read.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from collabzone.budget import PrivacyCost
from collabzone.errors import InvalidInputError, Reason
from collabzone.model import ColumnClass, Dataset
from collabzone.sandbox import read_code
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
from collabzone.techniques.lookalike import _model, _rules, _sealed_model
from collabzone.techniques.lookalike._view import lookalike_view
from collabzone.techniques.view import ResultView

TOKEN_PREFIX = "link_"
DEFAULT_DELIVERY_RATE = 0.25
DEFAULT_MIN_TRAINING_ROWS = 50
COIN_PURPOSE = "lookalike:delivery-coin"
_FIELDS = {
    "seed", "label", "features", "columns", "match_key", "model", "audience_size",
    "score_threshold", "label_epsilon", "quality_epsilon",
}  # fmt: skip


def _model_name(details: Mapping[str, Any]) -> str:
    sealed = details.get("sealed")
    return f"sealed:{sealed['code_sha256']}" if sealed else str(details["model"])


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _keys(dataset: Dataset) -> list[str]:
    return [
        c.name[len(TOKEN_PREFIX) :]
        for c in dataset.columns_of(ColumnClass.JOIN_KEY)
        if c.name.startswith(TOKEN_PREFIX)
    ]


class Lookalike(Technique):
    """Look-alike audience: seed labels x partner features -> partner's own audience."""

    name: ClassVar[str] = "lookalike"
    summary: ClassVar[str] = (
        "look-alike audience: the seed owner's labels train an allowlisted model on a "
        "partner's features; the audience goes only to the partner, quality to the seed owner"
    )
    rule_specs: ClassVar[tuple[RuleSpec, ...]] = (
        RuleSpec("min_audience", Merge.AT_LEAST, "smallest audience that may be delivered", int),
        RuleSpec("allowed_models", Merge.SUBSET, "allowlisted models that may be trained", list),
        RuleSpec("delivery_rate", Merge.AT_MOST, "share of look-alikes whose coin is heads", float),
        RuleSpec("min_training_rows", Merge.AT_LEAST, "overlap rows needed to train", int),
        RuleSpec("max_label_epsilon", Merge.AT_MOST, "labels must be protected with DP", float),
        RuleSpec(
            "quality_epsilon", Merge.AT_MOST, "DP epsilon of the AUC / lift told", (int, float)
        ),
        RuleSpec("allowed_code_sha256", Merge.SUBSET, "sealed models approved to run", list),
        RuleSpec(
            "max_cpu_seconds", Merge.AT_MOST, "CPU seconds a sealed model may use", (int, float)
        ),
        RuleSpec("max_memory_mb", Merge.AT_MOST, "memory a sealed model may use", (int, float)),
        RuleSpec(
            "max_wall_seconds", Merge.AT_MOST, "wall time a sealed model may use", (int, float)
        ),
    )

    def plan(self, spec: Mapping[str, Any], ctx: PlanContext) -> Plan:
        unknown = set(spec) - _FIELDS
        if unknown:
            raise InvalidInputError(f"unknown lookalike spec fields {sorted(unknown)}")
        seed = ctx.dataset(str(spec.get("seed", "")))
        features = ctx.dataset(str(spec.get("features", "")))
        if seed.name == features.name:
            raise InvalidInputError("'seed' and 'features' must be two different datasets")
        if seed.owner != ctx.requester.name:
            raise InvalidInputError(
                f"the seed dataset {seed.name!r} must be the requester's own: its labels are "
                "the requester's to use"
            )
        label = seed.column(str(spec.get("label", "")))
        if label is None or label.column_class != ColumnClass.LABEL:
            raise InvalidInputError(f"'label' must name a label-class column of {seed.name!r}")
        shared = [k for k in _keys(seed) if k in set(_keys(features))]
        key = str(spec.get("match_key") or (shared[0] if shared else ""))
        if key not in shared:
            raise InvalidInputError(
                f"'match_key' must be a link_<key> join_key of both datasets (shared: {shared})"
            )
        usable = {
            c.name: c.column_class
            for c in features.columns
            if c.column_class in (ColumnClass.MEASURE, ColumnClass.DIMENSION)
        }
        model = spec.get("model", "logistic_regression")
        sealed: dict[str, Any] | None = None
        if isinstance(model, Mapping) and set(model) == {"sealed"}:
            module, manifest = _sealed_model.find_sealed_model(model["sealed"], features, ctx)
            ((_, declared),) = manifest.inputs.values()
            if spec.get("columns") and list(spec["columns"]) != list(declared):
                raise InvalidInputError(
                    f"'columns' of a sealed model are those its manifest declares: {declared}"
                )
            if spec.get("score_threshold") is not None:
                raise InvalidInputError(
                    "'score_threshold' cannot be used with a sealed model (the audience size "
                    "told you would then be the code's choice): ask for an audience_size"
                )
            sealed = {"module": module.name, "code_sha256": manifest.code_sha256,
                      "entry": manifest.entry, "limits": manifest.limits.as_dict()}  # fmt: skip
            model = "sealed"
        elif model not in _model.MODELS:
            raise InvalidInputError(
                f"'model' must be one of {_model.MODELS} or {{'sealed': <code sha256>}}, "
                f"got {model!r}"
            )
        columns = list(declared if sealed else spec.get("columns") or usable)
        bad = [c for c in columns if c not in usable]
        if bad or not columns:
            raise InvalidInputError(
                f"'columns' must be measure or dimension columns of {features.name!r}: "
                f"{bad or 'none given'} (usable: {sorted(usable)})"
            )
        size = spec.get("audience_size")
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise InvalidInputError("'audience_size' must be a positive integer")
        threshold = spec.get("score_threshold")
        if threshold is not None and not (isinstance(threshold, int | float) and 0 < threshold < 1):
            raise InvalidInputError("'score_threshold' must be a number between 0 and 1")
        epsilon = spec.get("label_epsilon")
        if epsilon is not None and not (isinstance(epsilon, int | float) and epsilon > 0):
            raise InvalidInputError("'label_epsilon' must be a positive number")
        quality_epsilon = spec.get("quality_epsilon")
        if quality_epsilon is None:
            quality_epsilon = _rules.agreed_quality_epsilon(features.name, ctx)
        elif not (isinstance(quality_epsilon, int | float) and quality_epsilon > 0):
            raise InvalidInputError("'quality_epsilon' must be a positive number")
        cost = {seed.name: PrivacyCost(epsilon=float(epsilon))} if epsilon else {}
        if quality_epsilon:
            cost[features.name] = PrivacyCost(epsilon=float(quality_epsilon))
        token = f"{TOKEN_PREFIX}{key}"
        touched = {seed.name: (token, label.name), features.name: (token, *columns)}
        outputs = (
            f"audience of up to {size} tokens to {features.owner}; size and quality to {seed.owner}"
        )
        if sealed:
            touched[sealed["module"]] = ("part", "chunk")
            outputs += "; " + _sealed_model.declaration(sealed, columns)
        return Plan(
            technique=self.name,
            datasets=tuple(touched),
            cost=cost,
            columns=touched,
            outputs=outputs,
            details={
                "match_key": key,
                "label": label.name,
                "measures": [c for c in columns if usable[c] == ColumnClass.MEASURE],
                "dimensions": [c for c in columns if usable[c] == ColumnClass.DIMENSION],
                "model": model,
                "sealed": sealed,
                "audience_size": size,
                "score_threshold": threshold,
                "label_epsilon": float(epsilon) if epsilon else None,
                "quality_epsilon": float(quality_epsilon) if quality_epsilon else None,
                "seed_owner": seed.owner,
                "partner": features.owner,
            },
        )

    def check(self, plan: Plan, rules: Rules, ctx: PlanContext) -> list[Reason]:
        d = plan.details
        reasons = []
        minimum = rules.get("min_audience")
        if not isinstance(minimum, int) or minimum < 1:
            reasons.append(
                Reason("MIN_AUDIENCE_MISSING", "min_audience", "the agreement must set an "
                       "integer min_audience >= 1 (the smallest audience it lets out)")
            )  # fmt: skip
        elif d["audience_size"] < minimum:
            reasons.append(
                Reason("AUDIENCE_TOO_SMALL", "min_audience",
                       f"audience_size must be at least {minimum}")
            )  # fmt: skip
        if d.get("sealed"):
            reasons.extend(_sealed_model.reasons(d["sealed"], rules, d.get("quality_epsilon")))
        elif d["model"] not in (rules.get("allowed_models") or []):
            reasons.append(
                Reason("MODEL_NOT_ALLOWED", "allowed_models",
                       f"model {d['model']!r} is not in the agreement's allowed_models")
            )  # fmt: skip
        cap = rules.get("max_label_epsilon")
        epsilon = d.get("label_epsilon")
        if cap is not None and (epsilon is None or epsilon > float(cap)):
            reasons.append(
                Reason("LABEL_DP_REQUIRED", "max_label_epsilon",
                       f"labels must be protected: set label_epsilon <= {cap}")
            )  # fmt: skip
        reasons.extend(_rules.quality_reasons(rules, d.get("quality_epsilon")))
        rate = rules.get("delivery_rate", DEFAULT_DELIVERY_RATE)
        if not isinstance(rate, int | float) or not 0 < rate <= 1:
            reasons.append(
                Reason("DELIVERY_RATE_INVALID", "delivery_rate", "must be in (0, 1]")
            )  # fmt: skip
        return reasons

    def run(self, plan: Plan, ctx: RunContext) -> Outcome:
        d = plan.details
        seed, features = plan.datasets[:2]
        token = _q(f"{TOKEN_PREFIX}{d['match_key']}")
        columns = [*d["measures"], *d["dimensions"]]
        select = ", ".join(f"p.{_q(c)}" for c in columns)
        con = ctx.connection()
        train = con.execute(
            f"SELECT {select}, CAST(s.{_q(d['label'])} AS BOOLEAN) AS __label "
            f"FROM {_q(features)} p JOIN (SELECT DISTINCT {token}, {_q(d['label'])} "
            f"FROM {_q(seed)} WHERE {token} <> '') s ON p.{token} = s.{token} "
            f"ORDER BY p.{token}"
        ).df()
        candidates = con.execute(
            f"SELECT p.{token} AS __token, {select} FROM {_q(features)} p "
            f"WHERE p.{token} <> '' AND p.{token} NOT IN "
            f"(SELECT {token} FROM {_q(seed)} WHERE {token} IS NOT NULL) ORDER BY p.{token}"
        ).df()
        minimum_rows = self._rule(ctx, plan, "min_training_rows", DEFAULT_MIN_TRAINING_ROWS, max)
        if len(train) < minimum_rows:
            raise InvalidInputError(
                f"the overlap is too small to train on (under min_training_rows {minimum_rows})"
            )
        labels = train.pop("__label").to_numpy(dtype=bool)
        order = ctx.rng.permutation(len(train))
        held = order[: len(train) // 3]
        fit = order[len(train) // 3 :]
        fit_labels = labels[fit]
        if d.get("label_epsilon"):  # the model (hence the audience) sees protected labels
            fit_labels = _model.randomized_response(fit_labels, float(d["label_epsilon"]))
        if fit_labels.all() or not fit_labels.any():
            raise InvalidInputError("the seed labels of the overlap are all one class")
        tokens = candidates.pop("__token").astype(str).tolist()
        if d.get("sealed"):
            sealed = d["sealed"]
            both = _sealed_model.sealed_scores(
                read_code(ctx.table(sealed["module"])), sealed["entry"], sealed["limits"],
                train.iloc[fit].to_dict("records"), fit_labels,
                [*train.iloc[held].to_dict("records"), *candidates.to_dict("records")],
                ctx.rng,
            )  # fmt: skip
            held_scores, scores = both[: len(held)], both[len(held) :]
        else:
            pipeline = _model.build_model(d["model"], d["measures"], d["dimensions"], seed=0)
            with _model.single_threaded():
                pipeline.fit(train.iloc[fit], fit_labels)
                held_scores = pipeline.predict_proba(train.iloc[held])[:, 1]
                scores = (
                    pipeline.predict_proba(candidates)[:, 1] if tokens else np.zeros(0, dtype=float)
                )
        rate = self._rule(ctx, plan, "delivery_rate", DEFAULT_DELIVERY_RATE, min)
        heads = _model.coin(ctx.derive_key(COIN_PURPOSE), float(rate))
        audience = _model.draw_audience(
            tokens, scores, int(d["audience_size"]), heads, d.get("score_threshold")
        )
        quality_epsilon = d.get("quality_epsilon")
        if quality_epsilon:
            metrics = _model.dp_quality(
                labels[held], held_scores, minimum_rows // 3, float(quality_epsilon)
            )
        else:
            metrics = _model.quality(labels[held], held_scores, minimum_rows // 3)
        bank_part: dict[str, Any] = {"quality": metrics, "delivery_rate": float(rate)}
        if quality_epsilon:
            bank_part["quality_epsilon"] = float(quality_epsilon)
        return Outcome(
            payload={"model": _model_name(d), "audience_size": len(audience)},
            mechanism="lookalike",
            spent=dict(plan.cost),
            assessment={
                "audience_to": str(d["partner"]),
                "overlap_members_in_audience": 0,
                "delivery_rate": float(rate),
                "seed_membership_advantage_bound": float(rate),
                "label_epsilon": d.get("label_epsilon"),
            },
            parts={
                str(d["partner"]): {
                    "audience": {"columns": ["token"], "rows": [[t] for t in audience]},
                    "match_key": d["match_key"],
                },
                str(d["seed_owner"]): bank_part,
            },
        )

    @staticmethod
    def _rule(ctx: RunContext, plan: Plan, name: str, default: Any, pick: Any) -> Any:
        found = [
            a.rules[name]
            for dataset in plan.datasets
            for a in ctx.agreements_for(dataset)
            if a.technique == "lookalike" and isinstance(a.rules.get(name), int | float)
        ]
        return pick(found) if found else default

    def result_view(self, payload: Mapping[str, Any]) -> ResultView:
        """Size, model, quality and delivery facts; the partner's audience table (see _view)."""
        return lookalike_view(payload)

    def release(self, plan: Plan, outcome: Outcome, rules: Rules) -> Outcome:
        """Deliver only an audience of at least ``min_audience``, to the partner alone;
        labels protected as the seed's agreement demands (else nothing leaves)."""
        minimum = int(rules.get("min_audience") or 0)
        if minimum < 1:
            raise InvalidInputError("lookalike cannot be released without min_audience >= 1")
        size = int(outcome.payload["audience_size"])
        if size < minimum:
            raise InvalidInputError(
                f"only {'some' if size else 'no'} candidates qualified, fewer than the "
                f"agreement's min_audience {minimum}: lower score_threshold or ask again "
                "when the partner's dataset has grown"
            )
        cap = rules.get("max_label_epsilon")
        epsilon = plan.details.get("label_epsilon")
        if cap is not None and (epsilon is None or epsilon > float(cap)):
            raise InvalidInputError("labels were not protected as the agreement demands")
        partner = str(plan.details["partner"])
        notes = [
            f"the audience went to {partner} only and holds no overlap member; each "
            f"look-alike was delivered only if its delivery coin showed heads (rate "
            f"{outcome.parts[str(plan.details['seed_owner'])]['delivery_rate']})",
        ]
        if _rules.quality_reasons(rules, plan.details.get("quality_epsilon")):
            raise InvalidInputError("quality was not protected as the agreement demands")
        mechanism = ["lookalike"]
        if epsilon:
            mechanism.append("randomized_response")
            notes.append(f"seed labels protected by randomized response at epsilon {epsilon}")
        quality_epsilon = plan.details.get("quality_epsilon")
        if quality_epsilon:
            mechanism.append("laplace")
            notes.append(
                f"AUC and lift released with OpenDP Laplace noise at epsilon {quality_epsilon} "
                f"(half each), charged to {plan.datasets[1]}"
            )
        return Outcome(
            payload=dict(outcome.payload),
            mechanism="+".join(mechanism),
            spent=dict(outcome.spent),
            notes=tuple(notes),
            parts=outcome.parts,
            assessment=outcome.assessment,
            released_to=(partner,),
        )
