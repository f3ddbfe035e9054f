"""Risk before approval: what a pending request would disclose if it were released now.

An owner asked to approve a request sees, computed on its own data by the same code that
would release it, what the answer would give away *combined with everything released
before*: how many groups under the minimum (and how many people in them) an analyst could
isolate by adding and subtracting answers, whether an empty group would be revealed, how
many groups the zone would withhold to prevent it, the privacy budget it would spend, and,
for differentially private answers, the bound on what any attacker can infer about one
person. Nothing is released, stored or charged; the assessment itself is audited.

The attack families behind the numbers are those of :mod:`collabzone.attacks`: every
linear combination of released cells (differencing, inclusion-exclusion, trackers, a total
minus the shown groups) is covered by the atoms of the disclosure audit; refusals and
withheld answers depend only on those atoms; DP answers are bounded by their epsilon.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from collabzone.errors import CollabzoneError, NotAuthorisedError, PolicyRefusal
from collabzone.model import Party, Role

if TYPE_CHECKING:
    from collabzone.techniques.base import Outcome


def dp_bound(epsilon: float) -> float:
    """Under pure epsilon-DP, the best accuracy of any guess of one person's yes/no fact
    from a 50/50 prior (posterior odds grow at most by e^epsilon)."""
    return math.exp(epsilon) / (1 + math.exp(epsilon)) if epsilon < 700 else 1.0


def summarise(
    *,
    request_id: str,
    technique: str,
    requester: str,
    viewer: Party,
    owned: set[str],
    outcome: Outcome | None,
    refusal: list[str] | None,
    spent_before: Mapping[str, float],
) -> dict[str, Any]:
    """The risk report for ``viewer`` (its own datasets only, unless it is an auditor)."""
    report: dict[str, Any] = {
        "request": request_id,
        "technique": technique,
        "requester": requester,
    }
    if outcome is None:
        report["would_be"] = "refused" if refusal is not None else "failed"
        report["reasons"] = refusal or []
        report["summary"] = [
            "if approved now, nothing would be released: " + "; ".join(refusal or [])
        ]
        return report
    everything = viewer.has_role(Role.AUDITOR)
    assessment = dict(outcome.assessment)
    findings = {
        dataset: finding
        for dataset, finding in (assessment.pop("if_everything_were_released", {}) or {}).items()
        if everything or dataset in owned
    }
    lines: list[str] = []
    for dataset, finding in findings.items():
        people = finding["people_in_them"]
        groups = finding["groups_under_minimum"]
        if groups:
            lines.append(
                f"{dataset}: released in full, this answer with the earlier ones would let an "
                f"analyst isolate {groups} group(s) under the minimum ({people} people; "
                f"smallest {finding['smallest_group']}; {finding['empty_groups_revealed']} "
                "empty group(s) revealed); the zone withholds "
                f"{assessment.get('withheld_to_protect_combinations', 0)} group(s) to prevent it"
            )
        else:
            lines.append(
                f"{dataset}: no combination with earlier answers isolates a group under the minimum"
            )
    costs: dict[str, Any] = {}
    for dataset, cost in outcome.spent.items():
        if not (everything or dataset in owned):
            continue
        epsilon = cost.epsilon + spent_before.get(dataset, 0.0)
        costs[dataset] = {
            "this_request": cost.as_dict(),
            "requester_total_epsilon": epsilon,
            "best_guess_accuracy_bound": round(dp_bound(epsilon), 4) if epsilon else None,
        }
        if epsilon:
            lines.append(
                f"{dataset}: after this answer the requester has spent epsilon {epsilon:g}; no "
                "attacker can guess one person's yes/no fact with accuracy above "
                f"{dp_bound(epsilon):.1%} (from 50%)"
            )
    report.update(
        {
            "would_be": "released",
            "assessment": assessment,
            "combinations": findings,
            "privacy_cost": costs,
            "summary": lines or ["no exact cell of your datasets is released by this request"],
        }
    )
    return report


def may_assess(viewer: Party, owners: Mapping[str, str]) -> set[str]:
    """The datasets ``viewer`` may see assessed (its own); raises if none and not an auditor."""
    owned = {dataset for dataset, owner in owners.items() if owner == viewer.name}
    if not owned and not viewer.has_role(Role.AUDITOR):
        raise NotAuthorisedError(
            "only the owners of the data a request touches (or an auditor) see its risk"
        )
    return owned


def outcome_or_reasons(run: Any) -> tuple[Outcome | None, list[str] | None]:
    """Run the technique's dry run; a refusal becomes its reasons, a failure None."""
    try:
        return run(), None
    except PolicyRefusal as exc:
        return None, [str(r) for r in exc.reasons]
    except CollabzoneError:
        return None, None
