"""The agreement rules the validator understands, their defaults, and the plan's snapshot.

The node runs the validation away from the zone, so the plan carries a snapshot of the
rules (the most restrictive value over every validator agreement that grants the ML
party); ``check`` refuses if the agreement the zone actually applies is stricter than the
snapshot, so the node can never apply a looser rule than the owner signed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from collabzone.model import Agreement
from collabzone.techniques.base import Merge, RuleSpec

RULE_SPECS: tuple[RuleSpec, ...] = (
    RuleSpec("min_records", Merge.AT_LEAST, "fewest known records in one submission", int),
    RuleSpec(
        "min_difference",
        Merge.AT_LEAST,
        "fewest records by which a released cell must differ from any other (query monitor)",
        int,
    ),
    RuleSpec("max_submissions", Merge.AT_MOST, "submissions per period and ML party", int),
    RuleSpec("submission_period", Merge.SAME, "day, month, year or total", str),
    RuleSpec("dp_required", Merge.ANY, "every metric must carry DP noise (spec epsilon)", bool),
    RuleSpec("precision", Merge.AT_MOST, "decimals of every released metric", int),
    RuleSpec("on_repeat", Merge.SAME, "identical resubmission: replay or refuse", str),
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
    "min_group_size": Merge.AT_LEAST,
    "monitor_colluding_analysts": Merge.ANY,
}

DEFAULTS: dict[str, Any] = {
    "min_records": 100,
    "min_group_size": 20,
    "max_submissions": None,
    "submission_period": "day",
    "dp_required": False,
    "precision": 3,
    "on_repeat": "replay",
    "error_bound": None,
    "node": None,
    "node_public_key": None,
    "monitor_colluding_analysts": False,
}

MERGE: dict[str, Merge] = {**{s.name: s.merge for s in RULE_SPECS}, **CORE}


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
    """Most restrictive rules over the validator agreements; names of conflicting rules."""
    merged: dict[str, Any] = {}
    for agreement in agreements:
        for name, kind in MERGE.items():
            if name in agreement.rules:
                merged[name] = _merge(kind, merged.get(name), agreement.rules[name])
    conflicts = [n for n, v in merged.items() if isinstance(v, _Conflict)]
    rules = {**DEFAULTS, **{n: v for n, v in merged.items() if n not in conflicts}}
    if rules["min_records"] < rules["min_group_size"]:
        rules["min_records"] = rules["min_group_size"]
    rules.setdefault("min_difference", rules["min_group_size"])
    return rules, conflicts


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
    return problems
