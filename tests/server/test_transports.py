"""The same zone API tests, run against the embedded Zone and a remote one over HTTP."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from collabzone.audit_checkpoint import sign
from collabzone.audit_export import verify_export
from collabzone.client import RemoteZone
from collabzone.errors import (
    ConflictError,
    InvalidInputError,
    NotAuthorisedError,
    NotFoundError,
)
from collabzone.model import Request, RequestStatus
from collabzone.zone import Zone
from collabzone.zone_base import HOST_METHODS
from tests.conftest import CUSTOMER_SPEC, write_customers
from tests.server.conftest import Handles


def _share(api: Handles, tmp_path: Path, approval: str = "auto", budget: float = 1.0) -> None:
    api.partner.add_dataset(
        "partner_data", write_customers(tmp_path / "p.csv", 200, "p"), CUSTOMER_SPEC
    )
    api.partner.add_agreement(
        "partner_data",
        grantees=["bank"],
        technique="dp_count",
        purposes=["marketing"],
        rules={"epsilon_budget": budget},
        approval=approval,
    )


def _count(api: Handles, epsilon: float = 0.1) -> Request:
    made = api.bank.submit("dp_count", {"dataset": "partner_data", "epsilon": epsilon}, "marketing")
    assert isinstance(made, Request)
    return made


def test_remote_client_offers_every_zone_operation() -> None:
    public = {
        name
        for name, member in inspect.getmembers(Zone)
        if not name.startswith("_") and (callable(member) or isinstance(member, property))
    } - HOST_METHODS
    missing = {name for name in public if not hasattr(RemoteZone, name)}
    assert not missing, f"RemoteZone lacks {sorted(missing)}"


def test_auto_release_gives_payload_to_requester_and_receipt_to_owner(
    api: Handles, tmp_path: Path
) -> None:
    _share(api, tmp_path)
    request = _count(api)
    assert request.status is RequestStatus.RELEASED
    release = api.bank.result(request.id)
    assert release.payload and release.receipt.budget_spent["partner_data"]["epsilon"] == 0.1
    owner_view = api.partner.result(request.id)
    assert owner_view.payload == {}
    assert owner_view.receipt.audit_event_id == release.receipt.audit_event_id
    assert api.bank.receipt(request.id) == release.receipt
    assert [d.name for d in api.bank.datasets()] == ["partner_data"]
    assert "partner_data" in str(api.bank.catalogue())


def test_manual_approval_and_denial(api: Handles, tmp_path: Path) -> None:
    _share(api, tmp_path, approval="manual")
    first, second = _count(api), _count(api)
    assert first.status is RequestStatus.AWAITING_APPROVAL
    pending = api.partner.requests(RequestStatus.AWAITING_APPROVAL)
    assert {r.id for r in pending} == {first.id, second.id}
    assert api.partner.approve(first.id, "fine").status is RequestStatus.RELEASED
    denied = api.partner.deny(second.id, "not this week")
    assert denied.status is RequestStatus.REFUSED
    assert any("not this week" in reason for reason in denied.reasons)
    with pytest.raises(ConflictError, match="refused, so it has no result"):
        api.bank.result(second.id)


def test_errors_come_back_as_the_same_classes(api: Handles, tmp_path: Path) -> None:
    _share(api, tmp_path, approval="manual")
    request = _count(api)
    with pytest.raises(NotFoundError):
        api.bank.request("rq-doesnotexist")
    with pytest.raises(NotAuthorisedError):
        api.insurer.request(request.id)  # another party's request
    with pytest.raises(NotAuthorisedError):
        api.bank.approve(request.id, "I approve my own request")
    with pytest.raises(ConflictError):
        api.operator.add_party("bank", ["analyst"])
    with pytest.raises(InvalidInputError):
        api.partner.add_agreement(
            "partner_data", grantees=["nobody"], technique="dp_count", purposes=["x"]
        )
    with pytest.raises(InvalidInputError):
        api.bank.submit("no_such_technique", {}, "marketing")


def test_budget_exhaustion_refuses_with_the_rule(api: Handles, tmp_path: Path) -> None:
    _share(api, tmp_path, budget=0.25)
    assert _count(api).status is RequestStatus.RELEASED
    assert _count(api).status is RequestStatus.RELEASED
    third = _count(api)
    assert third.status is RequestStatus.REFUSED
    assert any("BUDGET_EXHAUSTED" in r for r in third.reasons)
    rows = api.bank.budget()
    assert rows[0]["spent"]["epsilon"] == pytest.approx(0.2)
    price = api.bank.price("dp_count", {"dataset": "partner_data", "epsilon": 0.1}, "marketing")
    assert price["would_be_refused"]


def test_agreements_revoke_and_audit(api: Handles, tmp_path: Path) -> None:
    _share(api, tmp_path)
    (agreement,) = api.bank.agreements("partner_data")
    assert api.bank.agreement(agreement.id) == agreement
    with pytest.raises(NotAuthorisedError):
        api.bank.revoke_agreement(agreement.id, "not mine")
    revoked = api.partner.revoke_agreement(agreement.id, "campaign over")
    assert revoked.revoked_at is not None
    assert _count(api).status is RequestStatus.REFUSED
    verification = api.auditor.verify_audit()
    assert verification.ok and verification.events > 5
    actions = [e["action"] for e in api.auditor.audit_events()]
    assert "agreement.revoked" in actions and "auth.denied" in actions
    exported = api.auditor.export_audit(tmp_path / "audit.jsonl")
    assert exported + 2 == len((tmp_path / "audit.jsonl").read_text().splitlines())
    assert verify_export(tmp_path / "audit.jsonl").ok


def test_audit_events_of_one_subject_are_the_readable_events_about_it(
    api: Handles, tmp_path: Path
) -> None:
    _share(api, tmp_path)
    first, second = _count(api), _count(api)
    for reader in (api.auditor, api.bank, api.insurer):
        everything = reader.audit_events()
        about_first = reader.audit_events(subject=first.id)
        assert about_first == [e for e in everything if e["subject"] == first.id]
        assert all(e["subject"] != second.id for e in about_first)
    assert api.auditor.audit_events(subject=first.id)  # the auditor reads them all
    assert not api.insurer.audit_events(subject=first.id)  # not the insurer's business
    assert api.auditor.audit_events(subject="no-such-subject") == []


def test_checkpoints_and_verifiable_exports(api: Handles, tmp_path: Path) -> None:
    _share(api, tmp_path)
    _count(api)
    kept = api.partner.audit_checkpoint()
    assert kept.signature_ok() and kept.size == len(api.auditor.audit_events())
    _count(api)
    continued = api.partner.verify_audit(against=kept)
    assert continued.ok and continued.anchor and "continues your checkpoint" in str(continued)
    foreign = sign(
        bytes(32),
        zone=kept.zone,
        size=kept.size,
        head=kept.head,
        at=kept.at,
        key_version=kept.key_version,
    )
    refused = api.partner.verify_audit(against=foreign)
    assert not refused.ok and "not signed by this zone's key" in (refused.problem or "")
    shown = api.bank.export_audit(tmp_path / "bank.jsonl")
    checked = verify_export(tmp_path / "bank.jsonl", kept)
    assert checked.ok and checked.shown == shown < checked.events, str(checked)


def test_parties_and_datasets_lifecycle(api: Handles, tmp_path: Path) -> None:
    party, secret = api.operator.add_party("retailer", ["provider"])
    assert party.name == "retailer" and secret.startswith("czt_")
    assert "retailer" in {p.name for p in api.bank.parties()}
    registered = api.insurer.register_dataset("insurer_local", CUSTOMER_SPEC, row_count=10)
    assert registered.row_count == 10
    with pytest.raises(NotAuthorisedError):
        api.bank.remove_dataset("insurer_local")
    api.insurer.remove_dataset("insurer_local")
    assert "insurer_local" not in {d.name for d in api.insurer.datasets()}
    with pytest.raises(InvalidInputError):
        api.bank.add_dataset("bad_file", write_customers(tmp_path / "b.csv", 5), {"columns": []})
    assert api.bank.jobs() == []
