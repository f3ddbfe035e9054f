"""Simulation placement of a federated job: the zone's governed job through Flower's
Simulation Engine (Ray) instead of a SuperLink and one SuperNode per owner.

The apps are the deployed ones (:mod:`._flower`): the zone's ServerApp (signed spec check,
budget stop from the accountant, SecAgg+ when the job asks for it, the DP wrapper's noise,
per-round records) and the owners' ClientApp (``secaggplus_mod`` and ``fixedclipping_mod``,
the spec checked against the digest each owner approved, local training on the node's own
file). :func:`flwr.simulation.run_simulation` gives neither app a run config nor the
virtual nodes a node config, so this module hands them the same values a deployment does:
the ServerApp gets the zone's run config, and a first mod makes virtual node ``i`` (Flower's
``partition-id``) the ``i``-th owner (its ``data-path`` and ``approved-sha256``) before the
zone's own mods and :func:`._flower._client_fn` run, unchanged.

What a simulation is for: the scale benchmark (100 owners), rehearsing a job's cost, and
tests. Every virtual node runs on the simulating machine (Ray actors), so the owners' files
must be readable there: it is not a placement for real owners' data, whose rows never leave
their nodes (the deployment path). The governed :func:`run` still needs the request to be
``approved`` by every owner and releases through :meth:`collabzone.zone.Zone.complete_fanout`
(audit event per round, debit of every dataset, sealed model), like the deployment path.

Ray is the ``simulation`` extra (``flwr[simulation]``: ``ray==2.55.1``); without it
:func:`run_app` raises :class:`SimulationUnavailableError`.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from flwr.app import Message
from flwr.clientapp import ClientApp
from flwr.clientapp.typing import ClientAppCallable
from flwr.common import Context
from flwr.server import Grid, ServerApp

from collabzone.errors import CollabzoneError, InvalidInputError
from collabzone.techniques.federated import _coordinator, _deploy, _flower, _models, _spec

if TYPE_CHECKING:
    from collabzone.model import Request
    from collabzone.zone import Zone

DEFAULT_BACKEND: dict[str, Any] = {
    "client_resources": {"num_cpus": 1, "num_gpus": 0.0},
    "init_args": {"logging_level": logging.ERROR, "log_to_driver": False},
}
"""One CPU per virtual node (Ray runs as many at a time as the machine has cores)."""


class SimulationUnavailableError(CollabzoneError):
    """Flower's Simulation Engine needs Ray: ``pip install collabzone[simulation]``."""


class _ZoneServer:
    """The zone's ServerApp with the run config a deployment would give it."""

    def __init__(self, run_config: Mapping[str, Any]) -> None:
        self.run_config = dict(run_config)

    def __call__(self, grid: Grid, context: Context) -> None:
        context.run_config = dict(self.run_config)
        _flower.server_app(grid, context)


class _AsOwnerNode:
    """The first mod of the simulated ClientApp: virtual node ``partition-id`` becomes the
    owner at that index, i.e. the rest of the chain (the zone's mods and client function)
    sees the run config and that owner's node config, as on the owner's SuperNode. Pickled
    into Ray's actors (plain data only)."""

    def __init__(self, run_config: Mapping[str, Any], nodes: list[dict[str, Any]]) -> None:
        self.run_config = dict(run_config)
        self.nodes = nodes

    def __call__(self, msg: Message, ctxt: Context, call_next: ClientAppCallable) -> Message:
        owner = Context(
            run_id=ctxt.run_id,
            node_id=ctxt.node_id,
            node_config=dict(self.nodes[int(ctxt.node_config["partition-id"])]),
            state=ctxt.state,  # the SecAgg+ state of this virtual node persists in it
            run_config=dict(self.run_config),
        )
        return call_next(msg, owner)


def server_app(run_config: Mapping[str, Any]) -> ServerApp:
    """The zone's ServerApp (:mod:`._flower`) bound to ``run_config`` for a simulation."""
    app = ServerApp()
    app.main()(_ZoneServer(run_config))
    return app


def client_app(run_config: Mapping[str, Any], nodes: list[Mapping[str, Any]]) -> ClientApp:
    """The owners' ClientApp (the same client function and mods as a SuperNode runs), one
    virtual node per entry of ``nodes`` (node configs, in partition order)."""
    first = _AsOwnerNode(run_config, [dict(n) for n in nodes])
    return ClientApp(client_fn=_flower._client_fn, mods=[first, *_flower.CLIENT_MODS])


