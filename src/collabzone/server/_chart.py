"""Privacy budget over time as an inline SVG (pure: events in, markup out).

The console shows, per (party, dataset), the cumulative epsilon spent at each release,
as a step line, read from the audit log's ``request.released`` receipts.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b")


@dataclass(frozen=True)
class Series:
    """Cumulative spend of one party on one dataset: (time, epsilon so far) points."""

    party: str
    dataset: str
    points: tuple[tuple[dt.datetime, float], ...]


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


def svg_chart(series: Sequence[Series], width: int = 720, height: int = 280) -> str:
    """A step chart of ``series`` with axes, labels and a legend; empty note if no data."""
    points = [pt for s in series for pt in s.points]
    if not points:
        return '<p class="muted">No privacy budget spent yet.</p>'
    left, right, top, bottom = 56, 180, 16, 36
    t0 = min(t for t, _ in points)
    t1 = max(t for t, _ in points)
    span = max((t1 - t0).total_seconds(), 1.0)
    top_value = max(v for _, v in points) or 1.0

    def x(at: dt.datetime) -> float:
        return left + (width - left - right) * (at - t0).total_seconds() / span

    def y(value: float) -> float:
        return height - bottom - (height - top - bottom) * value / top_value

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" aria-label="privacy budget spent over time">',
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}" '
        'stroke="#555"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{height - bottom}" stroke="#555"/>',
        f'<text x="4" y="{top + 10}" font-size="11">&#949; {top_value:.3g}</text>',
        f'<text x="4" y="{height - bottom}" font-size="11">0</text>',
        f'<text x="{left}" y="{height - 8}" font-size="11">{escape(t0.strftime("%m-%d %H:%M"))}'
        "</text>",
        f'<text x="{width - right}" y="{height - 8}" font-size="11" text-anchor="end">'
        f"{escape(t1.strftime('%m-%d %H:%M'))}</text>",
    ]
    for i, s in enumerate(series):
        colour = PALETTE[i % len(PALETTE)]
        path = [f"M {x(s.points[0][0]):.1f} {y(0.0):.1f}"]
        for at, value in s.points:
            path.append(f"H {x(at):.1f} V {y(value):.1f}")
        path.append(f"H {width - right:.1f}")
        label = escape(f"{s.party} on {s.dataset}: {s.points[-1][1]:.3g}")
        parts.append(
            f'<path d="{" ".join(path)}" fill="none" stroke="{colour}" stroke-width="2">'
            f"<title>{label}</title></path>"
        )
        legend_y = top + 14 * i + 10
        parts.append(
            f'<rect x="{width - right + 8}" y="{legend_y - 8}" width="10" height="10" '
            f'fill="{colour}"/><text x="{width - right + 22}" y="{legend_y}" font-size="11">'
            f"{label}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)
