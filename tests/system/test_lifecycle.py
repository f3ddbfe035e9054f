"""Request lifecycle end to end on SQLite and PostgreSQL: auto, manual, deny, multi-owner,
expiry, revocation. Every transition leaves an audit event and the chain verifies."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from collabzone.errors import ConflictError, InvalidInputError, NotAuthorisedError
from collabzone.model import Request, RequestStatus
from collabzone.techniques import registry
from collabzone.techniques.base import Outcome, Plan, PlanContext, RunContext, Technique
from tests.conftest import CUSTOMER_SPEC, Parties, write_customers

NOW = dt.datetime.now(dt.UTC)


def _submit(
    zone_handle, dataset: str = "partner_data", purpose: str = "marketing", **spec: object
) -> Request:  # type: ignore[no-untyped-def]
    request = zone_handle.submit("dp_count", {"dataset": dataset, "epsilon": 0.1, **spec}, purpose)
    assert isinstance(request, Request)
    return request


def _actions(zone: Parties, request_id: str) -> list[str]:
    return [e["action"] for e in zone.auditor.audit_events() if e["subject"] == request_id]


@pytest.fixture
def shared(zone: Parties, tmp_path: Path) -> Parties:
    zone.partner.add_dataset(
        "partner_data", write_customers(tmp_path / "p.csv", 300, "p"), CUSTOMER_SPEC
    )
    zone.insurer.add_dataset(
        "insurer_data", write_customers(tmp_path / "i.csv", 300, "i"), CUSTOMER_SPEC
    )
    return zone


def test_auto_approval_releases_with_receipt(shared: Parties) -> None:
    shared.partner.add_agreement(
        "partner_data",
        grantees=["bank"],
        technique="dp_count",
        purposes=["marketing"],
        rules={"epsilon_budget": 1.0},
    )
    request = _submit(shared.bank)
    assert request.status is RequestStatus.RELEASED
    assert _actions(shared, request.id) == [
        "request.submitted",
        "request.checked",
        "request.approved",
        "request.running",
        "request.released",
    ]
    release = shared.bank.result(request.id)
    assert release.receipt.budget_spent["partner_data"]["epsilon"] == 0.1
    assert release.receipt.budget_remaining["partner_data"]["epsilon"] == pytest.approx(0.9)
    released_event = next(
        e for e in shared.auditor.audit_events() if e["action"] == "request.released"
    )
    assert release.receipt.audit_event_id == released_event["id"]
    # the owner reads the receipt of a release on its data, not the payload addressed to the bank
    owner_view = shared.partner.result(request.id)
    assert owner_view.payload == {} and owner_view.receipt == release.receipt
    assert shared.auditor.verify_audit().ok


def test_manual_approval_waits_for_the_owner(shared: Parties) -> None:
    shared.partner.add_agreement(
        "partner_data",
        grantees=["bank"],
        technique="dp_count",
        purposes=["marketing"],
        rules={"epsilon_budget": 1.0},
        approval="manual",
    )
    request = _submit(shared.bank)
    assert request.status is RequestStatus.AWAITING_APPROVAL
    assert request.owners_to_approve == ("partner",)
    with pytest.raises(ConflictError, match="awaiting_approval"):
        shared.bank.result(request.id)
    with pytest.raises(InvalidInputError, match="reason"):
        shared.partner.approve(request.id, "  ")
    approved = shared.partner.approve(request.id, "fine for the campaign")
    assert approved.status is RequestStatus.RELEASED
    assert approved.decisions[0].reason == "fine for the campaign"
    with pytest.raises((ConflictError, InvalidInputError)):
        shared.partner.approve(request.id, "twice")


def test_owner_denies_with_reason(shared: Parties) -> None:
    shared.partner.add_agreement(
        "partner_data",
        grantees=["bank"],
        technique="dp_count",
        purposes=["marketing"],
        rules={"epsilon_budget": 1.0},
        approval="manual",
    )
    request = _submit(shared.bank)
    denied = shared.partner.deny(request.id, "not this quarter")
    assert denied.status is RequestStatus.REFUSED
    assert any(
        "OWNER_DENIED" in r and "not this quarter" in r and "partner" in r for r in denied.reasons
    )
    assert shared.bank.budget() == []  # nothing was spent


class JointCount(Technique):
    """A test technique touching several datasets at once (the core must not care which)."""

    name = "joint_count"
    rule_specs = ()

    def plan(self, spec: Mapping[str, Any], ctx: PlanContext) -> Plan:
        names = tuple(spec["datasets"])
        for name in names:
            ctx.dataset(name)
        return Plan(technique=self.name, datasets=names)

    def run(self, plan: Plan, ctx: RunContext) -> Outcome:
        return Outcome(payload={"rows": sum(ctx.table(d).num_rows for d in plan.datasets)})


@pytest.fixture
def joint() -> Iterator[None]:
    registry.register("joint_count", JointCount())
    yield
    registry._loaded.pop("joint_count", None)


def test_multi_owner_needs_every_owner(shared: Parties, joint: None) -> None:
    """Two owners' datasets in one request: the owner without an agreement refuses (unnamed); then
    both sign, one manually, and that owner's denial refuses it with its reason; then approval runs it."""
    spec = {"datasets": ["partner_data", "insurer_data"]}
    shared.partner.add_agreement(
        "partner_data",
        grantees=["bank"],
        technique="joint_count",
        purposes=["marketing"],
        rules={"min_group_size": 10},
    )
    refused = shared.bank.submit("joint_count", spec, "marketing")
    assert isinstance(refused, Request) and refused.status is RequestStatus.REFUSED
    # no agreement names bank on insurer_data yet: it answers like a name that does not
    # exist (issue 12: refusals must not map other owners' datasets and their owners)
    assert (
        len(refused.reasons) == 1
        and "no dataset named 'insurer_data'" in refused.reasons[0]
        and "insurer (" not in refused.reasons[0]
        and "owner" not in refused.reasons[0]
    )

    shared.insurer.add_agreement(
        "insurer_data",
        grantees=["bank"],
        technique="joint_count",
        purposes=["marketing"],
        rules={"min_group_size": 50},
        approval="manual",
    )
    waiting = shared.bank.submit("joint_count", spec, "marketing")
    assert isinstance(waiting, Request) and waiting.owners_to_approve == ("insurer",)
    with pytest.raises(NotAuthorisedError):
        shared.partner.approve(waiting.id, "not mine to approve")
    denied = shared.insurer.deny(waiting.id, "insurer says no")
    assert denied.status is RequestStatus.REFUSED and "owner insurer" in denied.reasons[0]

    again = shared.bank.submit("joint_count", spec, "marketing")
    assert isinstance(again, Request)
    released = shared.insurer.approve(again.id, "ok")
    assert released.status is RequestStatus.RELEASED
    receipt = shared.bank.receipt(again.id)
    assert receipt.rules_applied["merged"]["min_group_size"] == 50  # most restrictive wins
    assert shared.bank.result(again.id).payload == {"rows": 600}


