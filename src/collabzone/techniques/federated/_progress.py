"""Where a running federated job stands, from what the zone already audits.

Every round the zone's aggregator appends a ``job.federated.round`` audit event (round,
clients, clipping, noise, epsilon so far, and the accuracy and loss on the analyst's own
evaluation dataset when the job names one). The progress of a job is read off those
events, so it shows each reader exactly the events it may read (the requester and the
owners of the job's datasets), nothing the release would not show later, and it needs no
state of its own: a restarted server shows the same. Used by ``GET
/v1/requests/{id}/progress``, the console's request page and ``collabzone fl status``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from collabzone.techniques.view import CurveView, ResultView, cell

ROUND = "job.federated.round"
ANALYTICS = "job.federated.analytics"
NODES = "job.federated.nodes"
"""Flower path, before round 1: how many of the job's SuperNodes the SuperLink lists online."""
LIVE = ("approved", "running")


def progress(
    request_id: str, status: str, plan: Mapping[str, Any], events: Iterable[Mapping[str, Any]]
) -> dict[str, Any]:
    """``{request, status, live, round, rounds, nodes, connected, clients, epsilon,
    metrics, last}``: ``round`` of ``rounds`` planned (the budget may stop the job
    earlier), how many of the nodes' SuperNodes had connected (Flower path; None if not
    reported), the clients of the last round, its epsilon so far, and per-round
    evaluation metrics."""
    details = plan.get("details") or {}
    spec = details.get("spec") or {}
    rounds: list[Mapping[str, Any]] = []
    connected: int | None = None
    for event in events:
        if event.get("subject") != request_id:
            continue
        if event.get("action") == NODES:
            connected = int((event.get("details") or {}).get("connected", 0))
        if event.get("action") in (ROUND, ANALYTICS):
            record = dict(event.get("details") or {})
            record.setdefault("round", 1)  # an analytics job is one round
            rounds.append(record)
    rounds.sort(key=lambda r: int(r["round"]))
    last = rounds[-1] if rounds else {}
    metrics = [
        {k: r[k] for k in ("round", "accuracy", "loss") if k in r}
        for r in rounds
        if "accuracy" in r or "loss" in r
    ]
    return {
        "request": request_id,
        "status": status,
        "live": status in LIVE,
        "task": spec.get("task", "train"),
        "round": int(last.get("round", 0)),
        "rounds": int(spec.get("rounds", 1)),
        "nodes": list(details.get("nodes") or []),
        "connected": connected,
        "clients": list(last.get("clients") or []),
        "epsilon": last.get("epsilon"),
        "projected_epsilon": details.get("projected_epsilon"),
        "metrics": metrics,
        "last": {k: last[k] for k in ("accuracy", "loss") if k in last},
    }


def summary(doc: Mapping[str, Any]) -> str:
    """One line: "round 3 of 10, 3 clients, accuracy 0.78" (or waiting/finished)."""
    if not doc["round"]:
        waiting = "waiting for the owners' nodes" if doc["status"] == "running" else doc["status"]
        if doc["status"] == "running" and doc.get("connected") is not None:
            waiting += f": {doc['connected']} of {len(doc['nodes'])} SuperNodes connected"
        return f"not started ({waiting}); {doc['rounds']} rounds planned"
    parts = [f"round {doc['round']} of {doc['rounds']}", f"{len(doc['clients'])} clients"]
    parts += [f"{k} {v:.4g}" for k, v in doc["last"].items()]
    if doc["epsilon"] is not None:
        parts.append(f"epsilon so far {doc['epsilon']:.4g}")
    return ", ".join(parts)


def progress_view(doc: Mapping[str, Any]) -> ResultView:
    """The console's view of a running job: facts and the accuracy and loss curves."""
    facts = (
        ("progress", summary(doc)),
        ("round", f"{doc['round']} of {doc['rounds']}"),
        ("nodes of the job", ", ".join(doc["nodes"]) or "-"),
        *(
            (("SuperNodes connected", f"{doc['connected']} of {len(doc['nodes'])}"),)
            if doc.get("connected") is not None
            else ()
        ),
        ("clients in the last round", ", ".join(map(str, doc["clients"])) or "-"),
        ("epsilon so far", cell(doc["epsilon"])),
        ("epsilon approved", cell(doc["projected_epsilon"])),
    )
    curves = tuple(
        CurveView(
            f"{name.capitalize()} per round (evaluation data)",
            "round",
            name,
            {name: tuple((float(m["round"]), float(m[name])) for m in doc["metrics"] if name in m)},
        )
        for name in ("accuracy", "loss")
        if any(name in m for m in doc["metrics"])
    )
    return ResultView(facts=facts, curves=curves)
