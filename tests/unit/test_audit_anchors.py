"""Pure parts of the audit's anchors: checkpoint signing and consistency, ledger
reconciliation (including rows written before debits named their event), and the
0003 migration on a store that already holds debits."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import create_engine, select

from collabzone.audit import GENESIS, AuditEvent, event_hash
from collabzone.audit_checkpoint import consistency_problem, from_dict, sign
from collabzone.audit_ledger import debit_entry, reconcile
from collabzone.errors import InvalidInputError
from collabzone.store import tables as t
from collabzone.store.engine import MIGRATIONS, migrate

SEED = bytes(range(32))


def _event(seq: int, prev: str, action: str, subject: str, details: dict[str, Any]) -> AuditEvent:
    body = {
        "seq": seq,
        "id": f"ev-{seq:016x}",
        "at": "2026-12-02T00:00:00+00:00",
        "actor": "zone",
        "action": action,
        "subject": subject,
        "parties": ["bank"],
        "details": details,
        "prev_hash": prev,
    }
    return AuditEvent(**{**body, "parties": ("bank",), "hash": event_hash(body)})


def _chain(specs: list[tuple[str, str, dict[str, Any]]]) -> list[AuditEvent]:
    events, prev = [], GENESIS
    for seq, (action, subject, details) in enumerate(specs, 1):
        events.append(_event(seq, prev, action, subject, details))
        prev = events[-1].hash
    return events


def _row(n: int, event_id: str | None, request: str, **debit: str) -> dict[str, Any]:
    return {"id": n, "request_id": request, "event_id": event_id, **debit}


def test_checkpoint_round_trip_and_tamper() -> None:
    cp = sign(SEED, zone="zone-a", size=3, head="ab" * 32, at="2026-12-02T00:00:00", key_version=1)
    assert from_dict(cp.as_dict()) == cp
    for field, value in (("size", 4), ("head", "cd" * 32), ("zone", "zone-b"), ("key_version", 2)):
        with pytest.raises(InvalidInputError, match="signature"):
            from_dict({**cp.as_dict(), field: value})
    with pytest.raises(InvalidInputError, match="unknown extra"):
        from_dict({**cp.as_dict(), "extra": 1})
    with pytest.raises(InvalidInputError, match="signature does not verify"):
        from_dict({**cp.as_dict(), "signature": "!!"})


@given(st.integers(1, 40), st.integers(0, 40))
def test_consistency_names_rollback_and_fork(witnessed: int, now: int) -> None:
    cp = sign(SEED, zone="z", size=witnessed, head="h" * 64, at="t", key_version=1)
    same = consistency_problem(cp, "z", now, "h" * 64 if now >= witnessed else None)
    other = consistency_problem(cp, "z", now, "x" * 64 if now >= witnessed else None)
    if now < witnessed:
        assert same is not None and "ROLLED BACK" in same
    else:
        assert same is None and other is not None and "FORKED" in other
    assert "zone" in (consistency_problem(cp, "y", now, None) or "")


def test_ledger_matches_bound_and_legacy_rows() -> None:
    debit = debit_entry("bank", "d", "total", "0.5", "0.0", "0.0")
    events = _chain(
        [
            ("zone.created", "z", {}),
            ("request.released", "r1", {"receipt": {"budget_spent": {"d": {"epsilon": 0.25}}}}),
            ("request.released", "r2", {"debits": [debit]}),
            ("request.failed", "r3", {"charged": {"d": {"epsilon": 0.1}}}),
        ]
    )
    rows = [
        _row(1, None, "r1", **debit_entry("bank", "d", "total", "0.25", "0.0", "0.0")),
        _row(2, events[2].id, "r2", **debit),
        _row(3, None, "r3", **debit_entry("bank", "d", "total", "0.1", "0.0", "0.0")),
    ]
    assert reconcile(events, rows) == []
    assert any("budget refunded" in p and "r1" in p for p in reconcile(events, rows[1:]))
    assert any("event 3" in p for p in reconcile(events, [rows[0], rows[2]]))
    twice = reconcile(events, [*rows, {**rows[1], "id": 9}])
    assert twice == [
        "ledger row 9 (request r2, bank on d, epsilon 0.5, rho 0.0) does not match what "
        "event 3 charged (altered or duplicated)"
    ]
    ghost = reconcile(events, [*rows, {**rows[1], "id": 7, "event_id": "ev-gone"}])
    assert any("ev-gone, which is not in the audit log" in p for p in ghost)


def test_migration_0003_keeps_existing_debits(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    engine = create_engine(url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0002")
        connection.exec_driver_sql(
            "INSERT INTO budget_debits (request_id, party, dataset, period, epsilon, delta, "
            "rho, at) VALUES ('r1', 'bank', 'd', 'total', '0.5', '0.0', '0.0', 'now')"
        )
    migrate(engine)
    with engine.connect() as conn:
        row = conn.execute(select(t.budget_debits)).mappings().one()
    assert row["event_id"] is None and row["epsilon"] == "0.5"
    engine.dispose()
    assert os.path.exists(tmp_path / "old.sqlite")
