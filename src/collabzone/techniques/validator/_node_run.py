"""The node side of the validator: join predictions to local labels, monitor, measure.

Runs where the labels are (the owner's node or a mediator's), reached only through the
:class:`~collabzone.techniques.base.RunContext` the node builds. Raises ``PolicyRefusal``
for anything the owner's rules forbid; :meth:`Validator.run` turns that into a payload the
zone's release turns back into the refusal.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from collabzone.budget import PrivacyCost
from collabzone.errors import InvalidInputError, PolicyRefusal, Reason
from collabzone.techniques.base import Outcome, Plan, RunContext
from collabzone.techniques.validator import _feedback, _monitor
from collabzone.techniques.validator._submission import Submission, check_submission, unseal

NAME = "validator"
SEALING_PURPOSE = "validator/sealing"
MONITOR_PURPOSE = "validator/monitor"


def _submission(plan: Plan, ctx: RunContext) -> Submission:
    details = plan.details
    doc = details.get("predictions")
    if "sealed" in details:
        doc = unseal(details["sealed"], ctx.derive_key(SEALING_PURPOSE))
    if not isinstance(doc, Mapping):
        raise InvalidInputError("the request carries no predictions")
    submission = check_submission(doc, details["task"])
    if len(submission) != details["records"]:
        raise InvalidInputError("the sealed predictions do not hold the declared record count")
    return submission


def run_at_node(plan: Plan, ctx: RunContext) -> Outcome:
    """Validate the plan's predictions against the node's local labels (raises refusals)."""
    details, snap = plan.details, plan.details["rules"]
    dataset = plan.datasets[0]
    submission = _submission(plan, ctx)
    table = ctx.table(dataset).select([details["token_column"], details["label"]])
    owner_tokens = table.column(0).to_pylist()
    owner_labels = table.column(1).to_pylist()
    label_of = dict(zip(owner_tokens, owner_labels, strict=True))
    unknown = sum(1 for t in submission.tokens if t not in label_of)
    if unknown:
        raise InvalidInputError(
            f"{unknown} submitted token(s) are not in {dataset!r}: make tokens with the key "
            "shared with the owner, from the record IDs the owner published"
        )
    keep = [label_of[t] is not None for t in submission.tokens]
    tokens = [t for t, k in zip(submission.tokens, keep, strict=True) if k]
    predictions = np.array(
        [p for p, k in zip(submission.predictions, keep, strict=True) if k], dtype=np.float64
    )
    groups = (
        [g for g, k in zip(submission.groups, keep, strict=True) if k]
        if submission.groups is not None
        else None
    )
    raw = [label_of[t] for t in tokens]
    _check_sizes(len(tokens), groups, snap)
    if details["task"] == "binary":
        labels = np.array([int(_is_positive(v, details["positive_label"])) for v in raw])
    else:
        try:
            labels = np.array([float(v) for v in raw], dtype=np.float64)
        except (TypeError, ValueError):
            raise InvalidInputError(
                "the owner's label column is not numeric: a regression needs numeric labels"
            ) from None
        if not np.isfinite(labels).all():
            raise InvalidInputError("the owner's label column holds NaN or infinite values")
    history = _history(ctx, dataset, snap)
    _check_cap(history, snap, ctx)
    key = ctx.derive_key(MONITOR_PURPOSE)
    if any(h.get("key_id") != _monitor.key_id(key) for h in history):
        # digests under another key never match: monitoring would silently stop
        raise PolicyRefusal(
            Reason(
                "MONITOR_KEY_CHANGED",
                "min_difference",
                "the node's monitor key differs from the one earlier submissions were "
                "recorded under: the node operator must restore the node keyring",
            )
        )
    # the monitor sees every submitted record, labelled or not: otherwise adding a record
    # without a label would pass as "no change" and reveal that it has none
    every = np.asarray(submission.predictions, dtype=np.float64)
    token_d, record_d = _monitor.digests(
        key, submission.tokens, list(submission.predictions), submission.groups
    )
    params = {k: details[k] for k in ("task", "threshold", "bins", "bands", "epsilon", "label")}
    params["positive_label"] = details["positive_label"]
    fingerprint = _monitor.fingerprint(record_d, params)
    earlier = next((h for h in history if h.get("fingerprint") == fingerprint), None)
    if earlier is not None:
        if snap["on_repeat"] == "refuse":
            raise PolicyRefusal(
                Reason("REPEATED", "on_repeat", "this exact submission was already validated")
            )
        if earlier.get("replay") is not None:
            replay = dict(earlier["replay"])
            replay["replayed"] = True
            replay["_monitor"] = {**earlier, "replay": None}
            return Outcome(
                payload=replay,
                mechanism="replay of an earlier release (no new privacy loss)",
                notes=("identical submission: the earlier noisy answer is replayed",),
            )
    options = _feedback.Options(
        task=details["task"],
        threshold=details["threshold"],
        bins=details["bins"],
        bands=details["bands"],
        min_group_size=snap["min_group_size"],
        epsilon=details["epsilon"],
        error_bound=snap.get("error_bound"),
        label_bounds=tuple(details["label_bounds"]) if details.get("label_bounds") else None,
    )
    if details["task"] == "binary":
        feedback = _feedback.binary(labels, predictions, groups, options, ctx.rng)
    else:
        feedback = _feedback.regression(labels, predictions, groups, options, ctx.rng)
    members = [np.ones(len(every), dtype=bool)]
    if submission.groups is not None:
        array = np.asarray(submission.groups, dtype=object)
        members += [array == g for g in sorted(set(submission.groups))]
    if details["task"] == "binary":
        members += _splits(members, every >= details["threshold"], snap)
    members += _band_masks(feedback.payload.get("calibration") or [], every)
    cells = _monitor.cells_of(token_d, record_d, members)
    found = _monitor.differencing_pairs(
        cells, (_monitor.recall(h) for h in history), snap["min_difference"]
    )
    if found:
        raise PolicyRefusal(
            Reason(
                "DIFFERENCING",
                "min_difference",
                f"{found} released cell(s) would differ from another (this or an earlier "
                f"submission) in fewer than {snap['min_difference']} records",
            )
        )
    payload = dict(feedback.payload)
    payload["records"] = len(tokens)
    monitor = _monitor.remember(token_d, record_d, members)
    monitor["technique"] = NAME
    monitor["fingerprint"] = fingerprint
    monitor["key_id"] = _monitor.key_id(key)
    monitor["replay"] = dict(payload) if details["epsilon"] is not None else None
    payload["_monitor"] = monitor
    spent = {dataset: PrivacyCost(epsilon=details["epsilon"])} if details["epsilon"] else {}
    return Outcome(
        payload=payload,
        mechanism=feedback.mechanism,
        noise_scale=feedback.noise_scale,
        spent=spent,
    )


def _is_positive(value: Any, positive: str) -> bool:
    """Whether an owner's label is the positive class (booleans match 1/true/yes)."""
    if isinstance(value, bool):
        return value is (positive.strip().lower() in ("1", "true", "yes"))
    return str(value) == positive


