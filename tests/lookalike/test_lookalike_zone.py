"""End to end through the real zone, two parties: the bank's seed labels train a model on
the partner's features; the partner alone reads the audience, the bank size and quality."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow.csv as pacsv
import pytest

from collabzone.model import RequestStatus
from collabzone.techniques.lookalike._synthetic import (
    PARTNER_COLUMNS,
    SEED_COLUMNS,
    LookalikeData,
    generate,
)

PARTNER_RULES = {
    "min_audience": 50,
    "allowed_models": ["logistic_regression", "gradient_boosting"],
    "delivery_rate": 0.5,
    "max_label_epsilon": 2.0,  # the seed owner's own datasets carry no rules: a partner
}  # agreement (or the seed owner's spec) is where label protection is demanded


def _setup(make_zone: Callable[[str | None], Any], tmp_path: Path, data: LookalikeData) -> Any:
    zone = make_zone(None)
    pacsv.write_csv(data.partner, tmp_path / "partner.csv")
    pacsv.write_csv(data.seed, tmp_path / "seed.csv")
    zone.partner.add_dataset(
        "partner_customers", tmp_path / "partner.csv", {"columns": PARTNER_COLUMNS}
    )
    zone.bank.add_dataset("bank_seed", tmp_path / "seed.csv", {"columns": SEED_COLUMNS})
    zone.partner.add_agreement(
        "partner_customers", grantees=["bank"], technique="lookalike",
        purposes=["marketing"], rules=PARTNER_RULES,
    )  # fmt: skip
    return zone


SPEC: dict[str, Any] = {
    "seed": "bank_seed",
    "label": "bought",
    "features": "partner_customers",
    "model": "logistic_regression",
    "audience_size": 100,
    "label_epsilon": 2.0,
}


@pytest.fixture(scope="module")
def data() -> LookalikeData:
    return generate(2000, overlap_share=0.3)


def test_audience_goes_to_the_partner_only_and_holds_no_overlap_member(
    make_zone: Callable[[str | None], Any], tmp_path: Path, data: LookalikeData
) -> None:
    zone = _setup(make_zone, tmp_path, data)
    request = zone.bank.submit("lookalike", SPEC, "marketing")
    assert zone.bank.request(request.id).status == RequestStatus.RELEASED, request.reasons
    partner_view = zone.partner.result(request.id).payload
    bank_view = zone.bank.result(request.id).payload
    audience = [row[0] for row in partner_view["audience"]["rows"]]
    assert len(audience) == 100 == bank_view["audience_size"]
    assert not set(audience) & data.overlap  # overlap members never delivered
    assert set(audience) <= set(data.partner.column("link_email").to_pylist())
    assert "audience" not in bank_view and "quality" not in partner_view
    assert bank_view["quality"]["auc"] is not None and bank_view["quality"]["auc"] > 0.6
    receipt = zone.bank.result(request.id).receipt
    assert receipt.budget_spent["bank_seed"]["epsilon"] == pytest.approx(2.0)
    # third parties (auditor, insurer) read no payload part
    assert zone.auditor.result(request.id).payload == {}
    # no audit event anyone reads carries an audience token (the bank's view included)
    for handle in (zone.bank, zone.auditor):
        text = json.dumps(handle.audit_events(), default=str)
        assert not any(t in text for t in audience[:20])


def test_refusals_name_the_rule_to_change(
    make_zone: Callable[[str | None], Any], tmp_path: Path, data: LookalikeData
) -> None:
    zone = _setup(make_zone, tmp_path, data)
    small = zone.bank.submit("lookalike", {**SPEC, "audience_size": 10}, "marketing")
    assert small.status == RequestStatus.REFUSED
    assert any("AUDIENCE_TOO_SMALL" in r or "at least 50" in r for r in small.reasons)
    plain = zone.bank.submit("lookalike", {k: v for k, v in SPEC.items() if k != "label_epsilon"},
                             "marketing")  # fmt: skip
    assert plain.status == RequestStatus.REFUSED
    assert any("label_epsilon" in r for r in plain.reasons)


def test_partner_risk_view_states_the_membership_bound(
    make_zone: Callable[[str | None], Any], tmp_path: Path, data: LookalikeData
) -> None:
    zone = _setup(make_zone, tmp_path, data)
    request = zone.bank.submit("lookalike", SPEC, "marketing")
    risk = zone.partner.request_risk(request.id)
    assert risk["assessment"]["seed_membership_advantage_bound"] == 0.5
    assert risk["assessment"]["overlap_members_in_audience"] == 0
    assert "v1:" not in json.dumps(risk)  # no token of anyone in the risk view
