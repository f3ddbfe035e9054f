"""Rolling the zone's database back, or deleting ledger rows, cannot pass verification.

The attacks as an insider with database access would run them (issue 12): save the audit
head row, let the zone work on, then delete the newest events (releases among them) and
put the saved head back; delete budget debits to refund budget; rewrite history with the
head key in hand. A checkpoint an owner fetched and kept outside the zone catches the
rollback and the fork; the ledger check catches deleted or invented debits without one.
Run on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, delete, insert, select, update

from collabzone import cli
from collabzone.audit import GENESIS, AuditEvent, event_hash, head_mac, read_events
from collabzone.audit_checkpoint import Checkpoint, from_dict, load, sign
from collabzone.errors import IntegrityError, InvalidInputError
from collabzone.keys import MASTER_KEY_ENV
from collabzone.store import tables as t
from tests.conftest import CUSTOMER_SPEC, Parties, write_customers


def _engine(zone: Parties) -> Engine:
    engine: Engine = zone.auditor._engine
    return engine


def _share(zone: Parties, tmp_path: Path) -> None:
    zone.partner.add_dataset("partner_data", write_customers(tmp_path / "p.csv", 60), CUSTOMER_SPEC)
    zone.partner.add_agreement(
        "partner_data",
        grantees=["bank"],
        technique="dp_count",
        purposes=["x"],
        rules={"epsilon_budget": 10.0},
    )


def _release(zone: Parties) -> str:
    request = zone.bank.submit("dp_count", {"dataset": "partner_data", "epsilon": 0.5}, "x")
    assert request.status.value == "released", request
    return request.id


def _head(engine: Engine) -> dict[str, Any]:
    with engine.connect() as conn:
        row = conn.execute(select(t.audit_head)).mappings().one()
    return dict(row)


def _roll_back(engine: Engine, head: dict[str, Any], *, ledger: bool) -> list[str]:
    """Delete every event after the saved ``head`` and restore it; with ``ledger``, also
    the debits and releases those events recorded (a whole-database rollback).
    Returns the actions of the deleted events."""
    with engine.begin() as conn:
        gone = list(
            conn.execute(select(t.audit_events).where(t.audit_events.c.seq > head["seq"]))
            .mappings()
            .all()
        )
        conn.execute(delete(t.audit_events).where(t.audit_events.c.seq > head["seq"]))
        conn.execute(update(t.audit_head).values(**head))
        if ledger:
            released = [e["subject"] for e in gone if e["action"] == "request.released"]
            conn.execute(delete(t.budget_debits).where(t.budget_debits.c.request_id.in_(released)))
            conn.execute(delete(t.releases).where(t.releases.c.request_id.in_(released)))
    return [e["action"] for e in gone]


@pytest.mark.parametrize("ledger", [True, False], ids=["whole-db", "events-only"])
def test_rollback_to_a_saved_head_is_caught_by_a_kept_checkpoint(
    zone: Parties, tmp_path: Path, ledger: bool
) -> None:
    _share(zone, tmp_path)
    _release(zone)
    saved = _head(_engine(zone))
    for _ in range(3):
        _release(zone)
    zone.insurer.add_dataset("insurer_data", write_customers(tmp_path / "i.csv", 20), CUSTOMER_SPEC)
    kept = zone.partner.audit_checkpoint()  # the owner keeps this outside the zone
    assert zone.partner.verify_audit(against=kept).ok

    actions = _roll_back(_engine(zone), saved, ledger=ledger)
    assert len(actions) >= 16 and actions.count("request.released") == 3

    result = zone.auditor.verify_audit(against=kept)
    assert not result.ok
    assert "ROLLED BACK" in str(result) and f"witnessed {kept.size}" in str(result)
    assert result.broken_at == saved["seq"] + 1
    plain = zone.auditor.verify_audit()
    if ledger:  # chain, head and ledger agree again: only the kept checkpoint can tell
        assert plain.ok
    else:  # the ledger still names the deleted release events
        assert not plain.ok and "ledger" in str(plain)
        assert "not in the audit log" in str(plain)


def test_fork_by_an_insider_holding_the_head_key_is_caught(zone: Parties, tmp_path: Path) -> None:
    _share(zone, tmp_path)
    _release(zone)
    kept = zone.bank.audit_checkpoint()
    mac_key = zone.operator._mac_key()
    with _engine(zone).begin() as conn:  # rewrite event 2 and everything after it
        prev, seq = GENESIS, 0
        for event in read_events(conn):
            details = {"rewritten": True} if event.seq == 2 else dict(event.details)
            fixed = AuditEvent(**{**event.__dict__, "details": details, "prev_hash": prev})
            digest = event_hash(fixed.body())
            conn.execute(
                update(t.audit_events)
                .where(t.audit_events.c.seq == event.seq)
                .values(details=details, prev_hash=prev, hash=digest)
            )
            prev, seq = digest, event.seq
        conn.execute(update(t.audit_head).values(hash=prev, mac=head_mac(mac_key, seq, prev)))
    assert zone.auditor.verify_audit().ok  # the zone alone cannot tell
    result = zone.auditor.verify_audit(against=kept)
    assert not result.ok and "FORKED" in str(result)


def test_deleted_ledger_rows_are_caught_not_refunded_quietly(zone: Parties, tmp_path: Path) -> None:
    _share(zone, tmp_path)
    first = _release(zone)
    _release(zone)
    assert zone.auditor.verify_audit().ok
    spent_before = zone.bank.budget()[0]["spent"]["epsilon"]
    with _engine(zone).begin() as conn:
        conn.execute(delete(t.budget_debits).where(t.budget_debits.c.request_id == first))
    assert zone.bank.budget()[0]["spent"]["epsilon"] < spent_before  # the refund itself

    result = zone.auditor.verify_audit()
    assert not result.ok and "ledger" in (result.problem or "")
    assert any(first in p and "budget refunded" in p for p in result.problems), result.problems
    # a party without the auditor's view hears that the ledger is wrong, not whose rows
    bank_view = zone.bank.verify_audit()
    assert not bank_view.ok and bank_view.problems == ()


def test_invented_or_altered_ledger_rows_are_caught(zone: Parties, tmp_path: Path) -> None:
    _share(zone, tmp_path)
    request_id = _release(zone)
    with _engine(zone).begin() as conn:
        row = conn.execute(select(t.budget_debits)).mappings().one()
        conn.execute(update(t.budget_debits).values(epsilon="0.1"))  # charged less
        fields = {k: v for k, v in row.items() if k != "id"}
        conn.execute(insert(t.budget_debits).values(**{**fields, "event_id": None}))
    result = zone.auditor.verify_audit()
    assert not result.ok
    text = "\n".join(result.problems)
    assert "does not match what event" in text and "has no audit event" in text
    assert request_id in text


def test_checkpoints_are_signed_and_bound_to_their_zone(zone: Parties) -> None:
    kept = zone.auditor.audit_checkpoint()
    assert kept.signature_ok() and kept.size == len(zone.auditor.audit_events())
    forged = Checkpoint(**{**kept.as_dict(), "size": kept.size - 1})
    with pytest.raises(InvalidInputError, match="signature"):
        from_dict(forged.as_dict())
    assert "signature" in (zone.auditor.verify_audit(against=forged).problem or "")
    fields = {k: getattr(kept, k) for k in ("size", "head", "at", "key_version")}
    foreign = sign(os.urandom(32), **{**fields, "zone": "zone-elsewhere"})
    assert "is for zone zone-elsewhere" in (
        zone.auditor.verify_audit(against=foreign).problem or ""
    )
    impostor = sign(os.urandom(32), **{**fields, "zone": kept.zone})
    problem = zone.auditor.verify_audit(against=impostor).problem or ""
    assert "not signed by this zone's key" in problem


def test_no_checkpoint_of_a_broken_log(zone: Parties) -> None:
    with _engine(zone).begin() as conn:
        conn.execute(update(t.audit_events).where(t.audit_events.c.seq == 1).values(actor="x"))
    with pytest.raises(IntegrityError, match="no checkpoint issued"):
        zone.auditor.audit_checkpoint()


def _cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["collabzone", *args])
    monkeypatch.setattr(cli.console, "width", 250)
    monkeypatch.setattr(cli.err_console, "width", 250)
    capsys.readouterr()
    try:
        cli.main()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_checkpoint_and_verify_against(
    make_zone: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    import os

    zone = make_zone(None)
    _share(zone, tmp_path)
    _release(zone)
    saved = _head(_engine(zone))
    _release(zone)
    base = ["--zone", str(zone.root), "--token", zone.tokens["partner"]]
    monkeypatch.setenv(MASTER_KEY_ENV, os.environ[MASTER_KEY_ENV])
    kept = tmp_path / "kept.json"
    code, _, err = _cli(monkeypatch, capsys, *base, "audit", "checkpoint", "--out", str(kept))
    assert code == 0 and "written to" in err
    assert load(kept).size == len(zone.auditor.audit_events())
    code, out, _ = _cli(monkeypatch, capsys, *base, "audit", "checkpoint")
    assert code == 0 and json.loads(out)["zone"] == zone.operator.zone_id
    code, out, _ = _cli(monkeypatch, capsys, *base, "audit", "verify", "--against", str(kept))
    assert code == 0 and "continues your checkpoint" in out

    _roll_back(_engine(zone), saved, ledger=True)
    code, out, _ = _cli(monkeypatch, capsys, *base, "audit", "verify")
    assert code == 0, out  # without the kept checkpoint the rollback is invisible
    code, _, err = _cli(monkeypatch, capsys, *base, "audit", "verify", "--against", str(kept))
    assert code == 8 and "ROLLED BACK" in err


def test_checkpoints_survive_rotating_and_destroying_the_head_key(zone: Parties) -> None:
    before = zone.partner.audit_checkpoint()
    zone.operator.rotate_key("audit-head")
    after = zone.partner.audit_checkpoint()
    assert (before.key_version, after.key_version) == (1, 2)
    assert before.public_key != after.public_key
    zone.operator.destroy_key("audit-head", 1)
    for kept in (before, after):  # version 1's key is recorded in the chain
        assert zone.auditor.verify_audit(against=kept).ok, kept
    impostor = sign(os.urandom(32), **{**_fields(before), "zone": before.zone})
    assert "not signed by this zone's key" in (
        zone.auditor.verify_audit(against=impostor).problem or ""
    )


def _fields(checkpoint: Checkpoint) -> dict[str, Any]:
    return {k: getattr(checkpoint, k) for k in ("size", "head", "at", "key_version")}
