"""The request page's "Result" section: a technique's :class:`ResultView` made into markup.

Curves are inline SVG line charts drawn here (no script, like the budget charts), images
are PNG data URIs (the console's Content-Security-Policy allows ``img-src data:``); every
text is escaped. The view comes from the technique, the payload from ``Zone.result``, so
a reader sees only what the release addressed to it.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass
from html import escape
from typing import Any

from collabzone.errors import CollabzoneError
from collabzone.model import Request as ZoneRequest
from collabzone.model import RequestStatus
from collabzone.techniques import registry
from collabzone.techniques.view import CurveView, ResultView, TableView
from collabzone.zone import Zone

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")
GRID = "#ddd"
AXIS = "#555"


@dataclass(frozen=True)
class ShownImage:
    title: str
    source: str
    alt: str


@dataclass(frozen=True)
class ShownResult:
    """A result view ready for the template: SVG strings and data URIs."""

    facts: tuple[tuple[str, str], ...]
    tables: tuple[TableView, ...]
    charts: tuple[str, ...]
    images: tuple[ShownImage, ...]


def shown_result(zone: Zone, request: ZoneRequest) -> ShownResult | None:
    """The caller's view of a released request's result, or None when it reads none."""
    if request.status is not RequestStatus.RELEASED:
        return None
    try:
        payload = zone.result(request.id).payload
        view = registry.get(request.technique).result_view(payload) if payload else None
    except CollabzoneError:
        return None
    if not view:
        return None
    return _shown(view)


def request_progress(zone: Zone, request: ZoneRequest) -> dict[str, Any] | None:
    """Where the request's job stands, from the technique's ``progress`` hook over the
    audit events the caller may read (None: the technique reports no progress)."""
    hook = getattr(registry.get(request.technique), "progress", None)
    if hook is None:
        return None
    doc: dict[str, Any] = hook(
        request.id,
        request.status.value,
        zone.request_plan(request.id),
        zone.audit_events(request.id),
    )
    return doc


def shown_progress(zone: Zone, request: ZoneRequest) -> ShownResult | None:
    """The request page's "Progress" section of an approved or running job, or None."""
    if request.status not in (RequestStatus.APPROVED, RequestStatus.RUNNING):
        return None
    technique = registry.get(request.technique)
    if getattr(technique, "progress_view", None) is None:
        return None
    try:
        doc = request_progress(zone, request)
    except CollabzoneError:
        return None
    if doc is None:
        return None
    view = technique.progress_view(doc)  # type: ignore[attr-defined]
    return _shown(view) if view else None


def _shown(view: ResultView) -> ShownResult:
    charts = tuple(svg_curves(c, f"curve-{i}") for i, c in enumerate(view.curves))
    images = tuple(
        ShownImage(i.title, "data:image/png;base64," + base64.b64encode(i.png).decode(), i.alt)
        for i in view.images
    )
    return ShownResult(view.facts, view.tables, charts, images)


def _ticks(low: float, high: float, most: int = 5) -> list[float]:
    span = high - low
    if span <= 0 or not math.isfinite(span):
        return [low]
    raw = span / most
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step) * step
    return [first + i * step for i in range(int((high - first) / step) + 1)]


def svg_curves(curve: CurveView, chart_id: str, width: int = 560, height: int = 260) -> str:
    """Named lines over a shared x axis as an accessible SVG chart with a legend."""
    points = [p for line in curve.lines.values() for p in line if all(map(math.isfinite, p))]
    if not points:
        return f'<p class="muted">{escape(curve.title)}: nothing to draw.</p>'
    left, right, top, bottom = 56, 16, 14, 58
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, x1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    y0, y1 = min(ys), max(ys)
    pad = (y1 - y0) * 0.08 or abs(y1) * 0.1 or 1.0
    y0, y1 = y0 - pad, y1 + pad
    plot_w, plot_h = width - left - right, height - top - bottom

    def x(value: float) -> float:
        return left + plot_w * (value - x0) / (x1 - x0)

    def y(value: float) -> float:
        return top + plot_h * (1 - (value - y0) / (y1 - y0))

    title = escape(curve.title)
    desc = escape(
        "; ".join(
            f"{name}: " + ", ".join(f"({a:g}, {b:.4g})" for a, b in line[:20])
            for name, line in curve.lines.items()
        )
    )
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" class="chart" '
        f'viewBox="0 0 {width} {height}" aria-labelledby="{chart_id}-t {chart_id}-d">',
        f'<title id="{chart_id}-t">{title}</title><desc id="{chart_id}-d">{desc}</desc>',
    ]
    for value in _ticks(y0, y1):
        parts.append(
            f'<line x1="{left}" y1="{y(value):.1f}" x2="{width - right}" y2="{y(value):.1f}" '
            f'stroke="{GRID}"/><text x="{left - 6}" y="{y(value) + 4:.1f}" font-size="12" '
            f'text-anchor="end">{value:.4g}</text>'
        )
    for value in _ticks(x0, x1, 8):
        parts.append(
            f'<text x="{x(value):.1f}" y="{height - bottom + 16}" font-size="12" '
            f'text-anchor="middle">{value:g}</text>'
        )
    parts += [
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" '
        f'y2="{height - bottom}" stroke="{AXIS}"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{height - bottom}" stroke="{AXIS}"/>',
        f'<text x="{left + plot_w / 2:.1f}" y="{height - bottom + 34}" font-size="12" '
        f'text-anchor="middle">{escape(curve.x_label)}</text>',
        f'<text x="12" y="{top + plot_h / 2:.1f}" font-size="12" text-anchor="middle" '
        f'transform="rotate(-90 12 {top + plot_h / 2:.1f})">{escape(curve.y_label)}</text>',
    ]
    for index, (name, line) in enumerate(curve.lines.items()):
        colour = PALETTE[index % len(PALETTE)]
        kept = [p for p in line if all(map(math.isfinite, p))]
        if kept:
            path = " ".join(
                f"{'M' if i == 0 else 'L'} {x(a):.1f} {y(b):.1f}" for i, (a, b) in enumerate(kept)
            )
            parts.append(
                f'<path class="line" d="{path}" fill="none" stroke="{colour}" stroke-width="2">'
                f"<title>{escape(name)}</title></path>"
            )
        legend_x = left + 8 + 150 * index
        parts.append(
            f'<rect x="{legend_x}" y="{height - 14}" width="12" height="4" fill="{colour}"/>'
            f'<text x="{legend_x + 16}" y="{height - 9}" font-size="12">{escape(name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
