"""The zone's own keys over their life: rotation with re-encryption (resumable, also after
SIGKILL), destruction guarded by what still needs a version, and every key event audited
without key material.

Each Found of issue 20 §4 is reproduced here: zone keys could not be rotated (no
``rotate_key``), key events were not audited, and a data-key version could be destroyed
while files were still sealed under it (see ``test_destroy_refused_...``).
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from sqlalchemy import update

from collabzone import audit
from collabzone.errors import (
    ConflictError,
    InvalidInputError,
    NotAuthorisedError,
    NotFoundError,
)
from collabzone.store import tables as t
from collabzone.store.data import DATA_KEY
from collabzone.zone import Zone, connect
from collabzone.zone_keys import AUDIT_KEY, TECHNIQUES_KEY, head_key_version
from tests.conftest import CUSTOMER_SPEC, Parties, write_customers

SERVICES_KEY = "zone-services"


def _add(parties: Parties, tmp_path: Path, count: int, rows: int = 50) -> list[str]:
    names = []
    for i in range(count):
        name = f"set_{i}"
        source = write_customers(tmp_path / f"{name}.csv", rows, prefix=f"t{i}-", seed=i)
        (parties.bank if i % 2 == 0 else parties.partner).add_dataset(name, source, CUSTOMER_SPEC)
        names.append(name)
    return names


def _tables(zone: Zone, names: list[str]) -> dict[str, pa.Table]:
    return {n: zone._data.read(n, 1) for n in names}


def _header_versions(root: Path) -> dict[str, int]:
    return {
        p.name: int.from_bytes(p.read_bytes()[4:8], "big")
        for p in (root / "data").glob("*.parquet.enc")
    }


def _events(zone: Zone, action: str) -> list[dict[str, Any]]:
    return [e for e in zone.audit_events() if e["action"] == action]


def _encodings(material: bytes) -> list[str]:
    return [
        base64.b64encode(material).decode(),
        base64.urlsafe_b64encode(material).decode(),
        base64.urlsafe_b64encode(material).decode().rstrip("="),
        material.hex(),
    ]


def test_data_key_rotation_reencrypts_every_file_and_is_audited(
    zone: Parties, tmp_path: Path
) -> None:
    names = _add(zone, tmp_path, 4)
    before = _tables(zone.operator, names)
    blobs = {p.name: p.read_bytes() for p in (zone.root / "data").iterdir()}
    assert set(_header_versions(zone.root).values()) == {1}
    seen: list[tuple[int, int]] = []

    summary = zone.operator.rotate_key(DATA_KEY, progress=lambda d, n: seen.append((d, n)))

    assert summary == {
        "name": DATA_KEY,
        "from_version": 1,
        "to_version": 2,
        "resumed": False,
        "files": 4,
    }
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert set(_header_versions(zone.root).values()) == {2}
    for name, blob in blobs.items():  # new salt, nonce and ciphertext for every file
        assert (zone.root / "data" / name).read_bytes() != blob
    assert _tables(zone.bank, names) == before
    rotated = _events(zone.auditor, "key.rotated")
    assert [e["subject"] for e in rotated] == [f"key:{DATA_KEY}"]
    assert rotated[0]["details"] == {
        "from_version": 1,
        "to_version": 2,
        "resumed": False,
        "files": 4,
    }
    assert len(_events(zone.auditor, "key.rotation_started")) == 1

    zone.operator.destroy_key(DATA_KEY, 1)  # nothing needs version 1 any more
    assert zone.operator._keys.versions(DATA_KEY) == [2]
    assert _tables(zone.bank, names) == before
    destroyed = _events(zone.auditor, "key.destroyed")
    assert [(e["subject"], e["details"]) for e in destroyed] == [
        (f"key:{DATA_KEY}", {"version": 1})
    ]
    assert zone.auditor.verify_audit().ok


def test_destroy_refused_while_a_file_or_the_head_needs_the_version(
    sqlite_zone: Parties, tmp_path: Path
) -> None:
    names = _add(sqlite_zone, tmp_path, 2)
    keys = sqlite_zone.operator._keys
    # a bare provider rotation (what was possible before): files stay under version 1
    assert keys.rotate(DATA_KEY) == 2
    with pytest.raises(ConflictError, match=r"2 data file\(s\) are still sealed under version 1"):
        sqlite_zone.operator.destroy_key(DATA_KEY, 1)
    assert keys.versions(DATA_KEY) == [1, 2]
    assert all(sqlite_zone.bank._data.read(n, 1).num_rows == 50 for n in names)
    # the rotation command finishes the job (files under older versions move to the current)
    assert sqlite_zone.operator.rotate_key(DATA_KEY)["files"] == 2
    sqlite_zone.operator.destroy_key(DATA_KEY, 1)

    with pytest.raises(InvalidInputError, match="is current"):
        sqlite_zone.operator.destroy_key(AUDIT_KEY, 1)
    assert not _events(sqlite_zone.auditor, "key.destroyed")[1:]  # refusals record nothing
    with pytest.raises(NotFoundError):
        sqlite_zone.operator.destroy_key(DATA_KEY, 7)


def test_audit_head_rotation_keeps_the_log_verifiable(sqlite_zone: Parties, tmp_path: Path) -> None:
    _add(sqlite_zone, tmp_path, 1)
    operator = sqlite_zone.operator
    old_key = operator._keys.derive(AUDIT_KEY, operator.zone_id, version=1)
    assert operator.rotate_key(AUDIT_KEY)["to_version"] == 2
    with operator._engine.connect() as conn:
        head = audit.read_head(conn)
    assert head_key_version(operator._keys, AUDIT_KEY, operator.zone_id, head) == 2
    assert operator.verify_audit().ok
    operator.destroy_key(AUDIT_KEY, 1)
    _add(sqlite_zone, tmp_path / "more", 0)
    sqlite_zone.bank.add_agreement(
        "set_0", grantees=["partner"], technique="dp_count", purposes=["*"], rules={}
    )
    result = sqlite_zone.auditor.verify_audit()
    assert result.ok, result
    # someone holding only the destroyed version cannot re-sign a truncated log any more
    with operator._engine.begin() as conn:
        events = audit.read_events(conn)
        cut = events[-2]
        conn.execute(t.audit_events.delete().where(t.audit_events.c.seq == events[-1].seq))
        conn.execute(
            update(t.audit_head).values(
                seq=cut.seq, hash=cut.hash, mac=audit.head_mac(old_key, cut.seq, cut.hash)
            )
        )
    broken = sqlite_zone.auditor.verify_audit()
    assert not broken.ok and "signature is invalid" in (broken.problem or "")


def test_derived_key_rotation_changes_service_and_technique_keys(sqlite_zone: Parties) -> None:
    host = connect(sqlite_zone.root)  # the server's view: no party
    jwt_before = host.derive_key("server/jwt")
    sqlite_zone.operator.rotate_key(SERVICES_KEY)
    assert host.derive_key("server/jwt") != jwt_before
    assert connect(sqlite_zone.root).derive_key("server/jwt") == host.derive_key("server/jwt")
    sqlite_zone.operator.rotate_key(TECHNIQUES_KEY)
    inventory = {k["name"]: k for k in sqlite_zone.auditor.key_inventory()}
    assert inventory[SERVICES_KEY]["current"] == 2
    assert inventory[TECHNIQUES_KEY]["versions"] == [1, 2]
    assert inventory[DATA_KEY]["current"] == 1 and not inventory[DATA_KEY]["rotation_pending"]
    subjects = [e["subject"] for e in _events(sqlite_zone.auditor, "key.rotated")]
    assert subjects == [f"key:{SERVICES_KEY}", f"key:{TECHNIQUES_KEY}"]


def test_only_the_operator_rotates_or_destroys(sqlite_zone: Parties) -> None:
    for handle in (sqlite_zone.bank, sqlite_zone.auditor):
        with pytest.raises(NotAuthorisedError, match="needs the role operator"):
            handle.rotate_key(DATA_KEY)
        with pytest.raises(NotAuthorisedError):
            handle.destroy_key(DATA_KEY, 1)
    with pytest.raises(NotAuthorisedError):
        sqlite_zone.bank.key_inventory()
    denied = [e for e in sqlite_zone.auditor.audit_events() if e["action"] == "auth.denied"]
    assert {e["subject"] for e in denied} >= {"rotating a key", "destroying a key"}
    assert sqlite_zone.operator._keys.versions(DATA_KEY) == [1]
    with pytest.raises(InvalidInputError, match="collabzone link rotate"):
        sqlite_zone.operator.rotate_key("link:bank-retail")
    with pytest.raises(NotFoundError, match="holds no key"):
        sqlite_zone.operator.rotate_key("master-of-the-universe")
    with pytest.raises(InvalidInputError, match="oprf"):
        sqlite_zone.operator.rotate_key(DATA_KEY, datasets=["set_0"])


def test_key_events_never_carry_key_material(sqlite_zone: Parties, tmp_path: Path) -> None:
    _add(sqlite_zone, tmp_path, 2)
    operator = sqlite_zone.operator
    secrets: list[str] = []
    for name in (DATA_KEY, AUDIT_KEY, SERVICES_KEY):
        operator.rotate_key(name)
        for version in operator._keys.versions(name):
            material = operator._keys.get(name, version)[1]
            secrets += _encodings(material)
            secrets += _encodings(operator._keys.derive(name, operator.zone_id, version=version))
        operator.destroy_key(name, 1)
    log = json.dumps(sqlite_zone.auditor.audit_events())
    assert '"key.rotated"' in log and '"key.destroyed"' in log
    for secret in secrets:
        assert secret not in log


def test_new_provider_key_version_seen_on_a_dataset(zone: Parties, tmp_path: Path) -> None:
    def upload(tokens: list[str]) -> None:
        lines = ["token,region,spend", *(f"{tok},north,1.5" for tok in tokens)]
        source = tmp_path / "linked.csv"
        source.write_text("\n".join(lines) + "\n", encoding="utf-8")
        zone.bank.add_dataset("linked", source, CUSTOMER_SPEC)

    def seen() -> list[dict[str, Any]]:
        return [e["details"] for e in _events(zone.bank, "key.version_seen")]

    upload([f"v1:{i:040d}" for i in range(5)])
    assert seen() == [
        {"dataset_version": 1, "key_versions": {"token": ["v1"]}, "new": {"token": ["v1"]}}
    ]
    upload([f"v1:{i:040d}" for i in range(6)])  # same version again: nothing new to record
    assert len(seen()) == 1
    upload([f"v1:{i:040d}" for i in range(3)] + [f"v2:{i:040d}" for i in range(3)])
    assert seen()[-1] == {
        "dataset_version": 3,
        "key_versions": {"token": ["v1", "v2"]},
        "new": {"token": ["v2"]},
    }
    upload(["plain-1", "plain-2", "https://x"])  # no token prefix: no key version to see
    assert len(seen()) == 2
    assert zone.auditor.verify_audit().ok


def test_rotation_interrupted_midway_resumes_the_same_rotation(
    zone: Parties, tmp_path: Path
) -> None:
    names = _add(zone, tmp_path, 5)
    before = _tables(zone.operator, names)

    def crash(done: int, total: int) -> None:
        if done == 2:
            raise KeyboardInterrupt  # as if the operator pressed Ctrl-C after two files

    with pytest.raises(KeyboardInterrupt):
        zone.operator.rotate_key(DATA_KEY, progress=crash)
    versions = sorted(_header_versions(zone.root).values())
    assert versions == [1, 1, 1, 2, 2]
    assert _tables(zone.bank, names) == before  # every file opens under its own version
    inventory = {k["name"]: k for k in zone.operator.key_inventory()}
    assert inventory[DATA_KEY]["rotation_pending"]
    with pytest.raises(ConflictError, match="under way"):
        zone.operator.destroy_key(DATA_KEY, 1)

    summary = zone.operator.rotate_key(DATA_KEY)
    assert summary["resumed"] and summary["to_version"] == 2 and summary["files"] == 3
    assert zone.operator._keys.versions(DATA_KEY) == [1, 2]  # no third version
    assert set(_header_versions(zone.root).values()) == {2}
    assert _tables(zone.bank, names) == before
    assert len(_events(zone.auditor, "key.rotated")) == 1
    assert zone.auditor.verify_audit().ok


CHILD = """
import sys, time
from collabzone.zone import connect
operator = connect(sys.argv[1], sys.argv[2])
def progress(done, total):
    print(done, flush=True)
    time.sleep(0.05)
