"""Privacy budget over time as inline SVG (pure: events in, markup out).

One chart per (party, dataset, period): the cumulative epsilon spent at each release as a
step line, read from the audit log's ``request.released`` receipts, with the agreement's
cap drawn as a dashed line, a time axis with ticks to the second and an epsilon axis with
round ticks. The server draws it (no script, no charting bundle; see docs/dependencies.md):
a maintainer extends it by adding marks to :func:`svg_chart`.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from html import escape
from typing import Any

from collabzone.budget import period_key
from collabzone.server._console_words import number

LINE = "#1f77b4"
CAP = "#b00020"
GRID = "#ddd"
AXIS = "#555"
STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200)
DAY = 86400
MARKERS_UP_TO = 60
"""Releases are drawn as dots too while there are few enough to tell apart."""


@dataclass(frozen=True)
class Series:
    """Cumulative spend of one party on one dataset: (time, epsilon so far) points."""

    party: str
    dataset: str
    points: tuple[tuple[dt.datetime, float], ...]
    cap: float | None = None
    period: str = "total"


def budget_series(
    events: Iterable[Mapping[str, Any]], requester_of: Mapping[str, str]
) -> list[Series]:
    """Cumulative epsilon per (requester, dataset) from released-request audit events."""
    running: dict[tuple[str, str], list[tuple[dt.datetime, float]]] = {}
    for event in sorted(events, key=lambda e: e["seq"]):
        if event["action"] != "request.released":
            continue
        party = requester_of.get(event["subject"])
        spent = event.get("details", {}).get("receipt", {}).get("budget_spent", {})
        if party is None or not isinstance(spent, Mapping):
            continue
        at = dt.datetime.fromisoformat(event["at"])
        for dataset, cost in spent.items():
            epsilon = float(cost.get("epsilon", 0.0)) if isinstance(cost, Mapping) else 0.0
            points = running.setdefault((party, dataset), [])
            points.append((at, (points[-1][1] if points else 0.0) + epsilon))
    return [Series(p, d, tuple(pts)) for (p, d), pts in sorted(running.items())]


def in_period(series: Series, period: str, cap: float | None) -> Series:
    """``series`` restarted at zero in the ledger bucket ``period`` (``month:2026-11``...)."""
    kind = period.split(":", 1)[0]
    points: list[tuple[dt.datetime, float]] = []
    before = 0.0
    for at, value in series.points:
        if period_key(kind, at) == period:
            points.append((at, (points[-1][1] if points else 0.0) + value - before))
        before = value
    return replace(series, points=tuple(points), cap=cap, period=period)


def time_ticks(t0: dt.datetime, t1: dt.datetime, most: int = 6) -> list[dt.datetime]:
    """Round instants between ``t0`` and ``t1`` (at most ``most``): 10 s, 5 min, 1 day..."""
    span = (t1 - t0).total_seconds()
    step = next((s for s in STEPS if span / s <= most - 1), None)
    if step is None:
        step = DAY * max(1, math.ceil(span / DAY / (most - 1)))
    epoch = dt.datetime(2000, 1, 1, tzinfo=t0.tzinfo or dt.UTC)
    first = math.ceil((t0 - epoch).total_seconds() / step) * step
    ticks = []
    at = epoch + dt.timedelta(seconds=first)
    while at <= t1:
        ticks.append(at)
        at += dt.timedelta(seconds=step)
    return ticks


def value_ticks(top: float, most: int = 5) -> list[float]:
    """0 and round values up to ``top`` (0.5, 1.0, 1.5... or 0.02, 0.04...)."""
    if top <= 0:
        return [0.0]
    raw = top / most
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    return [round(i * step, 10) for i in range(int(top / step + 1e-9) + 1)]


def _tick_label(at: dt.datetime, span: float) -> str:
    if span < 120:
        return at.strftime("%H:%M:%S")
    if span < 2 * DAY:
        return at.strftime("%H:%M")
    return at.strftime("%d %b")


def svg_chart(series: Series, chart_id: str = "chart", width: int = 560, height: int = 240) -> str:
    """One series as an accessible step chart with its cap, axes and tick labels."""
    if not series.points:
        return '<p class="muted">No privacy budget spent in this period.</p>'
    left, right, top, bottom = 52, 16, 14, 44
    first, last = series.points[0][0], series.points[-1][0]
    pad = max((last - first).total_seconds() * 0.04, 30.0)
    t0, t1 = first - dt.timedelta(seconds=pad), last + dt.timedelta(seconds=pad)
    span = (t1 - t0).total_seconds()
    spent = series.points[-1][1]
    peak = max(spent, series.cap or 0.0) or 1.0
    y_top = peak * 1.08
    plot_w, plot_h = width - left - right, height - top - bottom

    def x(at: dt.datetime) -> float:
        return left + plot_w * (at - t0).total_seconds() / span

    def y(value: float) -> float:
        return top + plot_h * (1 - value / y_top)

    name = escape(f"{series.party} on {series.dataset}")
    cap_words = f" of {number(series.cap)}" if series.cap is not None else ""
    summary = escape(
        f"{series.party} spent ε {number(spent)}{cap_words} on {series.dataset} in "
        f"{len(series.points)} release(s) from {first:%Y-%m-%d %H:%M:%S} to "
        f"{last:%Y-%m-%d %H:%M:%S} UTC"
    )
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" class="chart" '
        f'viewBox="0 0 {width} {height}" aria-labelledby="{chart_id}-t {chart_id}-d">',
        f'<title id="{chart_id}-t">Privacy budget of {name}</title>',
        f'<desc id="{chart_id}-d">{summary}</desc>',
    ]
    for value in value_ticks(peak):
        parts.append(
            f'<line x1="{left}" y1="{y(value):.1f}" x2="{width - right}" y2="{y(value):.1f}" '
            f'stroke="{GRID}"/><text x="{left - 6}" y="{y(value) + 4:.1f}" font-size="12" '
            f'text-anchor="end">{value:g}</text>'
        )
    for tick in time_ticks(t0, t1):
        parts.append(
            f'<line x1="{x(tick):.1f}" y1="{height - bottom}" x2="{x(tick):.1f}" '
            f'y2="{height - bottom + 5}" stroke="{AXIS}"/><text x="{x(tick):.1f}" '
            f'y="{height - bottom + 18}" font-size="12" text-anchor="middle">'
            f"{_tick_label(tick, span)}</text>"
        )
    parts += [
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}" '
        f'stroke="{AXIS}"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{height - bottom}" stroke="{AXIS}"/>',
        f'<text x="{left + plot_w / 2:.1f}" y="{height - 6}" font-size="12" '
        f'text-anchor="middle">time (UTC), {first:%Y-%m-%d}</text>',
        f'<text x="12" y="{top + plot_h / 2:.1f}" font-size="12" text-anchor="middle" '
        f'transform="rotate(-90 12 {top + plot_h / 2:.1f})">ε spent</text>',
    ]
    if series.cap is not None:
        parts.append(
            f'<line class="cap" x1="{left}" y1="{y(series.cap):.1f}" x2="{width - right}" '
            f'y2="{y(series.cap):.1f}" stroke="{CAP}" stroke-width="2" stroke-dasharray="6 4">'
            f"<title>cap ε {number(series.cap)}</title></line>"
            f'<text x="{width - right - 4}" y="{y(series.cap) - 5:.1f}" font-size="12" '
            f'text-anchor="end" fill="{CAP}">cap ε {number(series.cap)}</text>'
        )
    path = [f"M {left} {y(0.0):.1f}"]
    for at, value in series.points:
        path.append(f"H {x(at):.1f} V {y(value):.1f}")
    path.append(f"H {x(t1):.1f}")
    parts.append(
        f'<path class="spent" d="{" ".join(path)}" fill="none" stroke="{LINE}" stroke-width="2"/>'
    )
    if len(series.points) <= MARKERS_UP_TO:
        parts.extend(
            f'<circle cx="{x(at):.1f}" cy="{y(value):.1f}" r="3" fill="{LINE}">'
            f"<title>{at:%Y-%m-%d %H:%M:%S} UTC: ε {value:.6g}</title></circle>"
            for at, value in series.points
        )
    parts.append("</svg>")
    return "".join(parts)
