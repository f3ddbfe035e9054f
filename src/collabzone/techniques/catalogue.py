"""The catalogue: what a party may see of the datasets shared with it.

For each dataset the requester owns or has an active agreement on: the schema with column
classes and declared domains, the row count rounded to the nearest 100 (and shown only as
"fewer than N" under the agreement's ``min_group_size``), the techniques it may ask for
with their purposes and expiry, and a *mock* sample drawn from the schema and the declared
domains alone, never from real values, so analysts can write and test their requests
before asking for anything real (as PySyft's mock assets allow).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import numpy as np

from collabzone.errors import InvalidInputError
from collabzone.model import Column, ColumnClass, ColumnType, Dataset
from collabzone.techniques.base import Outcome, Plan, PlanContext, RunContext, Technique

ROUND_TO = 100
MAX_MOCK_ROWS = 1000


def rounded_count(row_count: int, min_group_size: int) -> dict[str, Any]:
    """A row count as a grantee sees it: rounded to 100, or only a bound when small."""
    rounded = int(round(row_count / ROUND_TO) * ROUND_TO)
    floor = max(min_group_size, ROUND_TO)
    if row_count < floor:
        return {"rows": None, "rows_shown_as": f"fewer than {floor}"}
    return {"rows": rounded, "rows_shown_as": f"about {rounded}"}


def mock_value(column: Column, rng: np.random.Generator, index: int) -> Any:
    """One fake value for ``column`` drawn from its declared type and domain only."""
    domain = column.domain
    if isinstance(domain, list) and domain:
        return domain[int(rng.integers(len(domain)))]
    bounds = domain if isinstance(domain, dict) else {}
    if column.column_class is ColumnClass.JOIN_KEY:
        return "mock-" + rng.bytes(8).hex()
    if column.type is ColumnType.INTEGER:
        low, high = int(bounds.get("min", 0)), int(bounds.get("max", 100))
        return int(rng.integers(low, high + 1))
    if column.type is ColumnType.FLOAT:
        low_f, high_f = float(bounds.get("min", 0.0)), float(bounds.get("max", 1.0))
        return round(float(rng.uniform(low_f, high_f)), 3)
    if column.type is ColumnType.BOOLEAN:
        return bool(rng.integers(2))
    if column.type in (ColumnType.DATE, ColumnType.TIMESTAMP):
        low_d = dt.date.fromisoformat(str(bounds.get("min", "2000-01-01"))[:10])
        high_d = dt.date.fromisoformat(str(bounds.get("max", "2025-12-31"))[:10])
        day = low_d + dt.timedelta(days=int(rng.integers((high_d - low_d).days + 1)))
        return day.isoformat()
    return f"{column.name}_{index}"


def mock_sample(dataset: Dataset, rows: int, rng: np.random.Generator) -> dict[str, Any]:
    """A table shaped like ``dataset`` whose values come from the schema, never the data."""
    names = [c.name for c in dataset.columns]
    data = [[mock_value(c, rng, i) for c in dataset.columns] for i in range(rows)]
    return {"columns": names, "rows": data}


class Catalogue(Technique):
    """Discoverable data catalogue of the zone (needs no agreement of its own)."""

    name = "catalogue"
    summary = "schemas, column classes, rounded sizes, allowed techniques and mock samples"
    needs_agreement = False

    def plan(self, spec: Mapping[str, Any], ctx: PlanContext) -> Plan:
        unknown = set(spec) - {"mock_rows", "datasets"}
        if unknown:
            raise InvalidInputError(f"unknown catalogue spec keys: {', '.join(sorted(unknown))}")
        mock_rows = spec.get("mock_rows", 5)
        if (
            isinstance(mock_rows, bool)
            or not isinstance(mock_rows, int)
            or not 0 <= mock_rows <= MAX_MOCK_ROWS
        ):
            raise InvalidInputError(f"mock_rows must be an integer from 0 to {MAX_MOCK_ROWS}")
        wanted = spec.get("datasets")
        visible = [d.name for d in ctx.visible_datasets()]
        if wanted is not None:
            if not isinstance(wanted, list) or not all(isinstance(w, str) for w in wanted):
                raise InvalidInputError("datasets must be a list of dataset names")
            for name in wanted:
                ctx.dataset(name)  # raises for datasets not shared with the requester
            visible = [v for v in visible if v in wanted]
        return Plan(
            technique=self.name,
            datasets=tuple(visible),
            outputs="metadata and mock rows",
            details={"mock_rows": mock_rows},
        )

    def run(self, plan: Plan, ctx: RunContext) -> Outcome:
        entries = []
        for name in plan.datasets:
            dataset = ctx.dataset(name)
            own = dataset.owner == ctx.requester.name
            agreements = ctx.agreements_for(name)
            min_group = max([int(a.rules.get("min_group_size", 0)) for a in agreements] or [0])
            count = (
                {"rows": dataset.row_count, "rows_shown_as": f"exactly {dataset.row_count}"}
                if own
                else rounded_count(dataset.row_count, min_group)
            )
            entries.append(
                {
                    "dataset": name,
                    "owner": dataset.owner,
                    "description": dataset.description,
                    "version": dataset.version,
                    **count,
                    "columns": [c.model_dump(by_alias=True, mode="json") for c in dataset.columns],
                    "techniques": [
                        {
                            "technique": a.technique,
                            "agreement": a.id,
                            "purposes": list(a.purposes),
                            "approval": a.approval.value,
                            "valid_until": a.valid_until.isoformat() if a.valid_until else None,
                            "rules": dict(a.rules),
                        }
                        for a in agreements
                    ],
                    "mock_sample": mock_sample(dataset, int(plan.details["mock_rows"]), ctx.rng),
                }
            )
        return Outcome(payload={"datasets": entries})
