"""The agreement rules the validator understands, their defaults and floors, and the plan's
snapshot of them.

The node runs the validation away from the zone, so the plan carries a snapshot of the
rules (the most restrictive value over every validator agreement that grants the ML
party); ``check`` refuses if the agreement the zone actually applies is stricter than the
snapshot, so the node can never apply a looser rule than the owner signed.

Floors: ``min_records`` and ``min_group_size`` cannot go below :data:`FLOORS`. An agreement
that tries is refused when it is signed (``RuleSpec.floor``); an agreement stored before
the floors existed is lifted to them here, so no path releases feedback on fewer records.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from collabzone.model import Agreement
from collabzone.techniques.base import Merge, RuleSpec

FLOORS: dict[str, int] = {"min_records": 20, "min_group_size": 10}
"""Smallest ``min_records`` / ``min_group_size`` any agreement may set (see the module doc)."""
DEFAULT_EPSILON = 0.5
"""Epsilon of a submission that names none when the agreement requires DP (capped by the
agreement's ``max_epsilon_per_request``)."""
SCOPES = ("all", "requester")

RULE_SPECS: tuple[RuleSpec, ...] = (
    RuleSpec(
        "min_records",
        Merge.AT_LEAST,
        "fewest records in one submission",
        int,
        floor=FLOORS["min_records"],
    ),
    RuleSpec(
        "min_group_size",
        Merge.AT_LEAST,
        "fewest labelled records behind any released count (groups, parts, bands, atoms)",
        int,
        floor=FLOORS["min_group_size"],
    ),
    RuleSpec(
        "min_difference",
        Merge.AT_LEAST,
        "raises the smallest atom of released sets the audit allows above min_group_size",
        int,
    ),
    RuleSpec(
        "count_rounding",
        Merge.AT_LEAST,
        "exact feedback: label counts rounded to a multiple of this (1: exact counts)",
        int,
        floor=1,
    ),
    RuleSpec(
        "audit_scope",
        Merge.SAME,
        "whose releases the disclosure audit combines: all (default) or requester",
        str,
        choices=SCOPES,
    ),
    RuleSpec(
        "threshold_jitter",
        Merge.AT_LEAST,
        "keyed, content-sticky raise of the atom minimum (default half of it)",
        int,
    ),
    RuleSpec("max_submissions", Merge.AT_MOST, "submissions per period and ML party", int),
    RuleSpec(
        "submission_period",
        Merge.SAME,
        "day, month, year or total",
        str,
        choices=("day", "month", "year", "total"),
    ),
    RuleSpec("dp_required", Merge.ANY, "every metric must carry DP noise (spec epsilon)", bool),
    RuleSpec("precision", Merge.AT_MOST, "decimals of every released metric", int),
    RuleSpec(
        "on_repeat",
        Merge.SAME,
        "identical resubmission: replay or refuse",
        str,
        choices=("replay", "refuse"),
    ),
    RuleSpec(
        "error_bound", Merge.AT_MOST, "clip of |error| for DP regression metrics", (int, float)
    ),
    RuleSpec("node", Merge.SAME, "party whose node holds the labels (default: the owner)", str),
    RuleSpec(
        "node_public_key", Merge.SAME, "X25519 key predictions must be sealed to (base64)", str
    ),
)

# Core rules the validator reads too (declared by the core, see policy.CORE_RULES).
CORE: dict[str, Merge] = {
    "monitor_colluding_analysts": Merge.ANY,
    "max_epsilon_per_request": Merge.AT_MOST,
}

DEFAULTS: dict[str, Any] = {
    "min_records": 100,
    "min_group_size": 20,
    "count_rounding": 5,
    "audit_scope": "all",
    "threshold_jitter": None,
    "max_submissions": None,
    "submission_period": "day",
    "dp_required": False,
    "precision": 3,
    "on_repeat": "replay",
    "error_bound": None,
    "node": None,
    "node_public_key": None,
    "monitor_colluding_analysts": False,
    "max_epsilon_per_request": None,
}

MERGE: dict[str, Merge] = {
    **{s.name: s.merge for s in RULE_SPECS if s.name != "audit_scope"},
    **CORE,
}


def _merge(kind: Merge, a: Any, b: Any) -> Any:
    if a is None:
        return b
    if b is None:
        return a
    if kind is Merge.AT_LEAST:
        return max(a, b)
    if kind is Merge.AT_MOST:
        return min(a, b)
    if kind is Merge.ANY:
        return bool(a) or bool(b)
    return a if a == b else _Conflict()


class _Conflict:
    """Two agreements disagree on a SAME rule; the plan cannot pick one."""


def snapshot(agreements: Iterable[Agreement]) -> tuple[dict[str, Any], list[str]]:
    """Most restrictive rules over the validator agreements; names of conflicting rules.

    Beyond merging: values are lifted to the floors; a budget (``epsilon_budget``) makes
    DP required; the audit is narrowed to the requester only if every agreement says so
    (and none asks to monitor colluding analysts); ``atom_min`` is the smallest atom the
    audit allows and ``jitter`` the width of its keyed threshold raise.
    """
    agreements = list(agreements)
    merged: dict[str, Any] = {}
    for agreement in agreements:
        for name, kind in MERGE.items():
            if name in agreement.rules:
                merged[name] = _merge(kind, merged.get(name), agreement.rules[name])
    conflicts = [n for n, v in merged.items() if isinstance(v, _Conflict)]
    rules = {**DEFAULTS, **{n: v for n, v in merged.items() if n not in conflicts}}
    for name, floor in FLOORS.items():
        rules[name] = max(int(rules[name]), floor)
    rules["min_records"] = max(rules["min_records"], rules["min_group_size"])
    rules["count_rounding"] = max(int(rules["count_rounding"]), 1)
    if any(a.rules.get("epsilon_budget") is not None for a in agreements):
        rules["dp_required"] = True
    narrowed = bool(agreements) and all(
        a.rules.get("audit_scope") == "requester" for a in agreements
    )
    rules["audit_scope"] = (
        "requester" if narrowed and not rules["monitor_colluding_analysts"] else "all"
    )
    rules["atom_min"] = max(rules["min_group_size"], int(rules.get("min_difference") or 0))
    width = rules.get("threshold_jitter")
    rules["jitter"] = int(width) if width is not None else rules["atom_min"] // 2
    return rules, conflicts


def at_node(snap: Mapping[str, Any]) -> dict[str, Any]:
    """The plan's snapshot with every key the node reads, floors applied (a plan queued
    before a rule existed lacks it; the node never reads a looser value than the default)."""
    rules = {**DEFAULTS, **snap}
    for name, floor in FLOORS.items():
        rules[name] = max(int(rules[name]), floor)
    if rules.get("audit_scope") not in SCOPES:
        rules["audit_scope"] = "all"
    atom_min = max(int(rules["min_group_size"]), int(rules.get("min_difference") or 0))
    rules["atom_min"] = max(int(rules.get("atom_min") or 0), atom_min)
    if rules.get("jitter") is None:
        rules["jitter"] = rules["atom_min"] // 2
    return rules


def default_epsilon(rules: Mapping[str, Any]) -> float | None:
    """The epsilon of a submission that names none: None (exact) unless DP is required."""
    if not rules["dp_required"]:
        return None
    cap = rules.get("max_epsilon_per_request")
    return min(DEFAULT_EPSILON, float(cap)) if cap is not None else DEFAULT_EPSILON


def looser(snap: Mapping[str, Any], applied: Mapping[str, Any]) -> list[str]:
    """Rules the snapshot states more loosely than the applied (merged) agreement rules."""
    problems = []
    for name, kind in MERGE.items():
        if name not in applied or applied[name] is None:
            continue
        want, have = applied[name], snap.get(name)
        if have is None or (
            (kind is Merge.AT_LEAST and have < want)
            or (kind is Merge.AT_MOST and have > want)
            or (kind is Merge.ANY and want and not have)
            or (kind is Merge.SAME and have != want)
        ):
            problems.append(name)
    if snap.get("audit_scope") == "requester" and applied.get("audit_scope") != "requester":
        problems.append("audit_scope")
    if applied.get("epsilon_budget") is not None and not snap.get("dp_required"):
        problems.append("dp_required")
    return problems
