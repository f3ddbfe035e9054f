"""The rule checks of a compiled request: the reasons it is refused, before any data.

Whether each agreement allows the mode, whether the shape fits it (aggregates only,
SELECT DISTINCT in dp mode only), allowed columns or the approved template, self-joins
and conditions that would single out people in audited answers, the overlap and recipient
of lists, and the DP caps and post-processing of dp mode.
"""

from __future__ import annotations

from collabzone.errors import Reason
from collabzone.techniques.sql import _postcheck, _rules
from collabzone.techniques.sql._compiled import Compiled
from collabzone.techniques.sql._protect import mixed_conditions, self_joins, text_ranges
from collabzone.techniques.sql._shape import Shape
from collabzone.techniques.sql._templates import unapproved


def distinct_only(shape: Shape) -> bool:
    """SELECT DISTINCT dims (or GROUP BY dims without aggregates): released in dp mode
    through private partition selection on a noisy count of rows per group."""
    return (
        bool(shape.group_by)
        and not shape.is_aggregate
        and all(item.dimension is not None for item in shape.items)
    )


def check(compiled: Compiled, requester: str) -> list[Reason]:
    reasons: list[Reason] = []
    eff, shape, mode = compiled.effective, compiled.shape, compiled.mode
    for dataset in compiled.datasets:
        if mode not in _rules.allowed_modes(eff.of(dataset)):
            reasons.append(
                Reason(
                    "ANALYSIS_NOT_ALLOWED",
                    "sql.analysis",
                    f"the agreement on {dataset!r} does not allow {mode} queries",
                    compiled.owners[dataset],
                )
            )
    if compiled.entity is None and all(o == requester for o in compiled.owners.values()):
        first = compiled.datasets[0]
        reasons.append(
            Reason(
                "NO_ENTITY_KEY",
                "sql.entity_key",
                f"dataset {first!r} names no entity key (rule entity_key), so people "
                "behind a row cannot be counted; list it first or ask its owner",
                compiled.owners[first],
            )
        )
    if (
        mode in ("aggregation", "dp", "template")
        and not shape.is_aggregate
        and not (mode == "dp" and distinct_only(shape))
    ):
        reasons.append(
            Reason("BAD_SHAPE", "sql.aggregation", "this analysis releases aggregates only")
        )
    if mode != "template":
        reasons += _rules.check_columns(
            shape, mode, eff, compiled.owners, compiled.entity, requester
        )
    elif compiled.template is not None:
        reasons += unapproved(compiled.template, compiled.datasets, compiled.owners, requester)
    if compiled.protected and mode in ("aggregation", "template", "list"):
        reasons += self_joins(compiled.query, compiled.protected)
    if compiled.audited:
        reasons += mixed_conditions(compiled.query) + text_ranges(shape, compiled.protected)
    if mode == "list":
        reasons += list_overlap(compiled, requester)
        if shape.is_aggregate:
            reasons.append(
                Reason("BAD_SHAPE", "sql.list", "a list releases plain columns, no aggregates")
            )
        if not shape.join_pairs:
            reasons.append(
                Reason(
                    "LIST_NEEDS_OVERLAP",
                    "sql.list",
                    "a list is released only for entities in the overlap: "
                    "JOIN the other party's dataset",
                )
            )
        recipients = eff.list_recipients or ()
        if requester not in recipients:
            reasons.append(
                Reason(
                    "LIST_RECIPIENT",
                    "sql.list_recipients",
                    "the agreement does not name you as a recipient of row-level lists",
                )
            )
    if mode == "dp":
        reasons += check_dp(compiled)
    else:
        reasons += _postcheck.functions_outside_dp(compiled)
    return reasons


def list_overlap(compiled: Compiled, requester: str) -> list[Reason]:
    """A list is an overlap: each join matches datasets of two different owners, on join
    keys their rules list."""
    reasons: list[Reason] = []
    for left, right in compiled.shape.join_pairs:
        if compiled.owners[left.dataset] == compiled.owners[right.dataset]:
            reasons.append(
                Reason(
                    "LIST_NEEDS_OVERLAP",
                    "sql.list",
                    f"{left.dataset!r} and {right.dataset!r} have the same owner: a list is "
                    "released only for rows matched against another owner's dataset",
                    compiled.owners[left.dataset]
                    if compiled.owners[left.dataset] != requester
                    else None,
                )
            )
    return reasons


def check_dp(compiled: Compiled) -> list[Reason]:
    reasons: list[Reason] = []
    eff, spec = compiled.effective, compiled.spec
    reasons += _postcheck.check(compiled)  # arithmetic, HAVING: on the noisy values only
    epsilon, rho = spec.get("epsilon"), spec.get("rho")
    if (
        eff.max_epsilon is not None
        and isinstance(epsilon, int | float)
        and epsilon > eff.max_epsilon
    ):
        reasons.append(
            Reason(
                "EPSILON_TOO_HIGH",
                "sql.max_epsilon_per_query",
                f"epsilon per query is capped at {eff.max_epsilon}",
            )
        )
    if eff.max_rho is not None and isinstance(rho, int | float) and rho > eff.max_rho:
        reasons.append(
            Reason(
                "EPSILON_TOO_HIGH",
                "sql.max_rho_per_query",
                f"rho per query is capped at {eff.max_rho}",
            )
        )
    return reasons
