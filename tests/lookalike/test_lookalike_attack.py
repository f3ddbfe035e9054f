"""The seed-membership attack on look-alike audiences, before and after the delivery coin.

The partner guesses "seed member" for each of its best look-alikes missing from the
audience. With every look-alike delivered that guess is good; the delivery coin (and
randomized response on the labels) must bring the attacker's advantage down near the
delivery rate, which docs/lookalike.md states as the residual risk.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from collabzone.attacks import seed_membership
from collabzone.techniques.lookalike._local import LocalContext, run_local
from collabzone.techniques.lookalike._synthetic import (
    PARTNER_COLUMNS,
    REGIONS,
    SEED_COLUMNS,
    generate,
    propensity,
)

SPEC: dict[str, Any] = {
    "seed": "seed", "label": "bought", "features": "partner",
    "model": "logistic_regression", "audience_size": 150,
}  # fmt: skip


def _deliver(rules: dict[str, Any], spec: dict[str, Any]) -> Any:
    def deliver(partner: pa.Table, seed: pa.Table) -> Sequence[str]:
        ctx = LocalContext(
            {"partner": ("partner", partner, PARTNER_COLUMNS), "seed": ("bank", seed, SEED_COLUMNS)},
            requester="bank", rules={"partner": rules}, key=b"k" * 32,
        )  # fmt: skip
        outcome = run_local(ctx, spec)
        return [row[0] for row in outcome.parts["partner"]["audience"]["rows"]]

    return deliver


@pytest.fixture(scope="module")
def world() -> tuple[pa.Table, pa.Table, np.ndarray]:
    data = generate(1500, overlap_share=0.3, seed=3)
    p = data.partner
    region = np.array([REGIONS.index(r) for r in p.column("region").to_pylist()])
    truth = propensity(p.column("age").to_numpy(), p.column("income").to_numpy(), region)
    return p, data.seed, truth


BASE = {"min_audience": 50, "allowed_models": ["logistic_regression"]}


def test_without_the_coin_absence_gives_seed_members_away(
    world: tuple[pa.Table, pa.Table, np.ndarray],
) -> None:
    partner, seed, truth = world
    result = seed_membership(
        _deliver({**BASE, "delivery_rate": 1.0}, SPEC), partner, seed, truth, targets=80
    )
    assert result.true_positive_rate == 1.0  # members are never delivered
    assert result.advantage > 0.4


def test_delivery_coin_and_label_dp_bound_the_advantage(
    world: tuple[pa.Table, pa.Table, np.ndarray],
) -> None:
    partner, seed, truth = world
    rate = 0.25
    result = seed_membership(
        _deliver({**BASE, "delivery_rate": rate}, {**SPEC, "label_epsilon": 1.0}),
        partner, seed, truth, targets=80,
    )  # fmt: skip
    assert result.true_positive_rate == 1.0
    # a non-member look-alike is delivered at most when its coin is heads: advantage
    # <= rate, plus sampling slack over 3 x ~40 non-member targets
    assert result.advantage <= rate + 0.12
