"""Issue 10: the owner sees, before approving, what an answer would disclose with the
earlier ones (embedded API, REST, the console and the CLI)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from collabzone.errors import NotAuthorisedError
from collabzone.model import Request, RequestStatus
from tests.conftest import Parties

SPEC = {
    "columns": [
        {"name": "token", "type": "string", "class": "join_key"},
        {"name": "tier", "type": "string", "class": "dimension", "nullable": False,
         "domain": ["gold", "silver", "bronze", "rare"]},
    ]
}  # fmt: skip
TOTAL = "SELECT COUNT(*) FROM customers"
BY_TIER = "SELECT tier, COUNT(*) FROM customers GROUP BY tier"


def _customers(path: Path) -> Path:
    rows = [f"t{i},{['gold', 'silver', 'bronze'][i % 3]}" for i in range(90)] + ["t999,rare"]
    path.write_text("token,tier\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def _setup(parties: Parties, tmp: Path) -> None:
    parties.partner.add_dataset("customers", _customers(tmp / "c.csv"), SPEC)
    parties.partner.add_agreement(
        "customers", grantees=["bank"], technique="sql", purposes=["study"],
        rules={"analysis": "aggregation", "min_group_size": 10}, approval="manual",
    )  # fmt: skip


def _ask(zone: object, sql: str) -> Request:
    request = zone.submit("sql", {"sql": sql}, "study")  # type: ignore[attr-defined]
    assert isinstance(request, Request)
    return request


def test_the_owner_sees_the_combination_risk_before_approving(
    make_zone: Callable[[str | None], Parties], tmp_path: Path
) -> None:
    parties = make_zone(None)
    _setup(parties, tmp_path)
    first = _ask(parties.bank, TOTAL)
    calm = parties.partner.request_risk(first.id)
    assert calm["would_be"] == "released"
    assert calm["combinations"]["customers"]["groups_under_minimum"] == 0
    parties.partner.approve(first.id, "a total is fine")
    assert parties.bank.request(first.id).status is RequestStatus.RELEASED

    second = _ask(parties.bank, BY_TIER)  # with the total: the 1 'rare' customer alone
    risk = parties.partner.request_risk(second.id)
    finding = risk["combinations"]["customers"]
    assert finding["groups_under_minimum"] >= 1 and finding["smallest_group"] < 10
    assert risk["assessment"]["withheld_to_protect_combinations"] >= 1
    assert any("isolate" in line for line in risk["summary"])
    assert parties.bank.request(second.id).status is RequestStatus.AWAITING_APPROVAL  # untouched
    with pytest.raises(NotAuthorisedError):
        parties.bank.request_risk(second.id)  # the requester does not see the owner's risk
    assert parties.auditor.request_risk(second.id)["combinations"]
    events = [e["action"] for e in parties.auditor.audit_events()]
    assert "request.risk_assessed" in events
    parties.partner.approve(second.id, "the zone withholds what would combine badly")
    shown = parties.bank.result(second.id).payload["rows"]
    assert shown and 91 - sum(row[1] for row in shown) >= 10
