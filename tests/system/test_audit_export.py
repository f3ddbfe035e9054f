"""Audit exports verify offline: intact, truncated, edited, rolled back, filtered.

Before issue 12 an export was bare event lines: a truncated file and an intact one read
the same, and a party's filtered export had gaps no one could check. Now each export ends
with the zone's signed checkpoint and a party's export carries the hashes of the events
it may not read, so its chain still runs unbroken to that checkpoint.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select, update

from collabzone import cli
from collabzone.audit_checkpoint import load, sign
from collabzone.audit_export import verify_export
from collabzone.keys import MASTER_KEY_ENV
from collabzone.store import tables as t
from tests.conftest import CUSTOMER_SPEC, Parties, write_customers


@pytest.fixture
def busy(zone: Parties, tmp_path: Path) -> Parties:
    """A zone where the bank released a count and the insurer did things the bank may not see."""
    zone.partner.add_dataset("partner_data", write_customers(tmp_path / "p.csv", 60), CUSTOMER_SPEC)
    zone.partner.add_agreement(
        "partner_data",
        grantees=["bank"],
        technique="dp_count",
        purposes=["x"],
        rules={"epsilon_budget": 5.0},
    )
    zone.bank.submit("dp_count", {"dataset": "partner_data", "epsilon": 0.5}, "x")
    zone.insurer.add_dataset(
        "insurer_secret_name", write_customers(tmp_path / "i.csv", 20), CUSTOMER_SPEC
    )
    return zone


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines(keepends=True)


def test_intact_export_verifies_and_truncated_one_says_so(busy: Parties, tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    shown = busy.auditor.export_audit(path)
    events = len(busy.auditor.audit_events())
    assert shown == events and len(_lines(path)) == events + 2
    intact = verify_export(path)
    assert intact.ok and str(intact).startswith("export intact:") and intact.events == events

    lines = _lines(path)
    cut = tmp_path / "cut.jsonl"
    cut.write_text("".join(lines[:-4]), encoding="utf-8")  # lost its last events
    truncated = verify_export(cut)
    assert not truncated.ok and truncated.truncated
    assert str(truncated).startswith("export TRUNCATED:") and "closing checkpoint" in str(truncated)

    mid = tmp_path / "mid.jsonl"
    mid.write_text("".join(lines)[: len("".join(lines)) - 40], encoding="utf-8")  # mid-line
    assert verify_export(mid).truncated and "mid-line" in str(verify_export(mid))

    dropped = tmp_path / "dropped.jsonl"
    dropped.write_text("".join(lines[:3] + lines[4:]), encoding="utf-8")
    broken = verify_export(dropped)
    assert not broken.ok and not broken.truncated and "BROKEN" in str(broken)


def test_edited_export_is_broken(busy: Parties, tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    busy.auditor.export_audit(path)
    lines = _lines(path)
    event = json.loads(lines[3])
    event["actor"] = "someone-else"
    lines[3] = json.dumps(event) + "\n"
    path.write_text("".join(lines), encoding="utf-8")
    result = verify_export(path)
    assert not result.ok and "edited" in str(result) and not result.truncated


def test_filtered_export_is_verifiable_without_showing_others_events(
    busy: Parties, tmp_path: Path
) -> None:
    path = tmp_path / "bank.jsonl"
    shown = busy.bank.export_audit(path)
    text = path.read_text(encoding="utf-8")
    assert "insurer_secret_name" not in text  # the insurer's events are redacted
    assert shown == len(busy.bank.audit_events()) < len(busy.auditor.audit_events())
    result = verify_export(path)
    assert result.ok, str(result)
    assert f"{shown} shown" in str(result) and result.events == len(busy.auditor.audit_events())


def test_export_against_a_kept_checkpoint(busy: Parties, tmp_path: Path) -> None:
    kept = busy.bank.audit_checkpoint()
    busy.bank.submit("dp_count", {"dataset": "partner_data", "epsilon": 0.5}, "x")
    later = tmp_path / "later.jsonl"
    busy.bank.export_audit(later)
    assert "continues your checkpoint" in str(verify_export(later, kept))

    with busy.auditor._engine.begin() as conn:  # roll back to before the kept checkpoint
        head = (
            conn.execute(select(t.audit_events).where(t.audit_events.c.seq == kept.size - 2))
            .mappings()
            .one()
        )
        conn.execute(delete(t.audit_events).where(t.audit_events.c.seq > head["seq"]))
        mac = busy.operator._mac_key()
        from collabzone.audit import head_mac

        conn.execute(
            update(t.audit_head).values(
                seq=head["seq"], hash=head["hash"], mac=head_mac(mac, head["seq"], head["hash"])
            )
        )
        conn.execute(delete(t.budget_debits))
    rolled = tmp_path / "rolled.jsonl"
    busy.bank.export_audit(rolled)
    assert verify_export(rolled).ok  # self-consistent: only the kept checkpoint tells
    result = verify_export(rolled, kept)
    assert not result.ok and "ROLLED BACK" in str(result)

    other = sign(
        os.urandom(32),
        zone=kept.zone,
        size=kept.size,
        head=kept.head,
        at=kept.at,
        key_version=kept.key_version,
    )
    assert "different keys" in str(verify_export(later, other))


def test_verify_export_cli_runs_offline(
    busy: Parties, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    path = tmp_path / "audit.jsonl"
    kept = tmp_path / "kept.json"
    kept.write_text(busy.auditor.audit_checkpoint().to_json(), encoding="utf-8")
    busy.auditor.export_audit(path)
    assert load(kept).zone == busy.auditor.zone_id
    monkeypatch.delenv(MASTER_KEY_ENV)  # offline: no zone, no key, no token

    def run(*args: str) -> tuple[int, str]:
        monkeypatch.setattr(sys, "argv", ["collabzone", "--zone", str(tmp_path / "none"), *args])
        capsys.readouterr()
        try:
            cli.main()
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        out = capsys.readouterr()
        return code, out.out + out.err

    code, text = run("audit", "verify-export", str(path), "--against", str(kept))
    assert code == 0 and "export intact" in text and "continues your checkpoint" in text
    path.write_text("".join(_lines(path)[:-1]), encoding="utf-8")
    code, text = run("audit", "verify-export", str(path))
    assert code == 8 and "TRUNCATED" in text


def test_remote_client_checks_a_lying_server_on_its_export(make_zone: Any, tmp_path: Path) -> None:
    """A server that answers "intact" for a rolled-back log is caught by the client,
    which verifies the export it fetches against the party's kept checkpoint."""
    import httpx

    from collabzone.client import RemoteZone

    zone = make_zone(None)
    old_export = zone.bank.audit_export()  # what the rolled-back server will serve
    zone.partner.add_dataset("partner_data", write_customers(tmp_path / "p.csv", 30), CUSTOMER_SPEC)
    kept = zone.bank.audit_checkpoint()
    claims_ok = {"ok": True, "events": len(old_export) - 2, "problems": []}

    def server(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/token":
            return httpx.Response(200, json={"access_token": "t", "expires_in": 3600})
        if request.url.path == "/v1/audit/export":
            return httpx.Response(200, json=old_export)
        return httpx.Response(200, json=claims_ok)

    remote = RemoteZone("http://zone.test", client_id="bank", client_secret="czt_x",
                        transport=httpx.MockTransport(server))  # fmt: skip
    assert remote.verify_audit().ok  # without a kept checkpoint the client must trust it
    caught = remote.verify_audit(against=kept)
    assert not caught.ok and "ROLLED BACK" in str(caught) and "checked here" in str(caught)
    remote.close()
