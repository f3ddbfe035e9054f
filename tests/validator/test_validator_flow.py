"""End to end at the owner's node: submit, run at the node, release with a receipt."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

from collabzone.model import RequestStatus
from tests.conftest import Parties
from tests.validator.validator_support import make_world


def test_exact_feedback_matches_scikit_learn(sqlite_zone: Parties, tmp_path: Path) -> None:
    """With ``count_rounding: 1`` the threshold metrics are exact; AUC is band-binned."""
    world = make_world(sqlite_zone, tmp_path, {"count_rounding": 1})
    request = world.submit(range(400))
    assert request.status is RequestStatus.APPROVED and request.runs_at == "owner:partner"
    assert world.ml.jobs() == []  # the job is the owner's node's, not the ML party's
    world.node.run_once()
    released = world.ml.result(request.id)
    overall = released.payload["overall"]
    y, s = world.truth[:400], world.scores[:400]
    assert overall["accuracy"] == pytest.approx(accuracy_score(y, s >= 0.5), abs=1e-4)
    assert overall["f1"] == pytest.approx(f1_score(y, s >= 0.5), abs=1e-4)
    assert overall["roc_auc"] == pytest.approx(roc_auc_score(y, s), abs=0.03)
    assert sum(overall["confusion"].values()) == 400
    bands = released.payload["calibration"]
    assert sum(b["records"] for b in bands) == 400 and all(b["records"] >= 20 for b in bands)
    assert "_monitor" not in released.payload
    assert released.receipt.budget_spent == {}
    # the owner sees the receipt, not the feedback addressed to the ML party
    assert world.owner.result(request.id).payload == {}


def test_groups_get_their_own_metrics(sqlite_zone: Parties, tmp_path: Path) -> None:
    world = make_world(sqlite_zone, tmp_path)
    groups = np.where(np.arange(300) % 2 == 0, "even", "odd")
    final = world.validate(range(300), groups=groups)
    assert final.status is RequestStatus.RELEASED, final.reasons
    payload = world.ml.result(final.id).payload
    assert set(payload["groups"]) == {"even", "odd"}
    y, s = world.truth[:300], world.scores[:300]
    even = np.arange(300) % 2 == 0
    assert payload["groups"]["even"]["accuracy"] == pytest.approx(
        accuracy_score(y[even], s[even] >= 0.5), abs=1e-4
    )


def test_dp_feedback_is_charged_to_the_ledger(sqlite_zone: Parties, tmp_path: Path) -> None:
    world = make_world(sqlite_zone, tmp_path, {"epsilon_budget": 1.0, "dp_required": True})
    default = world.validate(range(300))  # no epsilon named: the default one, charged
    assert default.status is RequestStatus.RELEASED, default.reasons
    assert world.ml.result(default.id).receipt.budget_spent["labels"]["epsilon"] == 0.5
    final = world.validate(range(300, 600), epsilon=0.4)
    assert final.status is RequestStatus.RELEASED, final.reasons
    release = world.ml.result(final.id)
    assert release.receipt.budget_spent["labels"]["epsilon"] == 0.4
    assert release.receipt.budget_remaining["labels"]["epsilon"] == pytest.approx(0.1)
    assert "OpenDP" in (release.receipt.mechanism or "")
    low, high = release.payload["overall"]["ci95"]["accuracy"]
    assert low <= release.payload["overall"]["accuracy"] <= high


def test_demo_round(sqlite_zone: Parties, tmp_path: Path) -> None:
    from collabzone.techniques.validator import demo_round

    outcome = demo_round(sqlite_zone.bank, sqlite_zone.partner, tmp_path)
    assert outcome["status"] == "released"
    assert set(outcome["feedback"]["groups"]) == {"online", "branch"}
    # enough records for several calibration bands, so a real (noisy) AUC, not 0.5 by
    # construction from one band
    assert len(outcome["feedback"]["calibration"]) >= 2
    auc = outcome["feedback"]["overall"]["roc_auc"]
    low, high = outcome["feedback"]["overall"]["ci95"]["roc_auc"]
    assert auc is not None and low <= auc <= high and high > low
    assert outcome["receipt"]["budget_spent"]["validator_labels"]["epsilon"] == 0.5
    # the same records plus one, under DP: answered with fresh noise and charged
    assert outcome["attack_status"] == "released"
    assert "fresh DP noise (epsilon 0.5 charged)" in outcome["attack_reasons"][0]
