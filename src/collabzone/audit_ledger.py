"""The budget ledger recomputed from the audit chain, row by row.

Every debit is written in the transaction that appends its request's ``request.released``
(or ``request.failed``, for privacy loss spent before a failure) event, and that event
lists the debits in ``details["debits"]``; the ledger row names the event (``event_id``).
The chain is hash-linked and anchored by checkpoints, the ledger table is not: deleting a
row would refund budget without a trace. So verification recomputes the ledger from the
chain and compares the two as multisets:

* a row no event charged (inserted by hand, or bound to an event no longer in the log);
* a charge in an event with no row (rows deleted: budget refunded).

Events written before the binding existed carry the amounts in their receipt
(``receipt.budget_spent``) or ``charged`` and their rows have no ``event_id``; they are
matched on (request, dataset, amounts). Pure: rows and events in, problems out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from collabzone.audit import AuditEvent

CHARGING = ("request.released", "request.failed")

Key = tuple[str, ...]


def debit_entry(
    party: str, dataset: str, period: str, epsilon: str, delta: str, rho: str
) -> dict[str, str]:
    """One debit as its event records it (amounts as the ledger's exact decimal strings)."""
    return {
        "party": party,
        "dataset": dataset,
        "period": period,
        "epsilon": epsilon,
        "delta": delta,
        "rho": rho,
    }


def _bound_key(event_id: str, request_id: str, d: Mapping[str, Any]) -> Key:
    return (
        event_id,
        request_id,
        str(d["party"]),
        str(d["dataset"]),
        str(d["period"]),
        str(d["epsilon"]),
        str(d["delta"]),
        str(d["rho"]),
    )


def _legacy_key(request_id: str, dataset: str, amounts: Mapping[str, Any]) -> Key:
    return (
        request_id,
        dataset,
        *(repr(float(amounts.get(n, 0.0))) for n in ("epsilon", "delta", "rho")),
    )


def _legacy_charges(event: AuditEvent) -> Mapping[str, Any]:
    details = event.details
    if event.action == "request.released":
        receipt = details.get("receipt")
        spent = receipt.get("budget_spent") if isinstance(receipt, Mapping) else None
        return spent if isinstance(spent, Mapping) else {}
    charged = details.get("charged")
    return charged if isinstance(charged, Mapping) else {}


def reconcile(events: Iterable[AuditEvent], rows: Iterable[Mapping[Any, Any]]) -> list[str]:
    """Every disagreement between the ledger ``rows`` and the debits the chain records."""
    bound: Counter[Key] = Counter()
    legacy: Counter[Key] = Counter()
    seq_of: dict[str, int] = {}
    for event in events:
        seq_of[event.id] = event.seq
        if event.action not in CHARGING:
            continue
        debits = event.details.get("debits")
        if isinstance(debits, list):
            bound.update(_bound_key(event.id, event.subject, d) for d in debits)
        else:
            for dataset, amounts in _legacy_charges(event).items():
                if isinstance(amounts, Mapping):
                    legacy[_legacy_key(event.subject, dataset, amounts)] += 1
    problems: list[str] = []
    for row in rows:
        what = (
            f"ledger row {row['id']} (request {row['request_id']}, {row['party']} on "
            f"{row['dataset']}, epsilon {row['epsilon']}, rho {row['rho']})"
        )
        event_id = row.get("event_id")
        if event_id is None:
            key = _legacy_key(
                row["request_id"],
                row["dataset"],
                {n: float(row[n]) for n in ("epsilon", "delta", "rho")},
            )
            if legacy[key] > 0:
                legacy[key] -= 1
            else:
                problems.append(f"{what} has no audit event charging it")
            continue
        key = _bound_key(str(event_id), row["request_id"], row)
        if bound[key] > 0:
            bound[key] -= 1
        elif event_id not in seq_of:
            problems.append(f"{what} names event {event_id}, which is not in the audit log")
        else:
            problems.append(
                f"{what} does not match what event {seq_of[event_id]} charged (altered or duplicated)"
            )
    for key, count in bound.items():
        if count > 0:
            event_id, request_id, party, dataset, period, eps, delta, rho = key
            problems.append(
                _missing(f"event {seq_of[event_id]}", request_id, count)
                + f" ({party} on {dataset}, {period}: epsilon {eps}, delta {delta}, rho {rho})"
            )
    for key, count in legacy.items():
        if count > 0:
            request_id, dataset, eps, delta, rho = key
            problems.append(
                _missing(f"the event releasing {request_id}", request_id, count)
                + f" (on {dataset}: epsilon {eps}, delta {delta}, rho {rho})"
            )
    return problems


def _missing(where: str, request_id: str, count: int) -> str:
    rows = "a debit" if count == 1 else f"{count} debits"
    return (
        f"{where} (request {request_id}) charged {rows} the ledger no longer holds "
        "(rows deleted: budget refunded)"
    )
