"""The zone's side of an approved federated job: gather the owners' nodes, aggregate, audit
every round, release.

A federated job is a *fan-out* job (``details["nodes"]``, see
:func:`collabzone.request_jobs.fanout_nodes`): every owner whose dataset it names runs the
client side at its own node, and no node sees the job before every owner approved it.
The zone's host process runs the aggregator:

1. :func:`open_link` (the job must be ``approved``) opens the job's link, the in-process
   stand-in for Flower's SuperLink;
2. each owner's node agent pulls the job, checks the spec against the digest **its owner
   approved** and the zone's signature, and joins with the client built from its own rows
   (:func:`._node.join`);
3. :func:`run` runs the rounds (clipping at the nodes, secure sum, Gaussian noise, RDP
   accounting, :mod:`._federation`), appends one ``job.federated.round`` audit event per
   round (who took part, clipping, noise multiplier, epsilon so far; never an update), scores
   the DP global model on the analyst's own ``evaluation`` dataset, and hands the result to
   :meth:`collabzone.zone.Zone.complete_fanout`, which debits every participating dataset
   and seals the model in the release transaction.

The :class:`LocalLink` lives in this process: the in-process path (tests, demo) runs the
zone and the nodes together. The deployment path (:func:`open_flower`, :func:`run_flower`)
starts the zone's SuperLink instead; each node agent configured with its address starts
its SuperNode for the job (:func:`._node.join`), and the zone's ServerApp (:mod:`._flower`)
runs the rounds with SecAgg+; the zone tails the ServerApp's progress file, which carries
each round's global model after the DP noise, and appends each round's audit event as the
round ends, scored on the evaluation dataset like the in-process path.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from collabzone.budget import PrivacyCost
from collabzone.errors import CollabzoneError, InvalidInputError, NotAuthorisedError
from collabzone.techniques.federated import (
    _accounting,
    _analytics,
    _data,
    _deploy,
    _federation,
    _models,
    _spec,
    _tls,
)
from collabzone.techniques.federated._federation import ClientData

if TYPE_CHECKING:
    from collabzone.model import Request
    from collabzone.zone import Zone

MECHANISM = "gaussian (client-level, RDP accounting)"


@dataclass
class NodeClient:
    """What a node hands its link: the client side bound to its own rows (in-process)."""

    owner: str
    data: ClientData | None
    frame: pd.DataFrame | None = None
    """For analytics: the node's rows, which its local vectors are computed from."""


@dataclass
class LocalLink:
    """The in-process SuperLink of one job: which nodes may join, which did."""

    request_id: str
    nodes: tuple[str, ...]
    clients: dict[str, NodeClient] = field(default_factory=dict)

    def join(self, client: NodeClient) -> None:
        if client.owner not in self.nodes:
            raise NotAuthorisedError(
                f"{client.owner!r} is not a node of federated job {self.request_id}"
            )
        self.clients[client.owner] = client

    def missing(self) -> list[str]:
        return [n for n in self.nodes if n not in self.clients]


_LINKS: dict[str, LocalLink] = {}
_LOCK = threading.Lock()


def link_for(request_id: str) -> LocalLink | None:
    """The open link of a job, if the zone's aggregator (this process) opened one."""
    with _LOCK:
        return _LINKS.get(request_id)


def _startable(status: str) -> bool:
    """An aggregator may open a job every owner approved (``approved``), or one it took
    already (``running``: :meth:`Zone.start_fanout` refuses a second taker)."""
    return status in ("approved", "running")


def _take(zone: Zone, request_id: str, status: str, how: str) -> None:
    """``approved -> running``, carried by this process (a crash: failed at recovery)."""
    if status == "approved":
        zone.start_fanout(request_id, {"aggregator": how})


def _spent(details: dict[str, Any], epsilon: float) -> dict[str, PrivacyCost]:
    """What the rounds already run cost each dataset (charged if the job fails after)."""
    if epsilon <= 0:
        return {}
    delta = float(details["spec"]["privacy"]["delta"])
    owners: dict[str, str] = details["owners"]
    return {name: PrivacyCost(epsilon=epsilon, delta=delta) for name in owners}