operator.rotate_key("data-at-rest", progress=progress)
print("finished", flush=True)
"""


@pytest.mark.slow
@pytest.mark.parametrize("delay", [0.0, 0.02, 0.045])
def test_kill_9_midway_then_the_command_finishes_it(
    sqlite_zone: Parties, tmp_path: Path, delay: float
) -> None:
    """SIGKILL lands between files or in the middle of one (temp file written, not renamed);
    every dataset still reads back identical, and rerunning the CLI command completes."""
    names = _add(sqlite_zone, tmp_path, 12, rows=2000)
    before = _tables(sqlite_zone.operator, names)
    operator_token = sqlite_zone.operator.add_party("keyops", ["operator"])[1]
    env = {**os.environ, "COLLABZONE_ZONE": str(sqlite_zone.root)}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(sqlite_zone.root), operator_token],
        stdout=subprocess.PIPE,
        env=env,
        text=True,
    )
    assert child.stdout is not None
    for _ in range(4):  # four files re-sealed, then kill during the next ones
        assert child.stdout.readline().strip().isdigit()
    time.sleep(delay)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    child.stdout.close()
    assert child.returncode == -signal.SIGKILL

    versions = _header_versions(sqlite_zone.root)
    assert 1 in versions.values() and 2 in versions.values()  # killed midway, really
    fresh = connect(sqlite_zone.root, sqlite_zone.tokens["bank"])
    assert _tables(fresh, names) == before  # nothing lost, nothing unreadable

    rerun = subprocess.run(
        [sys.executable, "-m", "collabzone", "keys", "rotate", "data-at-rest"],
        env={**env, "COLLABZONE_TOKEN": operator_token},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert rerun.returncode == 0, rerun.stderr
    said = " ".join(rerun.stdout.split())  # Rich wraps lines at the terminal width
    assert "data-at-rest: version 1 -> 2" in said and "finished an interrupted rotation" in said
    assert set(_header_versions(sqlite_zone.root).values()) == {2}
    after = connect(sqlite_zone.root, sqlite_zone.tokens["auditor"])
    assert _tables(after, names) == before
    assert after.verify_audit().ok
    assert len(_events(after, "key.rotated")) == 1
    listing = subprocess.run(
        [sys.executable, "-m", "collabzone", "keys", "list"],
        env={**env, "COLLABZONE_TOKEN": operator_token},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert listing.returncode == 0 and "data-at-rest" in listing.stdout
    assert "unfinished" not in listing.stdout
