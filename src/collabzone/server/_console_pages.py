"""The console's reading pages: request history, the audit log and the privacy budgets.

History and audit are filtered by query parameters (so a filtered page can be bookmarked)
and paged on the server: a zone with years of events still sends one screenful.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from collabzone.errors import InvalidInputError
from collabzone.model import RequestStatus
from collabzone.server._chart import budget_series, in_period, svg_chart
from collabzone.server._console_base import caller_of, page
from collabzone.server._console_words import STATUS_WORDS, budget_words, flatten

router = APIRouter()
T = TypeVar("T")
HISTORY_PAGE = 25
AUDIT_PAGE = 50


@dataclass(frozen=True)
class Paged:
    """One page of a filtered list, with links that keep the filters."""

    items: Sequence[Any]
    number: int
    pages: int
    total: int
    query: Mapping[str, str]

    def link(self, number: int) -> str:
        """The query string of page ``number`` with the same filters."""
        return "?" + urlencode({**self.query, "page": str(number)})


def paged(items: Sequence[T], wanted: str | None, size: int, query: Mapping[str, str]) -> Paged:
    """Page ``wanted`` (1-based, clamped) of ``items``, ``size`` per page."""
    pages = max(1, math.ceil(len(items) / size))
    try:
        number = min(max(int(wanted or 1), 1), pages)
    except ValueError:
        number = 1
    start = (number - 1) * size
    return Paged(items[start : start + size], number, pages, len(items), query)


def _filters(request: Request, names: Sequence[str]) -> dict[str, str]:
    """The non-empty filter parameters among ``names`` (trimmed, at most 200 characters)."""
    out = {}
    for name in names:
        value = request.query_params.get(name, "").strip()[:200]
        if value:
            out[name] = value
    return out


def _instant(text: str | None, name: str) -> dt.datetime | None:
    """A ``datetime-local`` form value (read as UTC) or ISO 8601 instant."""
    if not text:
        return None
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInputError(f"{name}: give a date and time like 2026-12-02T14:05") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _keep(items: Sequence[T], *tests: Callable[[T], bool]) -> list[T]:
    return [item for item in items if all(test(item) for test in tests)]


@router.get("/history", response_class=HTMLResponse)
def history(request: Request) -> HTMLResponse:
    caller = caller_of(request)
    wanted = _filters(request, ("status", "technique", "requester", "q"))
    everything = sorted(caller.zone.requests(), key=lambda r: r.created_at, reverse=True)
    status = wanted.get("status")
    if status is not None and status not in {s.value for s in RequestStatus}:
        raise InvalidInputError(f"status: one of {', '.join(STATUS_WORDS.values())}")
    needle = wanted.get("q", "").lower()
    kept = _keep(
        everything,
        lambda r: status is None or r.status.value == status,
        lambda r: r.technique == wanted.get("technique", r.technique),
        lambda r: r.requester == wanted.get("requester", r.requester),
        lambda r: not needle or needle in " ".join((r.id, r.purpose, *r.datasets)).lower(),
    )
    return page(
        request,
        caller,
        "history.html",
        listing=paged(kept, request.query_params.get("page"), HISTORY_PAGE, wanted),
        wanted=wanted,
        statuses=[(s.value, word) for s, word in STATUS_WORDS.items()],
        techniques=sorted({r.technique for r in everything}),
        requesters=sorted({r.requester for r in everything}),
    )


@router.get("/audit", response_class=HTMLResponse)
def audit_page(request: Request) -> HTMLResponse:
    caller = caller_of(request, "audit:read")
    wanted = _filters(request, ("actor", "action", "since", "until"))
    since = _instant(wanted.get("since"), "since")
    until = _instant(wanted.get("until"), "until")
    events = list(reversed(caller.zone.audit_events()))
    kept = _keep(
        events,
        lambda e: e["actor"] == wanted.get("actor", e["actor"]),
        lambda e: e["action"] == wanted.get("action", e["action"]),
        lambda e: since is None or dt.datetime.fromisoformat(e["at"]) >= since,
        lambda e: until is None or dt.datetime.fromisoformat(e["at"]) <= until,
    )
    return page(
        request,
        caller,
        "audit.html",
        verification=caller.zone.verify_audit(),
        listing=paged(kept, request.query_params.get("page"), AUDIT_PAGE, wanted),
        wanted=wanted,
        actors=sorted({e["actor"] for e in events}),
        actions=sorted({e["action"] for e in events}),
        flatten=flatten,
    )


@dataclass(frozen=True)
class BudgetView:
    """One (party, dataset, period) budget: the words and the chart."""

    party: str
    dataset: str
    period: str
    spent: str
    remaining: str
    debits: int
    chart: str


def _period_words(period: str) -> str:
    kind, _, value = period.partition(":")
    return "for all time" if kind == "total" else f"{kind} {value}"


@router.get("/budget", response_class=HTMLResponse)
def budget_page(request: Request) -> HTMLResponse:
    caller = caller_of(request)
    requester_of = {r.id: r.requester for r in caller.zone.requests()}
    series = {
        (s.party, s.dataset): s for s in budget_series(caller.zone.audit_events(), requester_of)
    }
    views: list[BudgetView] = []
    for row in caller.zone.budget():
        spent = float(row["spent"]["epsilon"])
        left = row["remaining"].get("epsilon")
        cap = None if left is None else spent + float(left)
        found = series.get((row["party"], row["dataset"]))
        shown = in_period(found, row["period"], cap) if found else None
        drawn = (
            svg_chart(shown, chart_id=f"chart-{len(views)}")
            if shown
            else '<p class="muted">No release charted.</p>'
        )
        views.append(
            BudgetView(
                party=row["party"],
                dataset=row["dataset"],
                period=_period_words(row["period"]),
                spent=budget_words(spent, cap),
                remaining="no cap" if cap is None else budget_words(float(left or 0.0), cap),
                debits=int(row["debits"]),
                chart=drawn,
            )
        )
    return page(request, caller, "budget.html", budgets=views)
