"""Agreement evaluation: does a planned request have every owner's yes, under which rules?

Pure functions, no I/O: the zone passes in the requester, the datasets the plan touches,
every agreement on them and the time. The result names, for each refusal, the rule and
the owner that refused, and merges the rule parameters of all the agreements the request
needs so that the most restrictive value wins (see :class:`~collabzone.techniques.base.Merge`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from collabzone.errors import Reason
from collabzone.model import Agreement, Approval, Dataset, Party
from collabzone.techniques.base import Merge, Rules, RuleSpec

CORE_RULES: tuple[RuleSpec, ...] = (
    RuleSpec(
        "min_group_size", Merge.AT_LEAST, "fewest entities behind any released number or row", int
    ),
    RuleSpec(
        "max_epsilon_per_request",
        Merge.AT_MOST,
        "largest epsilon one request may spend",
        (int, float),
    ),
    RuleSpec(
        "max_rho_per_request", Merge.AT_MOST, "largest zCDP rho one request may spend", (int, float)
    ),
    RuleSpec(
        "max_delta_per_request", Merge.AT_MOST, "largest delta one request may spend", (int, float)
    ),
    RuleSpec(
        "response_quantum",
        Merge.AT_LEAST,
        "seconds of the first response-time step (raises the zone's, see pacing.py)",
        (int, float),
    ),
    RuleSpec(
        "epsilon_budget",
        Merge.PER_DATASET,
        "epsilon each grantee may spend per period",
        (int, float),
    ),
    RuleSpec(
        "delta_budget", Merge.PER_DATASET, "delta each grantee may spend per period", (int, float)
    ),
    RuleSpec(
        "rho_budget", Merge.PER_DATASET, "zCDP rho each grantee may spend per period", (int, float)
    ),
    RuleSpec("budget_period", Merge.PER_DATASET, "day, month, year or total", str),
    RuleSpec("allow_row_release", Merge.ALL, "whether rows (not only aggregates) may leave", bool),
    RuleSpec("monitor_colluding_analysts", Merge.ANY, "compare releases across all analysts", bool),
)


@dataclass(frozen=True)
class PolicyResult:
    """The policy's verdict on one planned request."""

    reasons: tuple[Reason, ...]
    rules: Rules
    owners_to_approve: tuple[str, ...]
    agreements: Mapping[str, Agreement] = field(default_factory=dict)

    @property
    def allowed(self) -> bool:
        return not self.reasons


def _explain_missing(
    dataset: Dataset,
    candidates: Sequence[Agreement],
    requester: Party,
    technique: str,
    purpose: str,
    now: dt.datetime,
) -> Reason:
    owner = dataset.owner
    mine = [a for a in candidates if a.grants(requester)]
    same_technique = [a for a in mine if a.technique == technique]
    for agreement in same_technique:
        if agreement.revoked_at is not None:
            return Reason(
                "AGREEMENT_REVOKED",
                f"agreement {agreement.id}",
                f"the agreement on {dataset.name!r} was revoked",
                owner,
            )
    for agreement in same_technique:
        if agreement.valid_until is not None and now >= agreement.valid_until:
            return Reason(
                "AGREEMENT_EXPIRED",
                f"agreement {agreement.id} valid_until",
                f"the agreement on {dataset.name!r} expired at {agreement.valid_until.isoformat()}; "
                "the dataset is read-only until its owner signs a new one",
                owner,
            )
        if now < agreement.valid_from:
            return Reason(
                "AGREEMENT_NOT_YET_VALID",
                f"agreement {agreement.id} valid_from",
                f"the agreement on {dataset.name!r} starts at {agreement.valid_from.isoformat()}",
                owner,
            )
    for agreement in same_technique:
        if not agreement.allows_purpose(purpose):
            return Reason(
                "PURPOSE_NOT_ALLOWED",
                f"agreement {agreement.id} purposes",
                f"purpose {purpose!r} is not among {list(agreement.purposes)} on {dataset.name!r}",
                owner,
            )
    if mine:
        allowed = sorted({a.technique for a in mine if a.is_active(now)})
        return Reason(
            "TECHNIQUE_NOT_ALLOWED",
            f"agreements on {dataset.name}",
            f"technique {technique!r} is not granted on {dataset.name!r} "
            f"(granted: {', '.join(allowed) or 'none active'})",
            owner,
        )
    return Reason(
        "NO_AGREEMENT",
        f"agreements on {dataset.name}",
        f"no agreement shares {dataset.name!r} with {requester.name!r}",
        owner,
    )


def choose_agreement(
    dataset: Dataset,
    agreements: Iterable[Agreement],
    requester: Party,
    technique: str,
    purpose: str,
    now: dt.datetime,
) -> Agreement | Reason:
    """The agreement that lets ``requester`` use ``technique`` on ``dataset`` now, or why none does."""
    candidates = [a for a in agreements if a.dataset == dataset.name]
    usable = [
        a
        for a in candidates
        if a.grants(requester)
        and a.technique == technique
        and a.is_active(now)
        and a.allows_purpose(purpose)
    ]
    if usable:
        return max(usable, key=lambda a: a.created_at)
    return _explain_missing(dataset, candidates, requester, technique, purpose, now)