def open_link(zone: Zone, request_id: str) -> LocalLink:
    """Open the job's link; refused unless every owner approved (status ``approved``)."""
    job = zone.fanout_job(request_id)
    if not _startable(job["status"]):
        raise InvalidInputError(
            f"request {request_id} is {job['status']}: a federated job starts only once "
            "every owner approved it"
        )
    link = LocalLink(request_id, tuple(job["plan"]["details"]["nodes"]))
    with _LOCK:
        _LINKS[request_id] = link
    return link


def _evaluation(zone: Zone, request_id: str, spec: _spec.JobSpec, domains: dict[str, Any]) -> Any:
    if spec.evaluation is None:
        return None
    frame = zone.job_evaluation_table(request_id).to_pandas()
    x = _data.encode(frame, spec.features, domains)
    y = _data.encode_label(frame, str(spec.label), domains[str(spec.label)])
    return x, y


def run(zone: Zone, request_id: str, seed: int = 0) -> Request:
    """Run an opened job with the nodes that joined and release it (see the module doc)."""
    job = zone.fanout_job(request_id)
    details = job["plan"]["details"]
    spec = _spec.from_json(details["spec"])
    link = link_for(request_id)
    if link is None:
        raise InvalidInputError(f"open the link of {request_id} first (open_link)")
    if link.missing():
        raise InvalidInputError(
            f"waiting for the nodes of {', '.join(link.missing())}; their agents have not "
            "joined the job yet"
        )
    domains = dict(details["domains"])
    _take(zone, request_id, job["status"], "in-process")
    spent = [0.0]
    try:
        if spec.task == "analytics":
            frames = {o: c.frame for o, c in link.clients.items() if c.frame is not None}
            payload, _ = _analytics.run(spec, frames, domains)
            zone.job_event(request_id, "federated.analytics", {
                "clients": sorted(frames), "noise_multiplier": spec.privacy.noise_multiplier,
                "epsilon": payload.get("epsilon", 0.0),
            })  # fmt: skip
            return zone.complete_fanout(request_id, payload, mechanism=MECHANISM)
        evaluation = _evaluation(zone, request_id, spec, domains)
        metrics: list[dict[str, Any]] = []

        def on_round(record: dict[str, Any], params: list[Any]) -> None:
            event = {**record, "noise_multiplier": spec.privacy.noise_multiplier}
            if evaluation is not None:
                x, y = evaluation
                scored = {
                    "round": record["round"],
                    "loss": _models.log_loss(params, x, y),
                    "accuracy": _models.accuracy(params, x, y),
                }
                metrics.append(scored)
                event.update(loss=scored["loss"], accuracy=scored["accuracy"])
            zone.job_event(request_id, "federated.round", event)
            spent[0] = float(record.get("epsilon", 0.0))

        clients = {o: c.data for o, c in link.clients.items() if c.data is not None}
        result = _federation.train(
            spec, clients, float(details["projected_epsilon"]), seed=seed, on_round=on_round
        )
        payload = {
            "model": [p.tolist() for p in result.params],
            "rounds": result.rounds,
            "epsilon": result.epsilon,
            "stopped": result.stopped,
            "clients": sorted(clients),
            "metrics": metrics,
        }
        return zone.complete_fanout(request_id, payload, mechanism=MECHANISM)
    except Exception as exc:
        # the rounds already run were seen (their audit events carry the evaluation scores)
        zone.fail_fanout(request_id, _message(exc), _spent(details, spent[0]))
        raise
    finally:
        with _LOCK:
            _LINKS.pop(request_id, None)


def _message(exc: Exception) -> str:
    """A failure message that names the error's type, never data-dependent text."""
    detail = exc.message if isinstance(exc, CollabzoneError) else ""
    return f"the zone's aggregator stopped ({type(exc).__name__}{': ' + detail if detail else ''})"


@dataclass
class FlowerLink:
    """The zone's SuperLink for one job (deployment path)."""

    request_id: str
    nodes: tuple[str, ...]
    deployment: _deploy.Deployment
    address: str
    raw: dict[str, Any] = field(default_factory=dict)
    """The ServerApp's whole result file (tests read what reached the strategy)."""


