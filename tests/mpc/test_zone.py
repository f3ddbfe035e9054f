"""MPC reports as zone requests: plan, check against ``mpc`` agreements, approval, release.

The zone stores a reference to the recipient's output-share bundle, never the value; the
recipient opens the bundle on its side. One-party MPyC in-process (threshold 0) stands in
for the servers here (the three-process path is tests/mpc/test_three_processes.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from collabzone.errors import InvalidInputError
from collabzone.model import Request, RequestStatus
from collabzone.techniques import registry
from collabzone.techniques.mpc import MPC, InProcessDriver, ProcessDriver, open_bundle
from collabzone.zone import Zone
from tests.conftest import Parties

from .conftest import make_stores

SPEC = {
    "columns": [
        {"name": "age", "type": "float", "class": "measure", "domain": {"min": 0, "max": 100}},
        {"name": "hours", "type": "float", "class": "measure", "domain": {"min": 0, "max": 100}},
    ]
}
PURPOSE = "labour statistics"


@pytest.fixture
def world(
    sqlite_zone: Parties, tmp_path: Path, master_key: str
) -> Iterator[tuple[Parties, dict[str, np.ndarray], Path]]:
    """Partner registered ``adult`` (shares at one server); bank may ask, bank receives."""
    stores, data = make_stores(tmp_path / "servers", master_key, servers=1, threshold=0, rows=300,
        recipients=("bank",), provider="partner",
    )  # fmt: skip
    outbox = tmp_path / "outbox"
    registry.register("mpc", MPC(InProcessDriver(stores[0], outbox)))
    sqlite_zone.partner.register_dataset("adult", SPEC, row_count=300)
    yield sqlite_zone, data, outbox
    registry.register("mpc", "collabzone.techniques.mpc:MPC")


def _submit(zone: Zone, technique: str, spec: dict[str, Any], purpose: str) -> Request:
    request = zone.submit(technique, spec, purpose)
    assert isinstance(request, Request)
    return request


def _agree(parties: Parties, **rules: Any) -> None:
    base: dict[str, Any] = {"reports": ["mean", "count"], "recipients": ["bank"]}
    base.update(rules)
    approval = base.pop("approval", "auto")
    parties.partner.add_agreement(
        "adult", grantees=["bank"], technique="mpc", purposes=[PURPOSE], rules=base,
        approval=approval,
    )  # fmt: skip


def test_report_is_released_as_a_bundle_reference_the_recipient_opens(
    world: tuple[Parties, dict[str, np.ndarray], Path],
) -> None:
    parties, data, _ = world
    _agree(parties, min_group_size=50)
    request = _submit(parties.bank,
        "mpc", {"report": "mean", "datasets": ["adult"], "columns": ["age"], "recipient": "bank"},
        PURPOSE,
    )  # fmt: skip
    assert request.status is RequestStatus.RELEASED, request.reasons
    release = parties.bank.result(request.id)
    payload = dict(release.payload)
    # the zone holds a reference, not the value: no number near the mean is stored
    assert set(payload) == {"report", "datasets", "recipient", "bundle", "uploads"}
    assert [(u["dataset"], u["provider"], u["rows"]) for u in payload["uploads"]] == [
        ("adult", "partner", 300)
    ]
    assert f"{data['age'].mean():.3f}"[:5] not in json.dumps(payload)
    assert any("did not see" in note for note in release.receipt.notes)
    assert release.receipt.budget_spent == {}
    opened = open_bundle(payload["bundle"], "bank")
    assert opened["result"]["age"] == pytest.approx(data["age"].mean(), abs=1e-6)
    # the audit log records the release, and neither it nor the zone's store holds the mean
    events = [e for e in parties.auditor.audit_events() if request.id in json.dumps(e)]
    assert any("release" in e["action"] for e in events), [e["action"] for e in events]
    assert f"{opened['result']['age']:.4f}" not in json.dumps(events)
    # a swapped bundle is refused at the recipient
    Path(payload["bundle"]["path"]).write_text(json.dumps({"outputs": []}))
    with pytest.raises(InvalidInputError, match="SHA-256"):
        open_bundle(payload["bundle"], "bank")


def test_dp_noise_is_debited_from_the_ledger(
    world: tuple[Parties, dict[str, np.ndarray], Path],
) -> None:
    parties, _, _ = world
    _agree(parties, epsilon_budget=1.0, delta_budget=1e-4, max_epsilon_per_request=0.6)
    spec = {"report": "count", "datasets": ["adult"], "recipient": "bank", "epsilon": 0.5}
    first = _submit(parties.bank, "mpc", spec, PURPOSE)
    assert first.status is RequestStatus.RELEASED, first.reasons
    receipt = parties.bank.result(first.id).receipt
    assert receipt.budget_spent["adult"]["epsilon"] == 0.5
    assert receipt.budget_spent["adult"]["delta"] == pytest.approx(1e-6)
    assert receipt.mechanism is not None and "inside MPC" in receipt.mechanism
    count = open_bundle(parties.bank.result(first.id).payload["bundle"], "bank")["result"]
    assert abs(count["count"] - 300) < 200
    second = _submit(parties.bank, "mpc", spec, PURPOSE)
    assert second.status is RequestStatus.RELEASED
    third = _submit(parties.bank, "mpc", spec, PURPOSE)  # 1.5 > budget 1.0
    assert third.status is RequestStatus.REFUSED
    too_much = _submit(parties.bank, "mpc", {**spec, "epsilon": 0.9}, PURPOSE)
    assert too_much.status is RequestStatus.REFUSED


@pytest.mark.parametrize(
    ("spec", "rules", "code"),
    [
        ({"report": "variance", "columns": ["age"]}, {}, "REPORT_NOT_ACCEPTED"),
        ({"report": "mean", "columns": ["age"], "recipient": "partner"}, {},
         "RECIPIENT_NOT_GRANTED"),
        ({"report": "mean", "columns": ["age"]}, {"min_group_size": 1000}, "GROUP_TOO_SMALL"),
    ],
)  # fmt: skip
def test_agreement_refusals(
    world: tuple[Parties, dict[str, np.ndarray], Path],
    spec: dict[str, Any],
    rules: dict[str, Any],
    code: str,
) -> None:
    parties, _, outbox = world
    _agree(parties, **rules)
    request = _submit(
        parties.bank, "mpc", {"datasets": ["adult"], "recipient": "bank", **spec}, PURPOSE
    )
    assert request.status is RequestStatus.REFUSED
    assert any(r.startswith(code) for r in request.reasons), request.reasons
    assert not outbox.exists()  # refused before any server computed


def test_no_agreement_and_manual_approval(
    world: tuple[Parties, dict[str, np.ndarray], Path],
) -> None:
    parties, data, outbox = world
    spec = {"report": "mean", "datasets": ["adult"], "columns": ["hours"], "recipient": "bank"}
    assert _submit(parties.bank, "mpc", spec, PURPOSE).status is RequestStatus.REFUSED
    _agree(parties, approval="manual")
    waiting = _submit(parties.bank, "mpc", spec, PURPOSE)
    assert waiting.status is RequestStatus.AWAITING_APPROVAL
    assert not outbox.exists()
    denied = _submit(parties.bank, "mpc", spec, PURPOSE)
    parties.partner.deny(denied.id, "not this quarter")
    assert not outbox.exists()
    done = parties.partner.approve(waiting.id, "ok")
    assert parties.bank.request(done.id).status is RequestStatus.RELEASED
    opened = open_bundle(parties.bank.result(done.id).payload["bundle"], "bank")
    assert opened["result"]["hours"] == pytest.approx(data["hours"].mean(), abs=1e-6)


def test_a_zone_without_compute_servers_fails_clearly(sqlite_zone: Parties) -> None:
    sqlite_zone.partner.register_dataset("adult", SPEC, row_count=300)
    registry.register("mpc", "collabzone.techniques.mpc:MPC")
    sqlite_zone.partner.add_agreement(
        "adult", grantees=["bank"], technique="mpc", purposes=[PURPOSE],
        rules={"reports": ["count"], "recipients": ["bank"]},
    )  # fmt: skip
    request = _submit(
        sqlite_zone.bank,
        "mpc",
        {"report": "count", "datasets": ["adult"], "recipient": "bank"},
        PURPOSE,
    )
    assert request.status is RequestStatus.FAILED
    assert "no compute servers" in " ".join(request.reasons)


def test_servers_recheck_the_providers_own_terms(
    world: tuple[Parties, dict[str, np.ndarray], Path], tmp_path: Path, master_key: str
) -> None:
    """An agreement in the zone wider than what the provider bundled with its shares (here
    the recipient) does not widen it: the server refuses before computing."""
    parties, _, outbox = world
    stores, _ = make_stores(tmp_path / "other", master_key, servers=1, threshold=0, rows=300,
                            recipients=("ministry",), provider="partner")  # fmt: skip
    registry.register("mpc", MPC(InProcessDriver(stores[0], outbox)))
    _agree(parties)
    request = _submit(
        parties.bank,
        "mpc",
        {"report": "count", "datasets": ["adult"], "recipient": "bank"},
        PURPOSE,
    )
    assert request.status is RequestStatus.REFUSED
    assert any("RECIPIENT_NOT_GRANTED" in r for r in request.reasons)
    assert not outbox.exists()


@pytest.mark.slow
def test_zone_request_over_three_server_processes(
    sqlite_zone: Parties, tmp_path: Path, master_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The deployment shape: three MPyC processes, each with one server's shares; the zone
    stores the bundle reference, the recipient needs two of the three shares to open it."""
    stores, data = make_stores(tmp_path / "servers", master_key, servers=3, threshold=1,
                               rows=200, recipients=("bank",), provider="partner")  # fmt: skip
    monkeypatch.setenv("COLLABZONE_MASTER_KEY", master_key)
    outbox = tmp_path / "outbox"
    registry.register("mpc", MPC(ProcessDriver([s.root for s in stores], outbox)))
    try:
        sqlite_zone.partner.register_dataset("adult", SPEC, row_count=200)
        _agree(sqlite_zone)
        spec = {"report": "mean", "datasets": ["adult"], "columns": ["age"], "recipient": "bank"}
        request = _submit(sqlite_zone.bank, "mpc", spec, PURPOSE)
    finally:
        registry.register("mpc", "collabzone.techniques.mpc:MPC")
    assert request.status is RequestStatus.RELEASED, request.reasons
    bundle = sqlite_zone.bank.result(request.id).payload["bundle"]
    assert (bundle["servers"], bundle["threshold"]) == (3, 1)
    result = open_bundle(bundle, "bank")["result"]
    assert result["age"] == pytest.approx(data["age"].mean(), abs=1e-6)


