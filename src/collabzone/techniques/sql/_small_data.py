"""Small data in dp mode: refuse a query whose contribution limits cannot be derived.

When the agreement leaves ``max_rows_per_entity`` / ``max_groups_per_entity`` open, a
share of the budget derives them privately (``_bounds``). On a small table at a small
budget that derivation is mostly noise and so is the answer: the request is refused with
LIMITS_NEEDED before any data is read, telling the user to declare the limits or spend more.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from collabzone.errors import Reason
from collabzone.model import Dataset
from collabzone.techniques.sql._bounds import AUTO_SHARE
from collabzone.techniques.sql._compiled import Compiled

MIN_DERIVATION_SIGNAL = 20.0
"""Least (rows x budget share) for which the private derivation of a contribution limit
is worth its cost: below it the derived limit is mostly noise (issue 11 saw 16 rows and 32
groups per person on a 500-row table at epsilon 0.1) and the answer useless."""


def limits_needed(compiled: Compiled, by_name: Mapping[str, Dataset]) -> list[Reason]:
    """Refuse, before reading data, a DP query whose contribution limits would have to be
    derived from too few rows (the catalogue's row count) for the budget asked."""
    eff, budget, entity = compiled.effective, compiled.budget, compiled.entity
    if budget is None or entity is None or compiled.entity_unique:
        return []
    missing = [
        name
        for name, value, needed in (
            ("max_rows_per_entity", eff.max_rows_per_entity, True),
            ("max_groups_per_entity", eff.max_groups_per_entity, bool(compiled.shape.group_by)),
        )
        if needed and value is None
    ]
    if not missing:
        return []
    total = budget.epsilon if budget.epsilon is not None else math.sqrt(2 * (budget.rho or 0))
    share = total * AUTO_SHARE / len(missing)
    rows = by_name[entity.dataset].row_count
    if rows * share >= MIN_DERIVATION_SIGNAL:
        return []
    return [
        Reason(
            "LIMITS_NEEDED",
            "sql.max_rows_per_entity",
            f"{entity.dataset!r} has {rows} rows, too few to derive {' and '.join(missing)} "
            f"privately at this budget (the answer would be mostly noise): declare "
            f"{' and '.join(missing)} in the agreement (1 when each person has one row), "
            "or ask with a larger epsilon",
            compiled.owners[entity.dataset],
        )
    ]
