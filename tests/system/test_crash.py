"""Issue 2: a process killed (SIGKILL) at any step of a release leaves either no release, or
release + budget debit + audit event together; the audit chain verifies after every crash
and the zone keeps working. A crash mid-ingest leaves no orphan file and nothing half-written.

The release steps are killed through ``collabzone.requests.crashpoint`` (env
``COLLABZONE_CRASH_AT``); the ingest steps by a child that wraps a function on the ingest
path so that it kills itself there (same effect as a power cut at that point).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from collabzone.requests import CRASH_ENV
from collabzone.store import tables as t
from collabzone.store.data import TEMP_GRACE_SECONDS, TEMP_PREFIX
from collabzone.zone import Zone, connect
from tests.conftest import CUSTOMER_SPEC, Parties, write_customers

RELEASE_STEPS = ["after_run", "before_debit", "after_debit", "after_audit", "before_commit"]
COMMITTED_STEPS = ["after_commit"]
EPSILON = 0.25

SUBMIT_CHILD = """
import sys
from collabzone.zone import connect

zone = connect(sys.argv[1], sys.argv[2], db_url=sys.argv[3] or None)
zone.submit("dp_count", {"dataset": "customers", "epsilon": float(sys.argv[4])}, purpose="crash")
print("survived")
"""

INGEST_CHILD = """
import json, os, signal, sys
from collabzone import zone as zone_module
from collabzone.store import data as data_module
from collabzone.zone import connect

def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)

step = sys.argv[4]
if step == "mid_write":  # the sealed bytes are in the temp file, not yet renamed
    data_module.os.fsync = die
elif step == "before_metadata_commit":  # the data file is in place, the row not committed
    real_append = zone_module.audit.append
    def append(conn, key, **kw):
        if kw.get("action") == "dataset.added":
            die()
        return real_append(conn, key, **kw)
    zone_module.audit.append = append
zone = connect(sys.argv[1], sys.argv[2], db_url=sys.argv[3] or None)
zone.add_dataset("customers", sys.argv[5], json.loads(sys.argv[6]))
print("survived")
"""


def run_child(
    script: str, parties: Parties, token: str, db_url: str | None, *args: str, crash: str | None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != CRASH_ENV}
    if crash is not None:
        env[CRASH_ENV] = crash
    return subprocess.run(
        [sys.executable, "-c", script, str(parties.root), token, db_url or "", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def reopen(parties: Parties, db_url: str | None, party: str) -> Zone:
    """A fresh handle for ``party``, as a restarted process opens the zone (cleans orphans)."""
    return connect(parties.root, parties.tokens[party], db_url=db_url)


@pytest.fixture
def prepared(zone: Parties, db_url: str | None, tmp_path: Path) -> Parties:
    """Bank's customers with a dp_count agreement granting the partner an epsilon budget."""
    zone.bank.add_dataset("customers", write_customers(tmp_path / "c.csv", 300), CUSTOMER_SPEC)
    zone.bank.add_agreement(
        "customers",
        grantees=["partner"],
        technique="dp_count",
        purposes=["*"],
        rules={"epsilon_budget": 1.0},
    )
    return zone


def release_state(handle: Zone, request_id: str) -> dict[str, Any]:
    """The three things a release commits together, read straight from the metadata store."""
    with handle._engine.connect() as conn:
        release = (
            conn.execute(select(t.releases).where(t.releases.c.request_id == request_id))
            .mappings()
            .first()
        )
        debits = list(
            conn.execute(
                select(t.budget_debits).where(t.budget_debits.c.request_id == request_id)
            ).mappings()
        )
    events = [
        e
        for e in handle.audit_events()
        if e["action"] == "request.released" and e["subject"] == request_id
    ]
    return {"release": release, "debits": debits, "events": events}


def assert_all_or_nothing(state: dict[str, Any]) -> bool:
    """Either none of release, debit, audit event exists, or all do and agree. Returns
    whether the release happened."""
    release, debits, events = state["release"], state["debits"], state["events"]
    if release is None:
        assert debits == [] and events == [], "a debit or audit event without its release"
        return False
    assert len(debits) == 1 and len(events) == 1, "a release without its debit or audit event"
    receipt = release["receipt"]
    assert receipt["audit_event_id"] == events[0]["id"]
    spent = receipt["budget_spent"]["customers"]
    assert float(debits[0]["epsilon"]) == spent["epsilon"] == EPSILON
    assert float(debits[0]["delta"]) == spent["delta"]
    assert float(debits[0]["rho"]) == spent["rho"]
    assert events[0]["details"]["receipt"]["budget_spent"] == receipt["budget_spent"]
    return True


