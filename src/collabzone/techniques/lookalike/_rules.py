"""The look-alike rules read outside ``check``: the agreed DP on the quality figures.

``quality_epsilon`` is priced in the plan (the budget check needs the cost before any data
is read), so the plan reads it from the agreements that grant the request when the spec
leaves it out; ``check`` and ``release`` hold the plan to it.
"""

from __future__ import annotations

from collabzone.errors import Reason
from collabzone.techniques.base import PlanContext, Rules


def agreed_quality_epsilon(features: str, ctx: PlanContext) -> float | None:
    """The smallest ``quality_epsilon`` of the look-alike agreements on ``features`` that
    grant this request (None when none sets one)."""
    found = [
        float(a.rules["quality_epsilon"])
        for a in ctx.agreements_for(features)
        if a.technique == "lookalike"
        and a.allows_purpose(ctx.purpose)
        and isinstance(a.rules.get("quality_epsilon"), int | float)
    ]
    return min(found) if found else None


def quality_reasons(rules: Rules, epsilon: float | None) -> list[Reason]:
    """QUALITY_DP_REQUIRED when the agreements set ``quality_epsilon`` and the plan's is
    missing or larger (checked before running and again at release)."""
    cap = rules.get("quality_epsilon")
    if cap is not None and (epsilon is None or epsilon > float(cap)):
        return [
            Reason("QUALITY_DP_REQUIRED", "quality_epsilon",
                   f"AUC and lift must carry DP noise: set quality_epsilon <= {cap}")
        ]  # fmt: skip
    return []