@pytest.mark.parametrize(
    "spec",
    [
        {"report": "mean", "columns": ["salary"], "recipient": "bank"},  # not in the schema
        {"report": "mean", "columns": ["age"], "recipient": "nobody"},  # not a party
        {"report": "median", "columns": ["age"], "recipient": "bank"},  # not a report
        {"report": "variance", "columns": ["age"], "recipient": "bank", "epsilon": 1.0},
    ],
)
def test_bad_specs_are_refused_at_plan_time(
    world: tuple[Parties, dict[str, np.ndarray], Path], spec: dict[str, Any]
) -> None:
    parties, _, outbox = world
    _agree(parties, reports=["mean", "variance"])
    request = _submit(parties.bank, "mpc", {"datasets": ["adult"], **spec}, PURPOSE)
    assert request.status is RequestStatus.REFUSED
    assert request.reasons[0].startswith(("INVALID_INPUT", "NOT_FOUND")), request.reasons
    assert not outbox.exists()


def test_cli_opens_a_released_bundle(
    world: tuple[Parties, dict[str, np.ndarray], Path],
) -> None:
    """``collabzone mpc open BUNDLE --recipient bank --sha256 ...`` on the recipient's side."""
    from typer.testing import CliRunner

    from collabzone.cli import app

    parties, data, _ = world
    _agree(parties)
    spec = {"report": "mean", "datasets": ["adult"], "columns": ["age"], "recipient": "bank"}
    bundle = parties.bank.result(_submit(parties.bank, "mpc", spec, PURPOSE).id).payload["bundle"]
    runner = CliRunner()
    ok = runner.invoke(
        app, ["mpc", "open", bundle["path"], "--recipient", "bank", "--sha256", bundle["sha256"]]
    )
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.output)["result"]["age"] == pytest.approx(data["age"].mean(), abs=1e-6)
    wrong = runner.invoke(
        app, ["mpc", "open", bundle["path"], "--recipient", "bank", "--sha256", "0" * 64]
    )
    assert wrong.exit_code != 0 and "SHA-256" in wrong.output
