"""Plain words for the console (pure: values in, text out).

Owners decide on what they read, so nothing reaches the page as an enum value, a Python
dict or a microsecond timestamp: statuses become words, times are given to the second with
their zone, budgets read "ε 0.7 of 2.0", and a request is one sentence saying what the
analyst would receive.

>>> status_word("awaiting_approval")
'waiting for approval'
>>> budget_words(0.7, 2.0)
'ε 0.7 of 2.0'
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlglot
from markupsafe import Markup
from sqlglot.errors import SqlglotError

from collabzone.model import RequestStatus

STATUS_WORDS = {
    RequestStatus.SUBMITTED: "submitted",
    RequestStatus.CHECKED: "checked",
    RequestStatus.AWAITING_APPROVAL: "waiting for approval",
    RequestStatus.APPROVED: "approved",
    RequestStatus.RUNNING: "running",
    RequestStatus.RELEASED: "released",
    RequestStatus.REFUSED: "refused",
    RequestStatus.FAILED: "failed",
}
SYMBOLS = {"epsilon": "ε", "delta": "δ", "rho": "ρ"}


def status_word(status: RequestStatus | str) -> str:
    """The word an owner reads for a request status."""
    return STATUS_WORDS[RequestStatus(status)]


def action_words(action: str) -> str:
    """An audit action in words: ``request.awaiting_approval`` -> ``request waiting for
    approval`` (filters keep the action's own name as their value)."""
    subject, _, verb = action.partition(".")
    if verb in {s.value for s in RequestStatus}:
        return f"{subject} {status_word(verb)}"
    return f"{subject} {verb.replace('_', ' ')}".strip()


def number(value: float) -> str:
    """A privacy amount without float noise (0.30000000000000004 -> 0.3, 2 -> 2.0)."""
    return f"{value:.1f}" if float(value).is_integer() else f"{value:.6g}"


def budget_words(spent: float, cap: float | None, symbol: str = "ε") -> str:
    """Spent of cap, e.g. ``ε 0.7 of 2.0``; without a cap, ``ε 0.7 (no cap)``."""
    if cap is None:
        return f"{symbol} {number(spent)} (no cap)"
    return f"{symbol} {number(spent)} of {number(cap)}"


def cost_words(cost: Mapping[str, Any]) -> str:
    """A privacy cost ``{"epsilon": 0.3, "delta": 0, ...}`` as ``ε 0.3``; free: ``none``."""
    parts = [
        f"{SYMBOLS[name]} {number(float(value))}"
        for name in ("epsilon", "delta", "rho")
        if (value := cost.get(name))
    ]
    return ", ".join(parts) or "none"


def left_words(left: Mapping[str, Any]) -> str:
    """What a receipt says remains, e.g. ``ε 1.7 left``; ``no cap`` where none is granted."""
    parts = [
        f"{SYMBOLS[name]} {number(float(value))} left"
        for name in ("epsilon", "delta", "rho")
        if (value := left.get(name)) is not None
    ]
    return ", ".join(parts) or "no cap"


def when(at: dt.datetime | str | None) -> Markup:
    """A ``<time>`` element to the second in UTC (the page script shows the viewer's zone)."""
    if at is None or at == "":
        return Markup("-")
    moment = dt.datetime.fromisoformat(at) if isinstance(at, str) else at
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    moment = moment.astimezone(dt.UTC).replace(microsecond=0)
    return Markup('<time datetime="{}">{}</time>').format(
        moment.isoformat(), moment.strftime("%Y-%m-%d %H:%M:%S UTC")
    )


@dataclass(frozen=True)
class Standing:
    """One budget a request would charge: its cost and what remains before and after."""

    dataset: str
    cost: str
    remaining_now: str
    remaining_after: str
    over: bool


def standings(
    cost: Mapping[str, Mapping[str, Any]], standing: Mapping[str, Mapping[str, Any]]
) -> list[Standing]:
    """The cost of a request next to what remains of each budget it would charge."""
    out = []
    for dataset, amount in sorted(cost.items()):
        known = standing.get(dataset, {})
        spent = float(known.get("spent", {}).get("epsilon", 0.0))
        cap = known.get("cap", {}).get("epsilon")
        price = float(amount.get("epsilon", 0.0))
        if cap is None:
            now, after, over = "no ε budget granted", "-", False
        else:
            left = max(float(cap) - spent, 0.0)
            now = budget_words(left, float(cap)) + " left"
            after = budget_words(max(left - price, 0.0), float(cap)) + " left"
            over = price > left + 1e-12
        out.append(Standing(dataset, cost_words(amount), now, after, over))
    return out


def _join(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def receives(
    technique: str,
    requester: str,
    datasets: Sequence[str],
    outputs: str,
    details: Mapping[str, Any],
) -> str:
    """One sentence: what ``requester`` would receive if the request were released."""
    where = _join(list(datasets)) if datasets else "the zone"
    if technique == "dp_count":
        entity = details.get("entity") or "people"
        per = f", per {details['by']}" if details.get("by") else ""
        return (
            f"{requester} would receive a differentially private count of distinct "
            f"{entity} in {where}{per}, with 95% confidence intervals."
        )
    if technique == "sql":
        mode = {
            "dp": "differentially private aggregates",
            "list": "a list of rows",
            "template": "the answer of an approved template",
        }.get(str(details.get("mode")), "aggregates over groups of at least the minimum size")
        columns = f" (columns: {outputs})" if outputs else ""
        return (
            f"{requester} would receive {mode} from {where}{columns}, computed by the SQL "
            "below as the zone rewrote it under the agreements' rules."
        )
    what = outputs or "the result"
    return f"{requester} would receive {what} from {where} ({technique})."


def flatten(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    """Nested event details as ``(dotted.key, text)`` lines an owner can read and wrap."""
    if isinstance(value, Mapping):
        out: list[tuple[str, str]] = []
        for key in sorted(value):
            out.extend(flatten(value[key], f"{prefix}.{key}" if prefix else str(key)))
        if not out and prefix:
            return [(prefix, "(none)")]
        return out
    if isinstance(value, list | tuple):
        if all(not isinstance(v, Mapping | list | tuple) for v in value):
            return [(prefix, ", ".join(str(v) for v in value) or "(none)")]
        out = []
        for i, item in enumerate(value):
            out.extend(flatten(item, f"{prefix}[{i}]"))
        return out
    return [(prefix, "-" if value is None else str(value))]


def pretty_sql(sql: str) -> str:
    """The zone's rewritten SQL laid out one clause a line (as stored if it does not parse)."""
    try:
        return ";\n".join(sqlglot.transpile(sql, read="duckdb", write="duckdb", pretty=True))
    except SqlglotError:
        return sql