def merge_rules(
    by_dataset: Mapping[str, Mapping[str, Any]], specs: Iterable[RuleSpec]
) -> tuple[dict[str, Any], list[Reason]]:
    """Combine per-dataset rule parameters so the most restrictive value wins."""
    spec_of = {s.name: s for s in specs}
    merged: dict[str, Any] = {}
    problems: list[Reason] = []
    names = sorted({name for rules in by_dataset.values() for name in rules})
    for name in names:
        spec = spec_of.get(name)
        values = [rules[name] for rules in by_dataset.values() if name in rules]
        if spec is None or spec.merge is Merge.PER_DATASET:
            if len(by_dataset) == 1:
                merged[name] = values[0]
            continue
        if spec.merge is Merge.AT_LEAST:
            merged[name] = max(values)
        elif spec.merge is Merge.AT_MOST:
            merged[name] = min(values)
        elif spec.merge is Merge.SUBSET:
            common = set(values[0])
            for value in values[1:]:
                common &= set(value)
            merged[name] = sorted(common)
        elif spec.merge is Merge.ALL:
            merged[name] = all(values) and len(values) == len(by_dataset)
        elif spec.merge is Merge.ANY:
            merged[name] = any(values)
        elif spec.merge is Merge.SAME:
            if any(v != values[0] for v in values):
                problems.append(
                    Reason(
                        "RULE_CONFLICT",
                        name,
                        f"the agreements set {name} differently; the owners must align them",
                    )
                )
            merged[name] = values[0]
    return merged, problems


def evaluate(
    *,
    requester: Party,
    technique: str,
    purpose: str,
    datasets: Sequence[Dataset],
    agreements: Sequence[Agreement],
    rule_specs: Iterable[RuleSpec],
    needs_agreement: bool,
    now: dt.datetime,
) -> PolicyResult:
    """Every owner's agreement for the plan, merged rules, and who must approve by hand."""
    reasons: list[Reason] = []
    by_dataset: dict[str, Mapping[str, Any]] = {}
    chosen: dict[str, Agreement] = {}
    approvers: set[str] = set()
    if not purpose.strip():
        reasons.append(
            Reason("PURPOSE_MISSING", "request purpose", "state the purpose of the request")
        )
    for dataset in datasets:
        if dataset.owner == requester.name:
            by_dataset[dataset.name] = {}
            continue
        if not needs_agreement:
            if not any(
                a.dataset == dataset.name and a.grants(requester) and a.is_active(now)
                for a in agreements
            ):
                reasons.append(
                    Reason(
                        "NOT_SHARED",
                        f"agreements on {dataset.name}",
                        f"{dataset.name!r} is not shared with {requester.name!r}",
                        dataset.owner,
                    )
                )
            by_dataset[dataset.name] = {}
            continue
        verdict = choose_agreement(dataset, agreements, requester, technique, purpose, now)
        if isinstance(verdict, Reason):
            reasons.append(verdict)
            continue
        chosen[dataset.name] = verdict
        by_dataset[dataset.name] = dict(verdict.rules)
        if verdict.approval is Approval.MANUAL:
            approvers.add(dataset.owner)
    merged, conflicts = merge_rules(by_dataset, [*CORE_RULES, *rule_specs])
    reasons.extend(conflicts)
    rules = Rules(
        by_dataset=by_dataset,
        merged=merged,
        agreements={name: (a.id,) for name, a in chosen.items()},
    )
    return PolicyResult(tuple(reasons), rules, tuple(sorted(approvers)), chosen)


def validate_rules(rules: Mapping[str, Any], specs: Iterable[RuleSpec]) -> list[str]:
    """Problems with an agreement's rule parameters (unknown names, wrong types, bad values)."""
    spec_of = {s.name: s for s in [*CORE_RULES, *specs]}
    problems = []
    for name, value in rules.items():
        spec = spec_of.get(name)
        if spec is None:
            problems.append(f"unknown rule {name!r} (known: {', '.join(sorted(spec_of))})")
            continue
        if spec.type is not object and (
            not isinstance(value, spec.type)
            or (isinstance(value, bool) and spec.type in (int, (int, float)))
        ):
            problems.append(f"rule {name!r} has the wrong type ({type(value).__name__})")
            continue
        if isinstance(value, int | float) and not isinstance(value, bool):
            if value != value or value in (float("inf"), float("-inf")) or value < 0:
                problems.append(f"rule {name!r} must be a finite, non-negative number")
            elif name.endswith("_budget") and value == 0:
                problems.append(f"rule {name!r} must be positive (omit it to grant no budget)")
            elif spec.floor is not None and value < spec.floor:
                problems.append(
                    f"rule {name!r} is below its floor: set it to {spec.floor:g} or more "
                    f"(the {name} floor of technique rules cannot be lowered by an agreement)"
                )
        if spec.choices and value not in spec.choices:
            problems.append(f"rule {name!r} must be one of: {', '.join(spec.choices)}")
    return problems
