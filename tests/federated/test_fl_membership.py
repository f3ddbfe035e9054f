"""The membership-inference check: the attack itself, DP against it, the risk summary."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from collabzone.attacks import dp_advantage_bound, loss_threshold_advantage
from collabzone.techniques.federated import _federation, _mia, _spec
from collabzone.techniques.federated._federation import ClientData
from tests.conftest import Parties
from tests.federated.zone_support import make_nodes, submit

losses = st.lists(st.floats(0, 50, allow_nan=False), min_size=1, max_size=40)


@given(losses, losses)
def test_the_advantage_is_a_probability_gap(members: list[float], others: list[float]) -> None:
    advantage = loss_threshold_advantage(members, others)
    assert 0.0 <= advantage <= 1.0
    assert loss_threshold_advantage(members, members) == 0.0


def test_separated_losses_give_every_member_away() -> None:
    assert loss_threshold_advantage([0.1, 0.2], [0.5, 0.9, 1.0]) == 1.0
    assert loss_threshold_advantage([0.5, 0.9], [0.1, 0.2]) == 0.0  # members look worse
    assert dp_advantage_bound(0.0) == 0.0
    assert dp_advantage_bound(1.0) == pytest.approx((np.e - 1) / (np.e + 1))
    assert dp_advantage_bound(1.0, 1e-5) > dp_advantage_bound(1.0)


def _memorising_job(noise: float) -> tuple[_spec.JobSpec, dict[str, ClientData], ClientData]:
    """60 features, 10 rows per owner, random labels: a model can only memorise."""
    rng = np.random.default_rng(7)
    spec = _spec.parse(
        {"datasets": ["a", "b", "c"], "features": ["x"], "label": "y", "rounds": 30,
         "local_epochs": 50, "learning_rate": 5.0, "secure_aggregation": False,
         "privacy": {"clipping_norm": 5.0, "noise_multiplier": noise}}
    )  # fmt: skip

    def draw(name: str, rows: int = 10) -> ClientData:
        return ClientData(
            name, rng.normal(0, 1, (rows, 60)), rng.integers(0, 2, rows).astype(np.float64)
        )

    return spec, {n: draw(n) for n in "abc"}, draw("fresh", 30)


def _advantage(noise: float) -> float:
    spec, clients, fresh = _memorising_job(noise)
    params = _federation.train(spec, clients, float("inf")).params
    inside = np.concatenate([_mia.record_losses(params, c.x, c.y) for c in clients.values()])
    return loss_threshold_advantage(inside, _mia.record_losses(params, fresh.x, fresh.y))


def test_the_attack_finds_a_memorising_model_and_dp_blunts_it() -> None:
    """Attack: the analyst holds some owners' records and the released model; without
    noise the model memorised them, with the job's noise it did not."""
    without = _advantage(0.0)
    assert without > 0.6  # 0.73 with this seed (no noise: deterministic)
    assert _advantage(8.0) < without - 0.3


def test_the_risk_summary_shows_the_membership_check(sqlite_zone: Parties, tmp_path: Path) -> None:
    nodes = make_nodes(sqlite_zone, tmp_path)
    request_id = submit(nodes)
    risk = nodes.world.owner("bank").request_risk(request_id)
    check = risk["membership_inference"]
    assert {"advantage_with_dp", "advantage_without_dp", "chance_level", "dp_bound"} <= set(check)
    assert 0.0 <= check["advantage_with_dp"] <= 1.0 and 0.0 < check["dp_bound"] <= 1.0
    assert risk["epsilon"] == pytest.approx(
        nodes.world.analyst.request_plan(request_id)["details"]["projected_epsilon"]
    )
    assert any("membership inference" in line for line in risk["summary"])
    assert dataclasses.is_dataclass(_spec.JobSpec)
