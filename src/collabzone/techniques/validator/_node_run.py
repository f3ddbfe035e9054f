"""The node side of the validator: join predictions to local labels, measure, audit.

Runs where the labels are (the owner's node or a mediator's), reached only through the
:class:`~collabzone.techniques.base.RunContext` the node builds. Raises ``PolicyRefusal``
for anything the owner's rules forbid; :meth:`Validator.run` turns that into a payload the
zone's release turns back into the refusal. A released outcome carries the new states of
the job's two audited spaces (``_audit``), which the zone stores with the release.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from collabzone.budget import PrivacyCost
from collabzone.disclosure import Jitter
from collabzone.errors import InvalidInputError, PolicyRefusal, Reason
from collabzone.techniques.base import AuditUpdate, Outcome, Plan, RunContext
from collabzone.techniques.validator import _audit, _feedback, _monitor, _rules
from collabzone.techniques.validator._submission import Submission, check_submission, unseal

NAME = "validator"
SEALING_PURPOSE = "validator/sealing"
MONITOR_PURPOSE = "validator/monitor"
JITTER_PURPOSE = "validator/audit-jitter"


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
    details, snap = plan.details, _rules.at_node(plan.details["rules"])
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
    # every submitted record takes part (sets, sizes checked, audit units); only labelled
    # ones are counted. Whether a record has a label is the owner's, so size checks here
    # use what the ML party sent, and the audit weighs labelled records only.
    raw = [label_of[t] for t in submission.tokens]
    labelled = np.array([v is not None for v in raw], dtype=np.bool_)
    scores = np.asarray(submission.predictions, dtype=np.float64)
    _check_sizes(len(submission), submission.groups, snap)
    labels = _labels(raw, labelled, details)
    history = _history(ctx, dataset, snap)
    _check_cap(history, snap, ctx)
    key = ctx.derive_key(MONITOR_PURPOSE)
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
        if earlier.get("replay") is not None and earlier.get("key_id") == _monitor.key_id(key):
            # the same sets again: no new atom, no new noise, no new cost
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
        min_band_size=int(snap["atom_min"]) + max(0, int(snap["jitter"])),
        epsilon=details["epsilon"],
        count_rounding=int(snap.get("count_rounding") or 1),
        error_bound=snap.get("error_bound"),
        label_bounds=tuple(details["label_bounds"]) if details.get("label_bounds") else None,
    )
    if details["task"] == "binary":
        _check_parts(scores >= details["threshold"], submission.groups, snap)
        feedback = _feedback.binary(
            labels.astype(np.int64), labelled, scores, submission.groups, options, ctx.rng
        )
    else:
        feedback = _feedback.regression(
            labels, labelled, scores, submission.groups, options, ctx.rng
        )
    updates = audit_release(
        ctx,
        dataset,
        snap,
        key,
        token_d,
        labelled,
        feedback.released_sets,
        enforce=details["epsilon"] is None,
    )
    payload = dict(feedback.payload)
    payload["records"] = int(labelled.sum())
    payload["_monitor"] = {
        "technique": NAME,
        "fingerprint": fingerprint,
        "key_id": _monitor.key_id(key),
        "size": len(submission),
        "replay": dict(payload) if details["epsilon"] is not None else None,
    }
    spent = {dataset: PrivacyCost(epsilon=details["epsilon"])} if details["epsilon"] else {}
    return Outcome(
        payload=payload,
        mechanism=feedback.mechanism,
        noise_scale=feedback.noise_scale,
        spent=spent,
        audit_updates=updates,
    )


def audit_release(
    ctx: RunContext,
    dataset: str,
    snap: Mapping[str, Any],
    key: bytes,
    units: NDArray[np.uint64],
    labelled: NDArray[np.bool_],
    sets: list[NDArray[np.bool_]],
    *,
    enforce: bool = True,
) -> tuple[AuditUpdate, ...]:
    """Add the released sets to both audited spaces; refuse if the one in force (every ML
    party's, unless the agreements narrow it to the requester's) would cover a small atom.

    With ``enforce`` False (DP feedback: label counts carry noise, so combining answers
    averages noise instead of isolating a label) the sets are still added, so a later exact
    answer is audited against them, but nothing is refused.
    """
    key_id = _monitor.key_id(key)
    everyone, mine = _audit.space_names(dataset, ctx.requester.name)
    enforced = mine if snap["audit_scope"] == "requester" else everyone
    jitter = Jitter(ctx.derive_key(JITTER_PURPOSE), max(0, int(snap["jitter"])))
    updates = []
    for space in (everyone, mine):
        stored = ctx.audit_state(space)
        state = _audit.State.from_bytes(stored[1]) if stored else _audit.State(key_id)
        if state.key_id != key_id:
            # digests under another key never match: auditing would silently restart
            raise PolicyRefusal(
                Reason(
                    "MONITOR_KEY_CHANGED",
                    "min_group_size",
                    "the node's audit key differs from the one earlier submissions were "
                    "recorded under: the node operator must restore the node keyring",
                )
            )
        added = _audit.add(
            state, units, labelled, sets, min_size=int(snap["atom_min"]), jitter=jitter
        )
        if enforce and space == enforced and not added.finding.safe:
            # nothing about the small atoms (how many, how small) goes into the refusal
            raise PolicyRefusal(
                Reason(
                    "DIFFERENCING",
                    "min_group_size",
                    f"combined with what was already released on {dataset!r}, this "
                    "feedback would describe fewer labelled records than the minimum: send "
                    "sets that overlap earlier ones less, or ask the owner for DP",
                )
            )
        updates.append(AuditUpdate(space, stored[0] if stored else None, added.state.to_bytes()))
    return tuple(updates)


def _labels(raw: list[Any], labelled: NDArray[np.bool_], details: Mapping[str, Any]) -> Any:
    """Labels aligned with the submission (0 where the owner has none)."""
    if details["task"] == "binary":
        positive = details["positive_label"]
        return np.array(
            [int(_is_positive(v, positive)) if v is not None else 0 for v in raw], dtype=np.int64
        )
    try:
        values = np.array([float(v) if v is not None else 0.0 for v in raw], dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidInputError(
            "the owner's label column is not numeric: a regression needs numeric labels"
        ) from None
    if not np.isfinite(values[labelled]).all():
        raise InvalidInputError("the owner's label column holds NaN or infinite values")
    return values


def _is_positive(value: Any, positive: str) -> bool:
    """Whether an owner's label is the positive class (booleans match 1/true/yes)."""
    if isinstance(value, bool):
        return value is (positive.strip().lower() in ("1", "true", "yes"))
    return str(value) == positive


