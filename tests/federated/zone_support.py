"""A zone where three owners registered Adult slices at their nodes and an analyst asks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from collabzone.model import Request, RequestStatus
from collabzone.node import NodeAgent
from collabzone.techniques.federated import _coordinator
from collabzone.zone import Zone, connect
from tests.conftest import Parties
from tests.federated.fl_support import (
    DATASET_SPEC,
    FEATURES,
    LABEL,
    OWNERS,
    adult,
    split_non_iid,
    write_owner_files,
)

GRANTED = [*FEATURES, LABEL]
RULES: dict[str, Any] = {
    "columns": GRANTED,
    "model_families": ["logreg", "mlp"],
    "max_rounds": 20,
    "max_epsilon": 10.0,
    "min_clients": 3,
    "secure_aggregation": True,
    "epsilon_budget": 20.0,
    "delta_budget": 1e-3,
}


@dataclass
class FLWorld:
    parties: Parties
    analyst: Zone
    analyst_token: str

    def owner(self, name: str) -> Zone:
        return getattr(self.parties, name)  # type: ignore[no-any-return]

    def submit(self, **overrides: Any) -> Request:
        spec: dict[str, Any] = {
            "task": "train",
            "datasets": [f"adult_{o}" for o in OWNERS],
            "features": FEATURES,
            "label": LABEL,
            "rounds": 5,
            "privacy": {"clipping_norm": 1.0, "noise_multiplier": 2.0, "delta": 1e-5},
        }
        spec.update(overrides)
        request = self.analyst.submit("federated", spec, "income model")
        assert isinstance(request, Request)
        return request


def make_world(
    parties: Parties,
    rules: Mapping[str, Mapping[str, Any]] | None = None,
    approval: str = "auto",
) -> FLWorld:
    """Each owner registers ``adult_<owner>`` (metadata only) and shares it for FL with
    ``lab``; ``rules`` overrides an owner's agreement rules."""
    _, token = parties.operator.add_party("lab", ["analyst", "provider"])
    for owner in OWNERS:
        handle: Zone = getattr(parties, owner)
        handle.register_dataset(f"adult_{owner}", DATASET_SPEC, row_count=1000)
        handle.add_agreement(
            f"adult_{owner}",
            grantees=["lab"],
            technique="federated",
            purposes=["income model"],
            rules={**RULES, **(rules or {}).get(owner, {})},
            approval=approval,
        )
    return FLWorld(parties, parties.operator.as_party(token), token)


@dataclass
class Nodes:
    world: FLWorld
    host: Zone
    agents: dict[str, NodeAgent]


def make_nodes(parties: Parties, tmp_path: Path) -> Nodes:
    """Manual approval; each owner's node holds its non-IID Adult slice; the analyst owns
    an evaluation dataset in the zone; ``host`` is the zone's host handle (aggregator)."""
    world = make_world(parties, approval="manual")
    frame = adult(1500)
    paths = write_owner_files(split_non_iid(frame), tmp_path / "nodes")
    evaluation = write_owner_files({"lab": adult(2500).tail(800)}, tmp_path / "lab")["lab"]
    world.analyst.add_dataset("adult_eval", evaluation, DATASET_SPEC)
    agents = {
        o: NodeAgent(world.owner(o), {f"adult_{o}": paths[o]}, approvals=tmp_path / f"{o}.json")
        for o in OWNERS
    }
    return Nodes(world, connect(parties.root, host=True), agents)


def submit(nodes: Nodes, **overrides: object) -> str:
    request = nodes.world.submit(**{"evaluation": "adult_eval", "rounds": 4, **overrides})
    assert request.status is RequestStatus.AWAITING_APPROVAL, request.reasons
    return request.id


def run_through(nodes: Nodes, request_id: str) -> Request:
    """Every owner approves at its node, the aggregator opens, the nodes join, it runs."""
    for owner, agent in nodes.agents.items():
        agent.approve(request_id, f"{owner}: as agreed")
    _coordinator.open_link(nodes.host, request_id)
    for agent in nodes.agents.values():
        agent.run_once()
    return _coordinator.run(nodes.host, request_id)