def test_expired_agreement_makes_dataset_read_only(shared: Parties, tmp_path: Path) -> None:
    shared.partner.add_agreement(
        "partner_data",
        grantees=["bank"],
        technique="dp_count",
        purposes=["marketing"],
        rules={"epsilon_budget": 1.0},
        valid_from=NOW - dt.timedelta(days=30),
        valid_until=NOW - dt.timedelta(days=1),
    )
    request = _submit(shared.bank)
    assert request.status is RequestStatus.REFUSED
    assert "AGREEMENT_EXPIRED" in request.reasons[0]
    assert "partner_data" not in {d.name for d in shared.bank.datasets()}
    with pytest.raises(ConflictError, match="read-only"):
        shared.partner.add_dataset(
            "partner_data", write_customers(tmp_path / "p2.csv", 10, "q"), CUSTOMER_SPEC
        )
    # the agreement stays readable by the party it governed
    assert [a.dataset for a in shared.bank.agreements()] == ["partner_data"]


def test_revoked_agreement_refuses_new_and_pending_requests(shared: Parties) -> None:
    agreement = shared.partner.add_agreement(
        "partner_data",
        grantees=["bank"],
        technique="dp_count",
        purposes=["marketing"],
        rules={"epsilon_budget": 1.0},
        approval="manual",
    )
    pending = _submit(shared.bank)
    shared.partner.revoke_agreement(agreement.id, "partnership ended")
    approved = shared.partner.approve(pending.id, "approved before I noticed")
    assert approved.status is RequestStatus.REFUSED  # re-checked at run time
    assert "AGREEMENT_REVOKED" in approved.reasons[0]
    fresh = _submit(shared.bank)
    assert fresh.status is RequestStatus.REFUSED and "AGREEMENT_REVOKED" in fresh.reasons[0]
    with pytest.raises(ConflictError):
        shared.partner.revoke_agreement(agreement.id, "again")
    assert shared.auditor.verify_audit().ok


def test_budget_is_never_overspent_and_dry_run_records_nothing(shared: Parties) -> None:
    shared.partner.add_agreement(
        "partner_data",
        grantees=["bank"],
        technique="dp_count",
        purposes=["marketing"],
        rules={"epsilon_budget": 0.3, "max_epsilon_per_request": 0.2},
    )
    events_before = len(shared.auditor.audit_events())
    price = shared.bank.price("dp_count", {"dataset": "partner_data", "epsilon": 0.2}, "marketing")
    assert (
        price["would_be_refused"] == []
        and price["budget"]["partner_data"]["remaining"]["epsilon"] == 0.3
    )
    assert len(shared.auditor.audit_events()) == events_before
    assert _submit(shared.bank, epsilon=0.25).reasons[0].startswith("EPSILON_TOO_LARGE")
    assert _submit(shared.bank, epsilon=0.2).status is RequestStatus.RELEASED
    over = _submit(shared.bank, epsilon=0.2)
    assert over.status is RequestStatus.REFUSED and "BUDGET_EXHAUSTED" in over.reasons[0]
    assert _submit(shared.bank, epsilon=0.1).status is RequestStatus.RELEASED
    (row,) = shared.bank.budget()
    assert row["spent"]["epsilon"] == pytest.approx(0.3) and row["remaining"]["epsilon"] == 0.0
