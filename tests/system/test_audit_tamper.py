"""Tampering with the stored audit log (edit, delete, reorder, truncate, forge) is detected
on both metadata stores, and `verify` names the first broken event."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Connection, delete, select, update

from collabzone.store import tables as t
from tests.conftest import CUSTOMER_SPEC, Parties, write_customers


def _engine(zone: Parties):  # type: ignore[no-untyped-def]
    return zone.auditor._engine


def _edit(conn: Connection) -> int:
    conn.execute(
        update(t.audit_events).where(t.audit_events.c.seq == 3).values(actor="someone-else")
    )
    return 3


def _delete(conn: Connection) -> int:
    conn.execute(delete(t.audit_events).where(t.audit_events.c.seq == 4))
    return 5


def _reorder(conn: Connection) -> int:
    rows = {
        r.seq: r
        for r in conn.execute(select(t.audit_events).where(t.audit_events.c.seq.in_([4, 5])))
    }
    conn.execute(delete(t.audit_events).where(t.audit_events.c.seq.in_([4, 5])))
    for new_seq, old in ((4, rows[5]), (5, rows[4])):
        conn.execute(t.audit_events.insert().values(**{**old._asdict(), "seq": new_seq}))
    return 4


def _truncate(conn: Connection) -> int:
    last = conn.execute(select(t.audit_events.c.seq).order_by(t.audit_events.c.seq.desc())).first()
    assert last is not None
    conn.execute(delete(t.audit_events).where(t.audit_events.c.seq >= last.seq - 1))
    return last.seq - 1


def _rehash_all(conn: Connection) -> int:
    """An insider edits event 2 and recomputes every later hash; only the signed head catches it."""
    from collabzone.audit import GENESIS, AuditEvent, event_hash, read_events

    prev = GENESIS
    for event in read_events(conn):
        details = {"rewritten": True} if event.seq == 2 else dict(event.details)
        fixed = AuditEvent(**{**event.__dict__, "details": details, "prev_hash": prev})
        digest = event_hash(fixed.body())
        conn.execute(
            update(t.audit_events)
            .where(t.audit_events.c.seq == event.seq)
            .values(details=details, prev_hash=prev, hash=digest)
        )
        prev = digest
    conn.execute(update(t.audit_head).values(hash=prev))
    return 0


TAMPERS: dict[str, Callable[[Connection], int]] = {
    "edit": _edit,
    "delete": _delete,
    "reorder": _reorder,
    "truncate": _truncate,
    "rehash": _rehash_all,
}


@pytest.mark.parametrize("tamper", sorted(TAMPERS))
def test_tampering_is_detected(zone: Parties, tmp_path: Path, tamper: str) -> None:
    zone.partner.add_dataset("partner_data", write_customers(tmp_path / "p.csv", 50), CUSTOMER_SPEC)
    zone.partner.add_agreement(
        "partner_data",
        grantees=["bank"],
        technique="dp_count",
        purposes=["x"],
        rules={"epsilon_budget": 1.0},
    )
    zone.bank.submit("dp_count", {"dataset": "partner_data", "epsilon": 0.5}, "x")
    assert zone.auditor.verify_audit().ok
    with _engine(zone).begin() as conn:
        expected = TAMPERS[tamper](conn)
    result = zone.auditor.verify_audit()
    assert not result.ok, tamper
    if expected:
        assert result.broken_at == expected, str(result)
    assert "BROKEN" in str(result)
