"""An owner that removes a dataset keeps sight of what it decided on it (issue 12, item 6).

Before, removing a dataset made its owner a stranger to its own approvals (403), emptied
its budget view, and let another party take the name and with it that history.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from collabzone.errors import ConflictError
from collabzone.model import Request, RequestStatus
from tests.conftest import CUSTOMER_SPEC, write_customers
from tests.server.conftest import Handles


def test_a_removed_dataset_leaves_its_owner_its_decisions_budget_and_audit(
    api: Handles, tmp_path: Path
) -> None:
    api.partner.add_dataset("partner_data", write_customers(tmp_path / "p.csv", 60), CUSTOMER_SPEC)
    api.partner.add_agreement(
        "partner_data",
        grantees=["bank"],
        technique="dp_count",
        purposes=["marketing"],
        approval="manual",
        rules={"epsilon_budget": 2.0},
    )
    made = api.bank.submit("dp_count", {"dataset": "partner_data", "epsilon": 0.5}, "marketing")
    assert isinstance(made, Request)
    assert api.partner.approve(made.id, "fine").status is RequestStatus.RELEASED
    api.partner.remove_dataset("partner_data")

    mine = api.partner.request(made.id)  # was 403: "does not concern partner"
    assert [d.owner for d in mine.decisions] == ["partner"]
    assert made.id in {r.id for r in api.partner.requests()}
    budget = [b for b in api.partner.budget() if b["dataset"] == "partner_data"]
    assert budget and budget[0]["spent"]["epsilon"] == pytest.approx(0.5)
    assert any(a.dataset == "partner_data" for a in api.partner.agreements())
    seen = {(e["action"], e["subject"]) for e in api.partner.audit_events()}
    assert ("dataset.removed", "partner_data") in seen
    assert any(action.startswith("request.") and s == made.id for action, s in seen)
    assert "partner_data" not in {d.name for d in api.partner.datasets()}  # data is gone

    with pytest.raises(ConflictError, match="removed dataset"):
        api.insurer.add_dataset(
            "partner_data", write_customers(tmp_path / "i.csv", 20), CUSTOMER_SPEC
        )
    assert made.id not in {r.id for r in api.insurer.requests()}
    again = api.partner.add_dataset(
        "partner_data", write_customers(tmp_path / "p2.csv", 20), CUSTOMER_SPEC
    )
    assert again.owner == "partner"  # the owner may bring it back
