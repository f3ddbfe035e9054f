"""A party can never act for another: wrong tokens, other parties' datasets, approving
someone else's request. Every refused attempt is refused and audited."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from collabzone.errors import AuthenticationError, NotAuthorisedError
from collabzone.model import Request, RequestStatus
from collabzone.zone import connect
from tests.conftest import CUSTOMER_SPEC, Parties, write_customers


def _denials(zone: Parties) -> list[dict[str, object]]:
    return [e for e in zone.auditor.audit_events() if e["action"] == "auth.denied"]


@pytest.fixture
def shared(zone: Parties, tmp_path: Path) -> Parties:
    zone.partner.add_dataset(
        "partner_data", write_customers(tmp_path / "p.csv", 200, "p"), CUSTOMER_SPEC
    )
    zone.bank.add_dataset("bank_data", write_customers(tmp_path / "b.csv", 200, "b"), CUSTOMER_SPEC)
    return zone


def test_wrong_token_is_refused_and_audited(shared: Parties) -> None:
    db = tomllib.loads((shared.root / "zone.toml").read_text()).get("db_url")
    with pytest.raises(AuthenticationError, match="matches no party"):
        connect(shared.root, token="czt_forged-token", db_url=db)
    with pytest.raises(AuthenticationError, match="no token"):
        connect(shared.root, db_url=db).datasets()
    attempt = _denials(shared)[-1]
    assert attempt["actor"] == "anonymous" and attempt["details"] == {"reason": "unknown token"}
    # the forged token itself is never written anywhere
    assert "czt_forged-token" not in str(shared.auditor.audit_events())


def test_other_partys_dataset_is_refused_and_audited(shared: Parties, tmp_path: Path) -> None:
    with pytest.raises(NotAuthorisedError, match="belongs to 'partner'"):
        shared.bank.remove_dataset("partner_data")
    with pytest.raises(NotAuthorisedError, match="belongs to 'partner'"):
        shared.bank.add_dataset(
            "partner_data", write_customers(tmp_path / "x.csv", 5, "x"), CUSTOMER_SPEC
        )
    with pytest.raises(NotAuthorisedError, match="only 'partner'"):
        shared.bank.add_agreement(
            "partner_data",
            grantees=["bank"],
            technique="dp_count",
            purposes=["*"],
            rules={"epsilon_budget": 100.0},
        )
    # reading it through a technique without an agreement is refused exactly as an unknown
    # name is (issue 12: no oracle for other owners' dataset names and their owners)
    request = shared.bank.submit("dp_count", {"dataset": "partner_data", "epsilon": 1.0}, "peek")
    assert isinstance(request, Request) and request.status is RequestStatus.REFUSED
    unknown = shared.bank.submit("dp_count", {"dataset": "no_such_data", "epsilon": 1.0}, "peek")
    assert isinstance(unknown, Request)
    assert request.reasons[0].replace("partner_data", "X") == unknown.reasons[0].replace(
        "no_such_data", "X"
    )
    assert "owner partner" not in request.reasons[0]
    assert "partner_data" not in {d.name for d in shared.bank.datasets()}
    attempts = {(e["actor"], e["details"]["attempt"]) for e in _denials(shared)}  # type: ignore[index]
    assert {("bank", "remove"), ("bank", "replace"), ("bank", "agreement")} <= attempts
    assert "partner_data" in {d.name for d in shared.partner.datasets()}


def test_approving_someone_elses_request_is_refused_and_audited(shared: Parties) -> None:
    shared.partner.add_agreement(
        "partner_data",
        grantees=["bank"],
        technique="dp_count",
        purposes=["marketing"],
        rules={"epsilon_budget": 1.0},
        approval="manual",
    )
    request = shared.bank.submit(
        "dp_count", {"dataset": "partner_data", "epsilon": 0.1}, "marketing"
    )
    assert isinstance(request, Request)
    for intruder in (shared.bank, shared.insurer, shared.operator):  # requester, stranger, operator
        with pytest.raises(NotAuthorisedError):
            intruder.approve(request.id, "let me through")
    with pytest.raises(NotAuthorisedError):
        shared.insurer.request(request.id)
    assert shared.bank.request(request.id).status is RequestStatus.AWAITING_APPROVAL
    actors = [e["actor"] for e in _denials(shared) if e["subject"] == request.id]
    assert (
        actors.count("bank") == 1 and actors.count("insurer") == 2 and actors.count("operator") == 1
    )


def test_roles_are_enforced(shared: Parties, tmp_path: Path) -> None:
    with pytest.raises(NotAuthorisedError, match="operator"):
        shared.bank.add_party("mallory", ["operator"])
    with pytest.raises(NotAuthorisedError, match="provider"):
        shared.auditor.add_dataset(
            "audit_data", write_customers(tmp_path / "a.csv", 5), CUSTOMER_SPEC
        )
    # the auditor reads everything, an ordinary party only what concerns it
    everything = shared.auditor.audit_events()
    bank_view = shared.bank.audit_events()
    assert len(bank_view) < len(everything)
    assert all("bank" in e["parties"] or e["actor"] == "bank" for e in bank_view)  # type: ignore[operator]
    assert shared.auditor.verify_audit().ok


def test_tokens_are_stored_hashed(shared: Parties) -> None:
    stored = (
        (shared.root / "zone.sqlite").read_bytes()
        if (shared.root / "zone.sqlite").exists()
        else b""
    )
    for token in shared.tokens.values():
        assert token.encode() not in stored


def test_a_party_handle_cannot_use_host_methods(shared: Parties) -> None:
    """Impersonation and service keys are for the host process (the server), never a party."""
    partner = shared.bank.party("partner")
    with pytest.raises(NotAuthorisedError, match="host process"):
        shared.bank.acting_as(partner)
    with pytest.raises(NotAuthorisedError, match="host process"):
        shared.bank.derive_key("server/jwt")
    with pytest.raises(NotAuthorisedError, match="host process"):
        shared.bank.record_denied("partner", "x", ["partner"], {"forged": True})
    attempts = {e["details"]["attempt"] for e in _denials(shared) if e["actor"] == "bank"}  # type: ignore[index]
    assert {"acting_as", "derive_key", "record_denied"} <= attempts
