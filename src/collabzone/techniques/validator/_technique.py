"""The prediction validator technique (Architecture 2): plan, check, run at the node, release.

Where it runs: always at a node, never in the zone. By default the data owner's node
(``collabzone validator serve`` next to the labels); if the agreement's ``node`` rule names
a mediator entrusted with the (tokenised) labels, the mediator's node runs it, and then the
agreement must also publish ``node_public_key`` so the ML party seals its predictions to
the mediator: the owner never sees them.

What the plan carries: the predictions (inline, or sealed), the options, and a snapshot of
the owner's rules, so the node needs nothing else from the zone but the monitor history
(repeats, cap) and the job's audited spaces (``Zone.job_context``).
A node that refuses (bad tokens, small group, differencing, cap) hands back a payload with
only ``_refused``; :meth:`Validator.release` turns it into the refusal, so nothing is
released or remembered as a submission. A released outcome carries the node's new
disclosure-audit states (``audit_updates``), which the zone stores in the release
transaction (compare-and-swap: a concurrent release makes this one CONCURRENT_RELEASE).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from collabzone.budget import PrivacyCost
from collabzone.errors import InvalidInputError, PolicyRefusal, Reason
from collabzone.model import ColumnClass, Dataset
from collabzone.techniques.base import Outcome, Plan, PlanContext, Rules, RunContext, Technique
from collabzone.techniques.validator import _rules
from collabzone.techniques.validator._node_run import (
    run_at_node,
)
from collabzone.techniques.validator._submission import TASKS, check_submission

REFUSED = "_refused"


def _int_option(spec: Mapping[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = spec.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInputError(f"`{name}` must be an integer from {low} to {high}")
    return value


def _label_column(dataset: Dataset, spec: Mapping[str, Any]) -> str:
    name = spec.get("label") or next((c.name for c in dataset.columns_of(ColumnClass.LABEL)), None)
    column = dataset.column(name) if isinstance(name, str) else None
    if column is None or column.column_class is not ColumnClass.LABEL:
        raise InvalidInputError(f"name the `label` column (class label) of {dataset.name!r}")
    return column.name


def _token_column(dataset: Dataset, spec: Mapping[str, Any]) -> str:
    name = spec.get("token_column") or next(
        (c.name for c in dataset.columns_of(ColumnClass.JOIN_KEY)), None
    )
    column = dataset.column(name) if isinstance(name, str) else None
    if column is None or column.column_class is not ColumnClass.JOIN_KEY:
        raise InvalidInputError(f"{dataset.name!r} needs a join_key column holding record tokens")
    return column.name


def refusal(reasons: list[Reason]) -> dict[str, Any]:
    """The payload a node hands back when it refuses a job."""
    return {REFUSED: [r.__dict__ for r in reasons]}


class Validator(Technique):
    """Scores an ML party's predictions against an owner's private labels at the owner's
    (or a mediator's) node; only aggregate, thresholded, optionally DP-noised metrics leave."""

    name = "validator"
    summary = "prediction validator: aggregate feedback on predictions against private labels"
    placement = "owner"
    rule_specs = _rules.RULE_SPECS

    # -- plan and check (no data) ---------------------------------------------------------

    def plan(self, spec: Mapping[str, Any], ctx: PlanContext) -> Plan:
        dataset_name = spec.get("dataset")
        if not isinstance(dataset_name, str):
            raise InvalidInputError("validator needs `dataset`: the owner's labelled dataset")
        dataset = ctx.dataset(dataset_name)
        task = spec.get("task", "binary")
        if task not in TASKS:
            raise InvalidInputError(f"`task` must be one of {', '.join(TASKS)}")
        label = _label_column(dataset, spec)
        token = _token_column(dataset, spec)
        threshold = spec.get("threshold", 0.5)
        if (
            isinstance(threshold, bool)
            or not isinstance(threshold, int | float)
            or not (0 < threshold < 1)
        ):
            raise InvalidInputError("`threshold` must be a number strictly between 0 and 1")
        epsilon = spec.get("epsilon")
        if epsilon is not None and (
            isinstance(epsilon, bool)
            or not isinstance(epsilon, int | float)
            or not math.isfinite(epsilon)
            or epsilon <= 0
        ):
            raise InvalidInputError("`epsilon` must be a positive, finite number (or omitted)")
        agreements = [a for a in ctx.agreements_for(dataset_name) if a.technique == self.name]
        snapshot, conflicts = _rules.snapshot(agreements)
        if epsilon is None:
            epsilon = _rules.default_epsilon(snapshot)  # a budget makes DP the default
        details: dict[str, Any] = {
            "task": task,
            "label": label,
            "token_column": token,
            "positive_label": str(spec.get("positive_label", "1")),
            "threshold": float(threshold),
            "bins": _int_option(spec, "bins", 20, 2, 200),
            "bands": _int_option(spec, "bands", 10, 1, 50),
            "epsilon": float(epsilon) if epsilon is not None else None,
            "rules": snapshot,
            "conflicts": conflicts,
            "owner": dataset.owner,
        }
        column = dataset.column(label)
        if column is not None and isinstance(column.domain, dict):
            details["label_bounds"] = [column.domain.get("min"), column.domain.get("max")]
        if "sealed" in spec:
            if not isinstance(spec["sealed"], str) or not spec["sealed"]:
                raise InvalidInputError("`sealed` must be the base64 sealed predictions")
            records = spec.get("records")
            if isinstance(records, bool) or not isinstance(records, int) or records < 1:
                raise InvalidInputError("sealed predictions need `records`: how many they hold")
            details["sealed"] = spec["sealed"]
            details["records"] = records
        else:
            doc = spec.get("predictions")
            if not isinstance(doc, Mapping):
                raise InvalidInputError(
                    "send `predictions` ({tokens, predictions[, groups]}) or `sealed`"
                )
            submission = check_submission(doc, task)
            details["predictions"] = submission.as_json()
            details["records"] = len(submission)
            if submission.groups is not None:
                details["group_sizes"] = sorted(
                    int(c) for c in np.unique(np.asarray(submission.groups), return_counts=True)[1]
                )
        node = snapshot.get("node") or dataset.owner
        cost = {dataset_name: PrivacyCost(epsilon=float(epsilon))} if epsilon else {}
        return Plan(
            technique=self.name,
            datasets=(dataset_name,),
            cost=cost,
            columns={dataset_name: (token, label)},
            outputs="aggregate metrics overall, per declared group and per confidence band",
            details=details,
            placement="owner",
            node=node,
        )

    def check(self, plan: Plan, rules: Rules, ctx: PlanContext) -> list[Reason]:
        details = plan.details
        snap = details["rules"]
        owner = details["owner"]
        reasons = []
        for name in details["conflicts"]:
            reasons.append(
                Reason("RULES_CONFLICT", name, "validator agreements disagree on this rule", owner)
            )
        for name in _rules.looser(snap, rules.merged):
            reasons.append(
                Reason(
                    "RULES_CHANGED", name, "the agreement in force is stricter than planned", owner
                )
            )
        if details["records"] < snap["min_records"]:
            reasons.append(
                Reason(
                    "TOO_FEW_RECORDS",
                    "min_records",
                    f"a submission needs at least {snap['min_records']} records",
                    owner,
                )
            )
        small = [s for s in details.get("group_sizes", []) if s < snap["min_group_size"]]
        if small:
            reasons.append(
                Reason(
                    "GROUP_TOO_SMALL",
                    "min_group_size",
                    f"{len(small)} declared group(s) have fewer than {snap['min_group_size']} "
                    "records: merge them or drop the group column",
                    owner,
                )
            )
        if snap["dp_required"] and details["epsilon"] is None:
            reasons.append(
                Reason(
                    "DP_REQUIRED",
                    "dp_required",
                    "the owner requires DP noise: set `epsilon`",
                    owner,
                )
            )
        if plan.node != owner and not snap.get("node_public_key"):
            reasons.append(
                Reason(
                    "PREDICTIONS_EXPOSED",
                    "node_public_key",
                    "a mediator node needs a published key so the owner never sees predictions",
                    owner,
                )
            )
        if snap.get("node_public_key") and "sealed" not in details:
            reasons.append(
                Reason(
                    "NOT_SEALED",
                    "node_public_key",
                    "seal the predictions to the node's public key (submission_spec(public_key=...))",
                    owner,
                )
            )
        if details["task"] == "regression" and details["epsilon"] is None:
            reasons.append(
                Reason(
                    "DP_REQUIRED",
                    "task",
                    "regression errors are weighted by the ML party's own predictions (one "
                    "wild prediction would reveal one record's value): they are released "
                    "only with DP noise; set `epsilon` (the agreement needs error_bound and "
                    "the label column's domain)",
                    owner,
                )
            )
        if details["task"] == "regression" and details["epsilon"] is not None:
            bounds = details.get("label_bounds") or [None, None]
            if snap.get("error_bound") is None or None in bounds:
                reasons.append(
                    Reason(
                        "BOUNDS_MISSING",
                        "error_bound",
                        "DP regression needs the agreement's error_bound and the label "
                        "column's domain {min, max}",
                        owner,
                    )
                )
        return reasons

    # -- run (at the node) ----------------------------------------------------------------

    def run(self, plan: Plan, ctx: RunContext) -> Outcome:
        try:
            return run_at_node(plan, ctx)
        except PolicyRefusal as exc:
            return Outcome(payload=refusal(exc.reasons))
        except InvalidInputError as exc:
            return Outcome(payload=refusal([Reason(exc.code, "submission", exc.message)]))

    # -- release (in the zone) ------------------------------------------------------------

    def release(self, plan: Plan, outcome: Outcome, rules: Rules) -> Outcome:
        payload = dict(outcome.payload)
        if REFUSED in payload:
            owner = plan.details["owner"]
            raise PolicyRefusal(
                [
                    Reason(r["code"], r["rule"], r["message"], r.get("owner") or owner)
                    for r in payload[REFUSED]
                ]
            )
        snap = plan.details["rules"]
        stricter = _rules.looser(snap, rules.merged)
        if stricter:
            raise PolicyRefusal(
                Reason("RULES_CHANGED", stricter[0], "the agreement changed since the plan")
            )
        replayed = bool(payload.get("replayed"))
        epsilon = plan.details["epsilon"]
        dataset = plan.datasets[0]
        spent = dict(outcome.spent)
        if epsilon is not None and not replayed:
            spent = {dataset: PrivacyCost(epsilon=epsilon)}  # charge what was priced, always
        digits = int(rules.get("precision", snap["precision"]) or snap["precision"])
        public = {k: v for k, v in payload.items() if not str(k).startswith("_")}
        self._enforce_sizes(public, snap["min_group_size"])
        rounded: dict[str, Any] = _round(public, digits)
        if "_monitor" in payload:
            rounded["_monitor"] = payload["_monitor"]
        counts = (
            "label counts DP-noised"
            if epsilon is not None
            else f"label counts rounded to multiples of {snap['count_rounding']}"
        )
        scope = "every ML party" if snap["audit_scope"] == "all" else "this ML party"
        return Outcome(
            payload=rounded,
            rows_suppressed=outcome.rows_suppressed,
            mechanism=outcome.mechanism,
            noise_scale=outcome.noise_scale,
            spent=spent,
            notes=(
                *outcome.notes,
                f"{counts}; metrics rounded to {digits} decimals; groups and bands of at "
                f"least {snap['min_group_size']} records; every released set audited with "
                f"the releases of {scope} (atoms of at least {snap['atom_min']} labelled "
                "records, jittered)",
            ),
            audit_updates=outcome.audit_updates,
        )

    @staticmethod
    def _enforce_sizes(payload: dict[str, Any], min_size: int) -> None:
        small = [
            g for g, m in (payload.get("groups") or {}).items() if m.get("records", 0) < min_size
        ] + [b for b in payload.get("calibration") or [] if b.get("records", 0) < min_size]
        if small:
            raise PolicyRefusal(
                Reason("GROUP_TOO_SMALL", "min_group_size", "a cell below the minimum size")
            )


def _round(value: Any, digits: int) -> Any:
    if isinstance(value, float):
        return round(value, digits) if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {k: _round(v, digits) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_round(v, digits) for v in value]
    return value
