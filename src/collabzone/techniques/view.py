"""What the console shows of a released result: facts, tables, curves and images.

A technique describes its payload for people (``Technique.result_view``) with these plain
values; the console renders them (tables as HTML, curves as inline SVG, images as PNG) and
never needs to know the technique. The payload handed in is the reader's own view of the
release (its part only), so a view cannot show one party what was addressed to another.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

MAX_TABLE_ROWS = 50
"""Rows of one table drawn on a page; the rest is said, not drawn (the API has them all)."""


@dataclass(frozen=True)
class TableView:
    """A titled table of already formatted cells; ``more`` rows were left out."""

    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    more: int = 0


@dataclass(frozen=True)
class CurveView:
    """One or more named lines over a shared x axis (e.g. accuracy per round)."""

    title: str
    x_label: str
    y_label: str
    lines: Mapping[str, tuple[tuple[float, float], ...]]


@dataclass(frozen=True)
class ImageView:
    """A PNG the technique drew (e.g. a marginal plot), with its text alternative."""

    title: str
    png: bytes
    alt: str


@dataclass(frozen=True)
class ResultView:
    """Everything the console shows of one release, in order: facts, tables, curves, images."""

    facts: tuple[tuple[str, str], ...] = ()
    tables: tuple[TableView, ...] = ()
    curves: tuple[CurveView, ...] = ()
    images: tuple[ImageView, ...] = field(default_factory=tuple)

    def __bool__(self) -> bool:
        return bool(self.facts or self.tables or self.curves or self.images)


def cell(value: Any) -> str:
    """A payload value as table text: numbers rounded for reading, null as a dash."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:,.4g}" if abs(value) < 1e6 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def table(title: str, columns: Sequence[Any], rows: Sequence[Sequence[Any]]) -> TableView:
    """A table view of payload rows, cut to :data:`MAX_TABLE_ROWS`."""
    shown = tuple(tuple(cell(v) for v in row) for row in rows[:MAX_TABLE_ROWS])
    return TableView(
        title, tuple(str(c) for c in columns), shown, max(0, len(rows) - MAX_TABLE_ROWS)
    )


def default_view(payload: Mapping[str, Any]) -> ResultView:
    """The view of a payload no technique described: top-level scalars as facts and every
    ``{"columns": [...], "rows": [...]}`` table found one level down."""
    facts: list[tuple[str, str]] = []
    tables: list[TableView] = []
    candidates: list[tuple[str, Any]] = [("Result", payload)]
    for key, value in payload.items():
        if key.startswith("_"):
            continue
        if isinstance(value, str | int | float | bool) or value is None:
            facts.append((key.replace("_", " "), cell(value)))
        elif isinstance(value, Mapping):
            candidates.append((key.replace("_", " "), value))
    for title, found in candidates:
        columns, rows = found.get("columns"), found.get("rows")
        if isinstance(columns, list) and isinstance(rows, list):
            names = [c.get("name", "") if isinstance(c, Mapping) else c for c in columns]
            tables.append(table(title, names, [r for r in rows if isinstance(r, list | tuple)]))
    return ResultView(facts=tuple(facts), tables=tuple(tables))
