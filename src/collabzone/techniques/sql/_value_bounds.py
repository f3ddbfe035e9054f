"""Clamping bounds of exact aggregates (SUM / AVG / MIN / MAX) over another owner's data.

In aggregation and template modes, values of a protected column are clamped to declared
bounds before they are summed (``clamp_values``), so one person moves a total by a known
amount and extreme values do not leave. Bounds are scaled to integers; missing, disordered
or overflowing bounds are reasons to refuse, found before any data is read.
"""

from __future__ import annotations

from collabzone.errors import Reason
from collabzone.model import ColumnType
from collabzone.techniques.sql import _rules
from collabzone.techniques.sql._bounds import FLOAT_SUM_SCALE
from collabzone.techniques.sql._compiled import Compiled
from collabzone.techniques.sql.rules._context import SumBound

MAX_SCALED_BOUND = 2**62
"""Largest clamping bound (after scaling to an integer) whose exact sums cannot overflow."""


def value_bounds(
    compiled: Compiled,
) -> tuple[dict[tuple[str, str], SumBound], list[Reason]]:
    """Clamping bounds of every SUM / AVG / MIN / MAX over a protected column."""
    protected = {p.alias for p in compiled.protected}
    bounds: dict[tuple[str, str], SumBound] = {}
    reasons: list[Reason] = []
    for agg in compiled.shape.aggregates:
        ref = agg.ref
        if (
            ref is None
            or ref.alias not in protected
            or agg.func not in ("SUM", "AVG", "MIN", "MAX")
        ):
            continue
        found = _rules.bounds_of(ref, compiled.effective.of(ref.dataset))
        owner = compiled.owners[ref.dataset]
        if found is None:
            reasons.append(
                Reason(
                    "MISSING_BOUNDS",
                    "sql.bounds",
                    f"{agg.func} of {ref.column.name!r} needs clamping bounds: the column's "
                    "declared min/max domain or the agreement's rule bounds",
                    owner,
                )
            )
            continue
        integral = ref.column.type in (ColumnType.INTEGER, ColumnType.BOOLEAN)
        scale = 1 if integral else FLOAT_SUM_SCALE
        low, high = round(found[0] * scale), round(found[1] * scale)
        if max(abs(low), abs(high)) > MAX_SCALED_BOUND or low > high:
            reasons.append(
                Reason(
                    "BOUNDS_TOO_WIDE",
                    "sql.bounds",
                    f"the bounds of {ref.column.name!r} must be ordered and within "
                    f"+-{MAX_SCALED_BOUND // scale:.3g}",
                    owner,
                )
            )
            continue
        bounds[(ref.alias, ref.column.name)] = SumBound(low, high, scale)
    return bounds, reasons