def open_flower(
    zone: Zone,
    request_id: str,
    root: Path,
    tls: _tls.Certificates | None = None,
    host: str = "127.0.0.1",
    port: int | None = None,
    advertised: str | None = None,
) -> FlowerLink:
    """Start the job's SuperLink (the job must be approved by every owner), over TLS with
    the zone's certificates when ``tls`` is given; node agents configured with its address
    start their SuperNodes when they pull the job."""
    job = zone.fanout_job(request_id)
    if not _startable(job["status"]):
        raise InvalidInputError(
            f"request {request_id} is {job['status']}: a federated job starts only once "
            "every owner approved it"
        )
    deployment, address = _deploy.start_link(root, tls, host, port, advertised)
    return FlowerLink(request_id, tuple(job["plan"]["details"]["nodes"]), deployment, address)


def run_config_of(job: Mapping[str, Any]) -> dict[str, Any]:
    """The run config the zone gives its ServerApp for a fan-out job (deployed or
    simulated): the signed spec, the zone's key, the public domains, the budget."""
    details = job["plan"]["details"]
    return {
        "spec-json": json.dumps(details["spec"]),
        "spec-sha256": details["spec_sha256"],
        "signature": job["signature"],
        "zone-key": job["zone_key"],
        "domains-json": json.dumps(details["domains"]),
        "epsilon-budget": float(details["projected_epsilon"]),
    }


def run_flower(zone: Zone, link: FlowerLink, timeout: float = 600.0) -> Request:
    """Submit the ServerApp run with the zone-signed spec, wait for it (the SuperNodes of
    every node must have joined), audit its rounds, release; stops the SuperLink."""
    job = zone.fanout_job(link.request_id)
    details = job["plan"]["details"]
    spec = _spec.from_json(details["spec"])
    run_config = run_config_of(job)
    evaluation = _evaluation(zone, link.request_id, spec, dict(details["domains"]))
    _take(zone, link.request_id, job["status"], "flower")
    p = spec.privacy
    audited: list[int] = []
    metrics: list[dict[str, Any]] = []

    def scored(r: int, model: list[Any]) -> dict[str, Any]:
        """Round ``r``'s model (after the DP noise) on the analyst's evaluation data."""
        if evaluation is None:
            return {}
        x, y = evaluation
        params = [np.asarray(a, dtype=np.float64) for a in model]
        score = {"round": r, "loss": _models.log_loss(params, x, y),
                 "accuracy": _models.accuracy(params, x, y)}  # fmt: skip
        metrics.append(score)
        return {"loss": score["loss"], "accuracy": score["accuracy"]}

    def on_round(r: int, model: list[Any]) -> None:  # live: console and `fl status` follow
        zone.job_event(link.request_id, "federated.round", {
            "round": r, "clients": list(link.nodes), "clipping_norm": p.clipping_norm,
            "noise_std": p.noise_multiplier * p.clipping_norm,
            "epsilon": _accounting.epsilon(r, p.sampling_rate, p.noise_multiplier, p.delta),
            "noise_multiplier": p.noise_multiplier, **scored(r, model),
        })  # fmt: skip
        audited.append(r)

    def on_nodes(connected: int) -> None:  # before round 1: the SuperNodes as they join
        zone.job_event(link.request_id, "federated.nodes",
                       {"connected": connected, "nodes": len(link.nodes)})  # fmt: skip

    try:
        link.raw = _deploy.run_app(link.deployment, run_config, timeout, on_round, on_nodes)
    except Exception as exc:  # nothing reached the analyst: the rounds are audited at the end
        zone.fail_fanout(link.request_id, _message(exc))
        raise
    finally:
        link.deployment.stop()
    rounds = [{**r, "clients": list(link.nodes)} for r in link.raw["rounds"]]
    for record in rounds:  # rounds the progress file did not report (none, normally)
        if record["round"] not in audited:
            event = {**record, "noise_multiplier": spec.privacy.noise_multiplier}
            if record is rounds[-1]:  # the released model is that round's
                event.update(scored(record["round"], link.raw["model"]))
            zone.job_event(link.request_id, "federated.round", event)
    payload = {
        "model": link.raw["model"],
        "rounds": rounds,
        "epsilon": link.raw["epsilon"],
        "stopped": link.raw["stopped"],
        "clients": list(link.nodes),
        "metrics": sorted(metrics, key=lambda m: int(m["round"])),
    }
    return zone.complete_fanout(link.request_id, payload, mechanism=MECHANISM)
