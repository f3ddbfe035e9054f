"""The simulation placement: the zone's governed job through Flower's Simulation Engine (Ray).

The fast tests need no Ray: the ClientApp's secure-aggregation guard (a server that skips
SecAgg+ on a job whose owners approved it gets no unmasked update) and the placement's
refusals before any engine starts. The slow one runs a 3-owner SecAgg+ job on Ray through
the zone: approvals at the nodes, the zone's ServerApp and ClientApp, audit per round,
release with debit.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from collabzone.errors import InvalidInputError
from collabzone.model import RequestStatus
from collabzone.node import NodeAgent
from collabzone.techniques.federated import _spec
from collabzone.zone import connect
from tests.conftest import Parties
from tests.federated.fl_support import (
    DATASET_SPEC,
    DOMAINS,
    FEATURES,
    LABEL,
    OWNERS,
    adult,
    split_non_iid,
    write_owner_files,
)
from tests.federated.zone_support import make_world

# Flower's protobuf gencode notice on import: Flower is imported inside the tests, where
# this filter applies (at collection it would be an error)
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _signed_config(secure: bool) -> dict[str, Any]:
    spec = _spec.parse({"datasets": list(OWNERS), "features": FEATURES, "label": LABEL,
                        "secure_aggregation": secure})  # fmt: skip
    key = Ed25519PrivateKey.generate()
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {"spec-json": json.dumps(spec.as_json()), "spec-sha256": spec.digest(),
            "signature": _spec.sign(spec, key), "zone-key": raw.hex(),
            "domains-json": json.dumps(DOMAINS)}  # fmt: skip


@pytest.mark.parametrize("secure", [True, False])
def test_a_node_sends_no_unmasked_update_when_its_owner_approved_secure_aggregation(
    secure: bool,
) -> None:
    from flwr.app import Context, MessageType, RecordDict

    from collabzone.techniques.federated import _flower

    # what a server that skips SecAgg+ sends: a training message with no SecAgg+ stage (the
    # two fields the guard reads; a real Message needs a running Flower task identity)
    plain: Any = SimpleNamespace(
        metadata=SimpleNamespace(message_type=MessageType.TRAIN), content=RecordDict()
    )
    context = Context(run_id=1, node_id=1, node_config={}, state=RecordDict(),
                      run_config=_signed_config(secure))  # fmt: skip
    reached: list[Any] = []

    def training(msg: Any, ctxt: Context) -> Any:
        reached.append(msg)
        return msg

    if secure:
        with pytest.raises(PermissionError, match="secure aggregation"):
            _flower.secure_aggregation_as_approved(plain, context, training)
        assert reached == []  # local training never ran, so nothing could leave unmasked
    else:
        _flower.secure_aggregation_as_approved(plain, context, training)
        assert len(reached) == 1


def test_the_simulation_placement_refuses_unapproved_jobs_and_wrong_nodes(
    sqlite_zone: Parties, tmp_path: Path
) -> None:
    from collabzone.techniques.federated import _simulation

    world = make_world(sqlite_zone, approval="manual")
    request = world.submit(rounds=2)
    assert request.status is RequestStatus.AWAITING_APPROVAL, request.reasons
    host = connect(sqlite_zone.root, host=True)
    nodes = {o: {"data-path": "x.csv", "approved-sha256": "0" * 64} for o in OWNERS}
    with pytest.raises(InvalidInputError, match="every owner approved"):
        _simulation.run(host, request.id, nodes, tmp_path)
    for owner in OWNERS:
        world.owner(owner).approve(request.id, "ok")
    with pytest.raises(InvalidInputError, match="exactly the nodes"):
        _simulation.run(host, request.id, {"bank": nodes["bank"]}, tmp_path)
    assert world.analyst.request(request.id).status is RequestStatus.APPROVED


def test_nothing_is_released_when_a_simulated_node_refused(
    sqlite_zone: Parties, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A node that refuses (a digest its owner did not approve) leaves a round short of
    results: the placement releases and charges nothing (the engine is stubbed here: the
    ClientApp's own refusal is the deployment path's, tested there)."""
    from collabzone.errors import CollabzoneError
    from collabzone.techniques.federated import _simulation

    world = make_world(sqlite_zone, approval="manual")
    request = world.submit(rounds=2)
    for owner in OWNERS:
        world.owner(owner).approve(request.id, "ok")
    short = {"model": [[0.0]], "epsilon": 1.0, "stopped": None, "engine_seconds": 1.0,
             "rounds": [{"round": 1}, {"round": 2}],
             "server_received": [{"results_received": 3}, {"results_received": 2}]}  # fmt: skip
    monkeypatch.setattr(_simulation, "run_app", lambda *a, **k: short)
    host = connect(sqlite_zone.root, host=True)
    nodes = {o: {"data-path": "x.csv", "approved-sha256": "0" * 64} for o in OWNERS}
    with pytest.raises(CollabzoneError, match="did not all answer"):
        _simulation.run(host, request.id, nodes, tmp_path)
    assert world.analyst.request(request.id).status is RequestStatus.APPROVED
    assert not [
        e for e in world.owner("bank").audit_events()
        if e["action"] == "job.federated.round" and e["subject"] == request.id
    ]  # fmt: skip


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_governed_secagg_job_runs_in_flowers_simulation_engine_and_is_released(
    sqlite_zone: Parties, tmp_path: Path
) -> None:
    from collabzone.techniques.federated import _simulation

    paths = write_owner_files(split_non_iid(adult(1500)), tmp_path / "data")
    lenient = {"max_epsilon": 1e6, "epsilon_budget": 1e6}
    world = make_world(sqlite_zone, {o: lenient for o in OWNERS}, approval="manual")
    evaluation = write_owner_files({"lab": adult(2500).tail(800)}, tmp_path / "lab")["lab"]
    world.analyst.add_dataset("adult_eval", evaluation, DATASET_SPEC)
    request = world.submit(rounds=2, learning_rate=1.0, evaluation="adult_eval",
                           privacy={"clipping_norm": 5.0, "noise_multiplier": 0.5})  # fmt: skip
    agents = {o: NodeAgent(world.owner(o), {f"adult_{o}": paths[o]}) for o in OWNERS}
    for owner, agent in agents.items():
        agent.approve(request.id, f"{owner}: as agreed")
    nodes = {
        o: {"data-path": str(paths[o]), "approved-sha256": agents[o].approvals[request.id]}
        for o in OWNERS
    }
    host = connect(sqlite_zone.root, host=True)
    done, raw = _simulation.run(host, request.id, nodes, tmp_path / "sim")
    assert done.status is RequestStatus.RELEASED, done.reasons

    # SecAgg+ in the engine too: every result the strategy received is the same aggregate
    assert [r["results_received"] for r in raw["server_received"]] == [3, 3]
    for record in raw["server_received"]:
        vectors = np.array(record["vectors"])
        assert np.allclose(vectors, vectors[0])

    payload = world.analyst.result(request.id).payload
    assert [r["round"] for r in payload["rounds"]] == [1, 2] and payload["stopped"] is None
    assert payload["epsilon"] > 0 and "server_received" not in payload
    receipt = world.analyst.result(request.id).receipt
    assert sorted(receipt.budget_spent) == [f"adult_{o}" for o in sorted(OWNERS)]
    events = [
        e["details"]
        for e in world.owner("partner").audit_events()
        if e["action"] == "job.federated.round" and e["subject"] == request.id
    ]
    assert [e["round"] for e in events] == [1, 2]
    assert {e["placement"] for e in events} == {"simulation"}
    # every round scored on the evaluation data from its noised model; the last is released
    assert [r["round"] for r in raw["progress"]] == [1, 2]
    assert raw["progress"][-1]["model"] == payload["model"]
    assert [m["round"] for m in payload["metrics"]] == [1, 2]
    assert [m["accuracy"] for m in payload["metrics"]] == [e["accuracy"] for e in events]
