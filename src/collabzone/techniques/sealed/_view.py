"""What the console shows each reader of a sealed job's release (its own part only).

Both parties read which module ran and its code hash (what the partner approved); the
recipient of the rows reads them as a table cut to the page's row limit, the requester
its thresholded count. Never the code: it is not in any payload.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from collabzone.techniques.view import ResultView, TableView, cell, table


def sealed_view(payload: Mapping[str, Any]) -> ResultView:
    """Module and hash for every reader; the rows or the count where the payload holds them."""
    facts: list[tuple[str, str]] = [
        ("Sealed module", cell(payload.get("module"))),
        ("Code SHA-256", cell(payload.get("code_sha256"))),
    ]
    if "count" in payload:
        count = payload["count"]
        facts.append(
            ("Rows delivered", "withheld (under min_group_size)" if count is None else cell(count))
        )
    tables: tuple[TableView, ...] = ()
    rows = payload.get("rows")
    if isinstance(rows, Mapping) and isinstance(rows.get("rows"), list):
        body = [r for r in rows["rows"] if isinstance(r, list | tuple)]
        facts.append(("Rows delivered to you", cell(len(body))))
        tables = (table("Outputs delivered to you", list(rows.get("columns") or []), body),)
    return ResultView(facts=tuple(facts), tables=tables)