@pytest.mark.parametrize("step", RELEASE_STEPS + COMMITTED_STEPS)
def test_sigkill_during_release_is_all_or_nothing(
    prepared: Parties, db_url: str | None, step: str
) -> None:
    child = run_child(
        SUBMIT_CHILD, prepared, prepared.tokens["partner"], db_url, str(EPSILON), crash=step
    )
    assert child.returncode == -signal.SIGKILL, child.stderr[-2000:]
    assert "survived" not in child.stdout

    partner = reopen(prepared, db_url, "partner")
    auditor = reopen(prepared, db_url, "auditor")
    [request] = partner.requests()
    released = assert_all_or_nothing(release_state(auditor, request.id))
    assert released is (step in COMMITTED_STEPS)
    assert auditor.verify_audit().ok

    # the budget shows exactly what was committed, and the zone still answers
    spent_before = sum(b["spent"]["epsilon"] for b in partner.budget())
    assert spent_before == (EPSILON if released else 0)
    again = partner.submit("dp_count", {"dataset": "customers", "epsilon": EPSILON}, "after crash")
    assert again.status.value == "released"  # type: ignore[union-attr]
    assert assert_all_or_nothing(release_state(auditor, again.id))  # type: ignore[union-attr]
    assert sum(b["spent"]["epsilon"] for b in partner.budget()) == spent_before + EPSILON
    assert auditor.verify_audit().ok


def test_child_without_crash_releases(prepared: Parties, db_url: str | None) -> None:
    """The control: the same child with no crash point releases and exits normally."""
    child = run_child(
        SUBMIT_CHILD, prepared, prepared.tokens["partner"], db_url, str(EPSILON), crash=None
    )
    assert child.returncode == 0, child.stderr[-2000:]
    [request] = reopen(prepared, db_url, "partner").requests()
    assert assert_all_or_nothing(release_state(prepared.auditor, request.id))


# -- ingest -----------------------------------------------------------------------------


def data_files(parties: Parties) -> list[str]:
    folder = parties.root / "data"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


@pytest.mark.parametrize("step", ["mid_write", "before_metadata_commit"])
@pytest.mark.parametrize("existing", [False, True], ids=["new", "new_version"])
def test_sigkill_during_ingest_leaves_no_orphan(
    zone: Parties, db_url: str | None, tmp_path: Path, step: str, existing: bool
) -> None:
    if existing:
        zone.bank.add_dataset("customers", write_customers(tmp_path / "v1.csv", 50), CUSTOMER_SPEC)
        original = zone.bank._data.read("customers", 1)
    events_before = len(zone.operator.audit_events())
    files_before = data_files(zone)
    big = write_customers(tmp_path / "big.csv", 30_000, prefix="new", seed=7)

    child = run_child(
        INGEST_CHILD,
        zone,
        zone.tokens["bank"],
        db_url,
        step,
        str(big),
        json.dumps(CUSTOMER_SPEC),
        crash=None,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr[-2000:]
    left = set(data_files(zone)) - set(files_before)
    assert left, "the crash left nothing to clean up"
    # a young file may be another process's write in progress: the sweep waits
    [leftover] = left
    if step == "mid_write":
        assert leftover.startswith(TEMP_PREFIX)
    reopen(zone, db_url, "bank")
    assert leftover in data_files(zone)
    old = time.time() - 2 * TEMP_GRACE_SECONDS  # as if the crash was a while ago
    os.utime(zone.root / "data" / leftover, (old, old))

    bank = reopen(zone, db_url, "bank")  # opening the zone removes what the crash left
    assert data_files(zone) == files_before
    datasets = bank.datasets()
    if existing:
        [dataset] = datasets
        assert (dataset.version, dataset.row_count) == (1, 50)
        assert bank._data.read("customers", 1).equals(original)
    else:
        assert datasets == []
    assert len(zone.operator.audit_events()) == events_before
    assert bank.verify_audit().ok

    # and the same ingest succeeds afterwards
    dataset = bank.add_dataset("customers", big, CUSTOMER_SPEC)
    assert dataset.row_count == 30_000
    assert data_files(zone) == [f"customers.v{dataset.version}.parquet.enc"]


def test_opening_the_zone_during_an_ingest_loses_no_data(
    sqlite_zone: Parties, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process opens the zone (any CLI call does) between an ingest's data file
    rename and its metadata transaction: the ingest must still end with a readable dataset."""
    store = sqlite_zone.bank._data
    real_write = store.write

    def write_then_another_open(dataset: str, version: int, table: Any) -> tuple[str, str]:
        written = real_write(dataset, version, table)
        connect(sqlite_zone.root, sqlite_zone.tokens["partner"])  # the other process
        return written

    monkeypatch.setattr(store, "write", write_then_another_open)
    source = write_customers(tmp_path / "c.csv", 100)
    sqlite_zone.bank.add_dataset("customers", source, CUSTOMER_SPEC)
    assert sqlite_zone.bank._data.read("customers", 1).num_rows == 100
