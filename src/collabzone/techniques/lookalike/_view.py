"""What the console shows each reader of a look-alike release (its own part only).

The seed owner reads the audience size, the model, the quality figures (AUC and lift, with
how they were protected) and the delivery facts; the partner reads the same size and model
plus its audience as a table of its own tokens, cut to the page's row limit (the API and
``collabzone lookalike audience`` give them all). A view draws only what the payload it is
handed holds, so the bank's view can never show an audience token.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from collabzone.techniques.view import ResultView, TableView, cell, table


def lookalike_view(payload: Mapping[str, Any]) -> ResultView:
    """Facts for every reader; the audience table only where the payload carries it."""
    facts: list[tuple[str, str]] = [
        ("Model", cell(payload.get("model"))),
        ("Audience size", cell(payload.get("audience_size"))),
    ]
    quality = payload.get("quality")
    if isinstance(quality, Mapping):
        withheld = "withheld (too few held-out rows)"
        auc, lift = quality.get("auc"), quality.get("lift_top_decile")
        facts.append(("AUC (held-out overlap)", withheld if auc is None else cell(auc)))
        facts.append(("Lift in the top decile", withheld if lift is None else cell(lift)))
        epsilon = payload.get("quality_epsilon")
        facts.append(
            (
                "Quality protection",
                f"Laplace noise at epsilon {cell(epsilon)}, rounded"
                if epsilon
                else "rounded to two decimals, withheld on small held-out sets",
            )
        )
    if "delivery_rate" in payload:
        facts.append(
            (
                "Delivery",
                f"audience delivered to the partner only; each look-alike kept if its "
                f"delivery coin shows heads (rate {cell(payload['delivery_rate'])}); "
                "no overlap member is ever in it",
            )
        )
    tables: tuple[TableView, ...] = ()
    audience = payload.get("audience")
    if isinstance(audience, Mapping) and isinstance(audience.get("rows"), list):
        facts.append(("Match key", cell(payload.get("match_key"))))
        rows = [r for r in audience["rows"] if isinstance(r, list | tuple)]
        tables = (table("Your audience (your own tokens)", ["token"], rows),)
    return ResultView(facts=tuple(facts), tables=tables)