def simulate(
    server: ServerApp,
    client: ClientApp,
    num_nodes: int,
    backend_config: Mapping[str, Any] | None = None,
) -> None:
    """Run ``server`` against ``num_nodes`` virtual SuperNodes of ``client`` in Flower's
    Simulation Engine on Ray (started and shut down by Flower)."""
    if importlib.util.find_spec("ray") is None:
        raise SimulationUnavailableError(
            "Flower's simulation engine needs Ray: pip install 'collabzone[simulation]'"
        )
    from flwr.simulation import run_simulation

    # Ray's notice that it will stop overriding CUDA_VISIBLE_DEVICES for num_gpus=0: opt in
    # now (no GPU is used) instead of a FutureWarning per run
    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
    run_simulation(
        server_app=server,
        client_app=client,
        num_supernodes=num_nodes,
        backend_config=json.loads(json.dumps(dict(backend_config or DEFAULT_BACKEND))),
    )


def run_app(
    root: Path,
    run_config: Mapping[str, Any],
    nodes: Mapping[str, Mapping[str, Any]],
    backend_config: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Simulate the job (the zone's ServerApp, one virtual owner's node per entry of
    ``nodes``: owner -> node config) and return the ServerApp's result file (model,
    per-round records, what reached the strategy) with ``engine_seconds``: the wall time of
    the whole simulation, Ray's start and stop included, and ``progress``: each round's
    global model after the DP noise (``{round, model}``, the ServerApp's progress file)."""
    root.mkdir(parents=True, exist_ok=True)
    result = root / "result.json"
    result.unlink(missing_ok=True)
    progress = root / "progress.jsonl"
    progress.unlink(missing_ok=True)
    config = {**run_config, "result-path": str(result), "progress-path": str(progress)}
    configs = [nodes[o] for o in sorted(nodes)]
    start = time.perf_counter()
    simulate(server_app(config), client_app(config, configs), len(configs), backend_config)
    total = time.perf_counter() - start
    if not result.exists():
        raise CollabzoneError("the simulated federated run ended without a result")
    out = dict(json.loads(result.read_text(encoding="utf-8")))
    out["engine_seconds"] = total
    out["progress"] = _deploy.ProgressTail(progress).read()
    return out


def run(
    zone: Zone,
    request_id: str,
    nodes: Mapping[str, Mapping[str, Any]],
    root: Path,
    backend_config: Mapping[str, Any] | None = None,
) -> tuple[Request, dict[str, Any]]:
    """Run an approved federated training job in the simulation engine and release it.

    ``nodes`` maps each of the job's nodes (owner names, as the plan lists them) to its node
    config: ``data-path`` (the owner's file, readable on this machine) and
    ``approved-sha256`` (the digest in that owner's approval book; the ClientApp refuses a
    spec that differs). One ``job.federated.round`` audit event per round, then the release
    (debit, sealed model). Returns the request and the ServerApp's whole result."""
    job = zone.fanout_job(request_id)
    if job["status"] != "approved":
        raise InvalidInputError(
            f"request {request_id} is {job['status']}: a federated job starts only once "
            "every owner approved it"
        )
    details = job["plan"]["details"]
    spec = _spec.from_json(details["spec"])
    if spec.task != "train":
        raise InvalidInputError("the simulation placement runs training jobs only")
    expected = sorted(details["nodes"])
    if sorted(nodes) != expected:
        raise InvalidInputError(
            f"a simulation of {request_id} needs exactly the nodes {', '.join(expected)}"
        )
    raw = run_app(root, _coordinator.run_config_of(job), nodes, backend_config)
    answered = [r["results_received"] for r in raw["server_received"]]
    needed = len(expected) if spec.privacy.sampling_rate >= 1.0 else spec.min_clients
    if len(answered) != len(raw["rounds"]) or any(a < needed for a in answered):
        raise CollabzoneError(
            f"the simulated nodes of {request_id} did not all answer (results per round: "
            f"{answered}; a node refuses a spec its owner did not approve); nothing released"
        )
    clients = list(expected)
    rounds = [{**r, "clients": clients} for r in raw["rounds"]]
    evaluation = _coordinator._evaluation(zone, request_id, spec, dict(details["domains"]))
    models = {int(r["round"]): r["model"] for r in raw.get("progress", [])}
    if rounds:  # the released model is the last round's
        models.setdefault(int(rounds[-1]["round"]), raw["model"])
    metrics = []
    for record in rounds:
        event = {**record, "noise_multiplier": spec.privacy.noise_multiplier,
                 "placement": "simulation"}  # fmt: skip
        model = models.get(int(record["round"]))
        if evaluation is not None and model is not None:  # the round's model after the noise
            x, y = evaluation
            params = [np.asarray(p, dtype=np.float64) for p in model]
            score = {"loss": _models.log_loss(params, x, y),
                     "accuracy": _models.accuracy(params, x, y)}  # fmt: skip
            metrics.append({"round": record["round"], **score})
            event.update(score)
        zone.job_event(request_id, "federated.round", event)
    payload = {
        "model": raw["model"],
        "rounds": rounds,
        "epsilon": raw["epsilon"],
        "stopped": raw["stopped"],
        "clients": clients,
        "metrics": metrics,
    }
    done = zone.complete_fanout(request_id, payload, mechanism=_coordinator.MECHANISM)
    return done, raw