def _check_sizes(n: int, groups: tuple[str, ...] | None, snap: Mapping[str, Any]) -> None:
    """Sizes of what the ML party sent (it knows them: the decision reveals nothing)."""
    if n < snap["min_records"]:
        raise PolicyRefusal(
            Reason(
                "TOO_FEW_RECORDS",
                "min_records",
                f"a submission needs at least {snap['min_records']} records",
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
                    "records: merge them or drop the group column",
                )
            )


def _check_parts(
    positive: NDArray[np.bool_], groups: tuple[str, ...] | None, snap: Mapping[str, Any]
) -> None:
    """Predicted-positive and -negative parts of each cell (the confusion matrix's rows)
    must hold at least ``min_group_size`` sent records, or be empty.

    A threshold that puts one record alone above it would describe that record through
    precision; the audit would refuse it too, but this says why in terms the ML party
    controls. Empty parts release nothing and are allowed.
    """
    cells = [np.ones(positive.size, dtype=bool)]
    if groups is not None:
        array = np.asarray(groups, dtype=object)
        cells += [array == g for g in sorted(set(groups))]
    parts = [int((m & side).sum()) for m in cells for side in (positive, ~positive)]
    small = sum(1 for p in parts if 0 < p < snap["min_group_size"])
    if small:
        raise PolicyRefusal(
            Reason(
                "SPLIT_TOO_SMALL",
                "min_group_size",
                f"{small} predicted-positive or -negative part(s) of a cell have fewer "
                f"than {snap['min_group_size']} records: move the threshold",
            )
        )


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