def _band_masks(bands: list[dict[str, Any]], scores: np.ndarray) -> list[np.ndarray]:
    """Membership of every submitted record in the released confidence bands."""
    masks = []
    for band in bands:
        low, high = band["band"]
        masks.append((scores >= low) & ((scores < high) | ((high >= 1.0) & (scores <= 1.0))))
    return masks


def _check_sizes(n: int, groups: list[str] | None, snap: Mapping[str, Any]) -> None:
    if n < snap["min_records"]:
        raise PolicyRefusal(
            Reason(
                "TOO_FEW_RECORDS",
                "min_records",
                f"a submission needs at least {snap['min_records']} labelled records",
            )
        )
    if groups is not None:
        _, counts = np.unique(np.asarray(groups), return_counts=True)
        small = int((counts < snap["min_group_size"]).sum())
        if small:
            raise PolicyRefusal(
                Reason(
                    "GROUP_TOO_SMALL",
                    "min_group_size",
                    f"{small} declared group(s) have fewer than {snap['min_group_size']} "
                    "labelled records: merge them or drop the group column",
                )
            )


def _splits(
    cells: list[np.ndarray], positive: np.ndarray, snap: Mapping[str, Any]
) -> list[np.ndarray]:
    """Predicted-positive and -negative parts of each cell (the confusion matrix's rows).

    They are cells too: a threshold that puts one record alone above it would release
    that record's label through precision, and two thresholds a few records apart are
    differencing. Empty parts release nothing and are allowed.
    """
    parts = [m & side for m in cells for side in (positive, ~positive)]
    small = sum(1 for p in parts if 0 < int(p.sum()) < snap["min_group_size"])
    if small:
        raise PolicyRefusal(
            Reason(
                "SPLIT_TOO_SMALL",
                "min_group_size",
                f"{small} predicted-positive or -negative part(s) of a cell have fewer "
                f"than {snap['min_group_size']} records: move the threshold",
            )
        )
    return [p for p in parts if p.any()]


def _history(ctx: RunContext, dataset: str, snap: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    entries = [h for h in ctx.history(dataset) if h.get("technique") == NAME]
    if snap.get("monitor_colluding_analysts"):
        return entries
    return [h for h in entries if h.get("requester") == ctx.requester.name]


def _check_cap(history: list[Mapping[str, Any]], snap: Mapping[str, Any], ctx: RunContext) -> None:
    cap = snap.get("max_submissions")
    if cap is None:
        return
    if _monitor.in_period(history, snap["submission_period"], ctx.now) >= cap:
        raise PolicyRefusal(
            Reason(
                "RATE_LIMIT",
                "max_submissions",
                f"at most {cap} submission(s) per {snap['submission_period']}: wait for "
                "the next period",
            )
        )
