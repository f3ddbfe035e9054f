"""DP on the quality figures: when the partner's agreement sets ``quality_epsilon``, the AUC
and lift told the bank carry OpenDP Laplace noise, the exact epsilon is charged to the
partner dataset's ledger for the bank, the receipt says so, and an exhausted budget refuses.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.csv as pacsv
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collabzone.model import RequestStatus
from collabzone.techniques.lookalike._model import (
    auc,
    dp_quality,
    laplace,
    lift,
    quality_sensitivity,
)
from collabzone.techniques.lookalike._synthetic import (
    PARTNER_COLUMNS,
    SEED_COLUMNS,
    LookalikeData,
    generate,
)

RULES = {"min_audience": 50, "allowed_models": ["logistic_regression"], "delivery_rate": 0.5,
         "quality_epsilon": 0.5, "epsilon_budget": 1.0}  # fmt: skip
SPEC: dict[str, Any] = {"seed": "bank_seed", "label": "bought", "features": "partner_customers",
                        "audience_size": 60}  # fmt: skip


@pytest.fixture(scope="module")
def data() -> LookalikeData:
    return generate(2000, overlap_share=0.3, seed=23)


def _setup(make_zone: Callable[[str | None], Any], tmp_path: Path, data: LookalikeData) -> Any:
    zone = make_zone(None)
    pacsv.write_csv(data.partner, tmp_path / "partner.csv")
    pacsv.write_csv(data.seed, tmp_path / "seed.csv")
    zone.partner.add_dataset(
        "partner_customers", tmp_path / "partner.csv", {"columns": PARTNER_COLUMNS}
    )
    zone.bank.add_dataset("bank_seed", tmp_path / "seed.csv", {"columns": SEED_COLUMNS})
    zone.partner.add_agreement(
        "partner_customers", grantees=["bank"], technique="lookalike", purposes=["marketing"],
        rules=RULES,
    )  # fmt: skip
    return zone


def test_quality_epsilon_is_charged_exactly_noted_and_refused_when_spent(
    make_zone: Callable[[str | None], Any], tmp_path: Path, data: LookalikeData
) -> None:
    zone = _setup(make_zone, tmp_path, data)
    first = zone.bank.submit("lookalike", SPEC, "marketing")
    assert first.status is RequestStatus.RELEASED, first.reasons
    assert first.cost["partner_customers"]["epsilon"] == 0.5  # priced before running
    release = zone.bank.result(first.id)
    assert release.receipt.budget_spent["partner_customers"]["epsilon"] == 0.5
    assert release.receipt.budget_remaining["partner_customers"]["epsilon"] == 0.5
    assert "laplace" in (release.receipt.mechanism or "")
    assert any("Laplace noise at epsilon 0.5" in n for n in release.receipt.notes)
    assert release.payload["quality_epsilon"] == 0.5
    quality = release.payload["quality"]
    assert 0.0 <= quality["auc"] <= 1.0 and quality["lift_top_decile"] >= 0.0
    assert "quality" not in zone.partner.result(first.id).payload  # the bank's part only
    second = zone.bank.submit("lookalike", SPEC, "marketing")
    assert second.status is RequestStatus.RELEASED, second.reasons
    third = zone.bank.submit("lookalike", SPEC, "marketing")
    assert third.status is RequestStatus.REFUSED
    assert any("BUDGET_EXHAUSTED" in r or "budget" in r for r in third.reasons), third.reasons
    ledger = [b for b in zone.partner.budget() if b.get("dataset") == "partner_customers"]
    assert ledger and sum(float(b["spent"]["epsilon"]) for b in ledger) == pytest.approx(1.0)


def test_asking_for_less_protection_than_agreed_is_refused(
    make_zone: Callable[[str | None], Any], tmp_path: Path, data: LookalikeData
) -> None:
    zone = _setup(make_zone, tmp_path, data)
    loose = zone.bank.submit("lookalike", {**SPEC, "quality_epsilon": 2.0}, "marketing")
    assert loose.status is RequestStatus.REFUSED
    assert any("quality_epsilon <= 0.5" in r for r in loose.reasons), loose.reasons


def test_sensitivities_bound_one_members_change() -> None:
    labels = np.array([True] * 20 + [False] * 80)
    auc_s, lift_s = quality_sensitivity(labels)
    assert auc_s == pytest.approx(1 / 20) and lift_s == pytest.approx(100 / (10 * 20))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(0, 1, allow_nan=False), min_size=30, max_size=30),
    st.integers(0, 29),
    st.floats(0, 1, allow_nan=False),
)
def test_one_members_score_moves_auc_and_lift_within_their_sensitivity(
    scores: list[float], who: int, moved: float
) -> None:
    labels = np.array([i % 3 == 0 for i in range(30)])
    before = np.array(scores)
    after = before.copy()
    after[who] = moved
    auc_s, lift_s = quality_sensitivity(labels)
    a0, a1 = auc(labels, before), auc(labels, after)
    l0, l1 = lift(labels, before), lift(labels, after)
    assert a0 is not None and a1 is not None and l0 is not None and l1 is not None
    assert abs(a0 - a1) <= auc_s + 1e-12 and abs(l0 - l1) <= lift_s + 1e-12


def test_laplace_noise_has_its_scale() -> None:
    # mean |X| of Laplace(b) is b with standard deviation b / sqrt(n): a 6-sigma band has a
    # false-positive rate under 1e-8
    n, sensitivity, epsilon = 4000, 0.05, 0.5
    scale = sensitivity / epsilon
    draws = np.array([laplace(0.7, sensitivity, epsilon) - 0.7 for _ in range(n)])
    assert abs(np.abs(draws).mean() - scale) < 6 * scale / np.sqrt(n)
    assert abs(draws.mean()) < 6 * np.sqrt(2) * scale / np.sqrt(n)


def test_dp_quality_is_noisy_clamped_and_withheld_when_small() -> None:
    rng = np.random.default_rng(4)
    labels = rng.random(600) < 0.3
    scores = labels * 0.4 + rng.random(600)
    released = {tuple(dp_quality(labels, scores, 100, 0.2).values()) for _ in range(30)}
    assert len(released) > 10  # noise present: a small epsilon rarely repeats a value
    most = 600 / labels.sum() + 0.005  # the largest lift, then rounded to two decimals
    assert all(0.0 <= a <= 1.0 and 0.0 <= b <= most for a, b in released)  # type: ignore[operator]
    assert dp_quality(labels[:20], scores[:20], 100, 0.2) == {
        "auc": None,
        "lift_top_decile": None,
    }
