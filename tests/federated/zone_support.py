"""A zone where three owners registered Adult slices at their nodes and an analyst asks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from collabzone.model import Request
from collabzone.zone import Zone
from tests.conftest import Parties
from tests.federated.fl_support import DATASET_SPEC, FEATURES, LABEL, OWNERS

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
