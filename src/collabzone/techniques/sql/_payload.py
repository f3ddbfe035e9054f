"""Released tables as JSON payloads, and back to Arrow, CSV, Parquet or a Rich table."""

from __future__ import annotations

import datetime as dt
import decimal
import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa

_PLAIN = (str, int, bool)
"""Cell types that are JSON as they are (the common case, checked first)."""


def jsonable(value: Any) -> Any:
    """A JSON-safe form of one cell (dates as ISO text, decimals as floats, NaN as None)."""
    if value is None or type(value) in _PLAIN:
        return value
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dt.date | dt.datetime | dt.time):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return value


def table_payload(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> dict[str, Any]:
    return {"columns": list(columns), "rows": [[jsonable(v) for v in row] for row in rows]}


def to_arrow(payload: Mapping[str, Any]) -> pa.Table:
    """The released rows as an Arrow table (intervals as ``<column>_ci_low/_ci_high``)."""
    columns = list(payload["columns"])
    rows = payload["rows"]
    data: dict[str, list[Any]] = {c: [row[i] for row in rows] for i, c in enumerate(columns)}
    for name, intervals in (payload.get("confidence_intervals") or {}).items():
        data[f"{name}_ci_low"] = [iv[0] for iv in intervals]
        data[f"{name}_ci_high"] = [iv[1] for iv in intervals]
    return pa.table(data) if data else pa.table({})


def to_csv(payload: Mapping[str, Any]) -> str:
    import pyarrow.csv as pacsv

    sink = io.BytesIO()
    pacsv.write_csv(to_arrow(payload), sink)
    return sink.getvalue().decode("utf-8")


def to_parquet(payload: Mapping[str, Any], path: str) -> None:
    import pyarrow.parquet as pq

    pq.write_table(to_arrow(payload), path)


def summary(payload: Mapping[str, Any]) -> list[str]:
    """One line per protection applied, for the footer of any rendering."""
    lines = []
    if payload.get("noise_scale"):
        scales = ", ".join(f"{k}={v:.4g}" for k, v in payload["noise_scale"].items())
        lines.append(f"noise scale: {scales} ({payload.get('mechanism')})")
    if payload.get("spent"):
        lines.append(f"spent: {payload['spent']}")
    lines.extend(str(n) for n in payload.get("notes", []))
    return lines


def render(payload: Mapping[str, Any]) -> Any:
    """A Rich table of the payload with its protections as the caption."""
    from rich.table import Table

    table = Table(caption="\n".join(summary(payload)) or None)
    arrow = to_arrow(payload)
    for name in arrow.column_names:
        table.add_column(name)
    for row in arrow.to_pylist():
        table.add_row(*["" if v is None else str(v) for v in row.values()])
    return table
