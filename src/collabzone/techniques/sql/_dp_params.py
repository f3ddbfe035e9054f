"""The DP parameters of a request, fixed before it reads data: budget and public groups.

The budget comes from the spec, which may only tighten what the agreements allow (a
looser delta is a reason, not an error). Groups whose every GROUP BY column has a public
domain (declared, or a public bin) are released over all their keys, so no private
partition selection (and no delta) is needed; too many keys fall back to selection.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

from collabzone.budget import privacy_parameter
from collabzone.errors import InvalidInputError, Reason
from collabzone.techniques.sql import _rules
from collabzone.techniques.sql._bins import bin_domain
from collabzone.techniques.sql._dp import Budget
from collabzone.techniques.sql._shape import Shape

MAX_PUBLIC_GROUPS = 100_000


def budget(
    spec: Mapping[str, Any], eff: _rules.Effective, *, public: bool
) -> tuple[Budget, list[Reason]]:
    """The query's DP budget from its spec, and the reasons it is looser than the agreements.

    A spec may only tighten what the agreements set: epsilon and rho are capped by
    ``max_epsilon_per_query`` / ``max_rho_per_query`` (see ``_checks.check_dp``), delta by the
    merged ``dp_delta`` (a larger delta would lower the partition-selection threshold).
    ``alpha`` only sets the width of the reported intervals (post-processing of public
    scales), so any value in (0, 1) is accepted. Malformed values raise InvalidInputError.
    """
    epsilon, rho = spec.get("epsilon"), spec.get("rho")
    if epsilon is None and rho is None:
        raise InvalidInputError("a dp query needs an epsilon (pure DP) or a rho (zCDP) budget")
    alpha = spec.get("alpha", 0.05)
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 < alpha < 1:
        raise InvalidInputError("alpha must be a number between 0 and 1 (e.g. 0.05)")
    asked = spec.get("delta")
    if asked is not None:
        asked = privacy_parameter("delta", asked)
    reasons: list[Reason] = []
    if public:  # public groups: no partition selection, no delta spent
        delta = 0.0
    elif asked is None:
        delta = eff.delta
    elif asked > eff.delta:
        reasons.append(
            Reason(
                "DELTA_TOO_HIGH",
                "sql.dp_delta",
                f"delta may only be lowered: the agreements allow at most {eff.delta:g}",
            )
        )
        delta = eff.delta
    elif asked == 0:
        reasons.append(
            Reason(
                "DELTA_REQUIRED",
                "sql.dp_delta",
                "groups without a public domain are selected privately, which needs a "
                "delta above 0: omit delta or declare public_domains for the GROUP BY columns",
            )
        )
        delta = eff.delta
    else:
        delta = asked
    return Budget(epsilon=epsilon, rho=rho, delta=delta), reasons


def public_keys(shape: Shape, eff: _rules.Effective) -> list[tuple[Any, ...]] | None:
    domains: list[list[Any]] = []
    for index, ref in enumerate(shape.group_by):
        if index in shape.bins:  # a public bin: its values follow from literals and bounds
            declared = bin_domain(shape.bins[index], _rules.bounds_of(ref, eff.of(ref.dataset)))
            if declared is None:
                return None
            domains.append(declared)
            continue
        declared = (eff.of(ref.dataset).get("public_domains") or {}).get(ref.column.name)
        if declared is None and isinstance(ref.column.domain, list):
            declared = ref.column.domain
        if declared is None:
            return None
        domains.append(list(declared))
    size = 1
    for domain in domains:
        size *= max(1, len(domain))
    if size > MAX_PUBLIC_GROUPS:
        return None
    return [tuple(k) for k in itertools.product(*domains)]


def grouped_order_statistics(shape: Shape, keys: list[tuple[Any, ...]] | None,
                             owners: Mapping[str, str]) -> list[Reason]:  # fmt: skip
    """MIN / MAX / MEDIAN / QUANTILE_CONT per group need public groups: a private quantile
    is released for every group, empty ones included, so which groups exist must not be
    read from the data (no partition selection for them)."""
    from collabzone.techniques.sql._shape import QUANTILE_FUNCS

    if not shape.group_by or keys is not None:
        return []
    reasons = []
    for agg in shape.aggregates:
        if agg.func in QUANTILE_FUNCS and agg.ref is not None:
            reasons.append(
                Reason(
                    "AGGREGATE_NOT_ALLOWED",
                    "sql.dp",
                    f"{agg.func} of {agg.ref.column.name!r} per group needs public groups: "
                    "GROUP BY columns with a declared domain (public_domains, a list domain) "
                    "or public bins (at most "
                    f"{MAX_PUBLIC_GROUPS} groups), or drop the GROUP BY",
                    owners.get(agg.ref.dataset),
                )
            )
    return reasons
