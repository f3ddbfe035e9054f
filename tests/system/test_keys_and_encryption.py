"""Keys and data at rest: the local keyring (master key, rotation, destruction, no key material
in repr) and the encrypted dataset files (no clear text on disk, swapped or flipped bytes are
caught by AES-GCM authentication)."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path

import pytest

from collabzone.errors import (
    AuthenticationError,
    ConflictError,
    IntegrityError,
    InvalidInputError,
    NotFoundError,
)
from collabzone.keys import LocalKeyring, new_master_key
from collabzone.store.data import DATA_KEY
from collabzone.zone import connect
from tests.conftest import CUSTOMER_SPEC, Parties

PASSPHRASE = "correct horse battery staple, but longer"


def _material_b64(ring: LocalKeyring, name: str, version: int | None = None) -> str:
    return base64.urlsafe_b64encode(ring.get(name, version)[1]).decode()


@pytest.mark.parametrize("master", [new_master_key(), PASSPHRASE], ids=["base64_key", "passphrase"])
def test_keyring_opens_only_with_its_master_key(tmp_path: Path, master: str) -> None:
    path = tmp_path / "keyring.json"
    ring = LocalKeyring.create_new(path, master)
    ring.create("link:demo")
    material = ring.get("link:demo")
    assert LocalKeyring(path, master).get("link:demo") == material  # reopens with the same key
    for wrong in (new_master_key(), PASSPHRASE + "!", master[:-1]):
        with pytest.raises(AuthenticationError, match="wrong master key"):
            LocalKeyring(path, wrong)
    with pytest.raises(InvalidInputError, match="already exists"):
        LocalKeyring.create_new(path, master)


def test_rotation_keeps_old_versions_and_destroy_shreds_them(tmp_path: Path) -> None:
    master = new_master_key()
    path = tmp_path / "keyring.json"
    ring = LocalKeyring.create_new(path, master)
    assert ring.create("k") == 1
    v1 = ring.get("k")
    assert ring.rotate("k") == 2
    v2 = ring.get("k")
    assert v2[0] == 2 and v2[1] != v1[1]
    assert ring.get("k", 1) == v1  # the old version stays readable
    assert ring.derive("k", "p", version=1) != ring.derive("k", "p")
    with pytest.raises(InvalidInputError, match="is current"):
        ring.destroy("k", 2)
    ring.destroy("k", 1)
    with pytest.raises(NotFoundError):
        ring.get("k", 1)
    reopened = LocalKeyring(path, master)  # destruction and rotation are persisted
    assert reopened.versions("k") == [2]
    assert reopened.get("k") == v2
    with pytest.raises(NotFoundError):
        reopened.get("k", 1)
    with pytest.raises(NotFoundError):
        reopened.destroy("k", 1)


def test_key_material_never_in_repr_or_keyring_file(tmp_path: Path) -> None:
    master = new_master_key()
    path = tmp_path / "keyring.json"
    ring = LocalKeyring.create_new(path, master)
    ring.create("k")
    ring.rotate("k")
    secrets = [master, _material_b64(ring, "k", 1), _material_b64(ring, "k", 2)]
    on_disk = path.read_text()
    for text in (repr(ring), str(ring), on_disk):
        for secret in secrets:
            assert secret not in text
    raw = ring.get("k")[1]
    assert raw not in path.read_bytes()


def test_zone_refuses_a_wrong_master_key(sqlite_zone: Parties) -> None:
    with pytest.raises(AuthenticationError, match="wrong master key"):
        connect(sqlite_zone.root, sqlite_zone.tokens["bank"], master_key=new_master_key())
    text = repr(sqlite_zone.bank) + repr(sqlite_zone.bank._keys)
    assert sqlite_zone.tokens["bank"] not in text


# -- data at rest ---------------------------------------------------------------------------

DISTINCT = ["zq-ALPHA-7731", "zq-BRAVO-5519", "zq-CHARLIE-0042"]
SPEC = {
    "columns": [
        *CUSTOMER_SPEC["columns"],
        {"name": "note", "type": "string", "class": "other"},
    ]
}


def _ingest(parties: Parties, tmp_path: Path, name: str, marker: str, rows: int = 40) -> None:
    lines = ["token,region,spend,note"]
    lines += [f"{marker}-{i},north,{i}.5,{DISTINCT[i % 3]}" for i in range(rows)]
    source = tmp_path / f"{name}.csv"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    parties.bank.add_dataset(name, source, SPEC)


def test_no_clear_text_under_the_zone_directory(sqlite_zone: Parties, tmp_path: Path) -> None:
    _ingest(sqlite_zone, tmp_path, "customers", "tok-QUOKKA")
    data_files = list((sqlite_zone.root / "data").iterdir())
    assert data_files, "the ingest wrote no data file"
    needles = [s.encode() for s in [*DISTINCT, "tok-QUOKKA-1"]]
    for path in sqlite_zone.root.rglob("*"):  # data files, metadata DB, WAL, keyring
        if path.is_file():
            blob = path.read_bytes()
            for needle in needles:
                assert needle not in blob, f"{needle!r} in clear in {path.name}"
    # while the zone itself still reads the values back
    table = sqlite_zone.bank._data.read("customers", 1)
    assert set(table.column("note").to_pylist()) == set(DISTINCT)


def test_swapped_data_file_fails_authentication(sqlite_zone: Parties, tmp_path: Path) -> None:
    _ingest(sqlite_zone, tmp_path, "first", "tok-A")
    _ingest(sqlite_zone, tmp_path, "second", "tok-B")
    data = sqlite_zone.root / "data"
    shutil.copyfile(data / "first.v1.parquet.enc", data / "second.v1.parquet.enc")
    with pytest.raises(IntegrityError, match="tampered or swapped"):
        sqlite_zone.bank._data.read("second", 1)
    assert sqlite_zone.bank._data.read("first", 1).num_rows == 40

    # through the request path: the run fails, nothing is released, no budget is spent
    sqlite_zone.bank.add_agreement(
        "second",
        grantees=["partner"],
        technique="dp_count",
        purposes=["*"],
        rules={"epsilon_budget": 1.0},
    )
    request = sqlite_zone.partner.submit("dp_count", {"dataset": "second", "epsilon": 0.5}, "x")
    assert request.status.value == "failed"  # type: ignore[union-attr]
    assert any("tampered or swapped" in r for r in request.reasons)  # type: ignore[union-attr]
    with pytest.raises(ConflictError, match="failed"):
        sqlite_zone.partner.result(request.id)  # type: ignore[union-attr]
    assert sqlite_zone.partner.budget() == []


@pytest.mark.parametrize("where", ["header", "middle", "tag"])
def test_flipped_byte_fails_authentication(
    sqlite_zone: Parties, tmp_path: Path, where: str
) -> None:
    _ingest(sqlite_zone, tmp_path, "customers", "tok-F")
    path = sqlite_zone.root / "data" / "customers.v1.parquet.enc"
    blob = bytearray(path.read_bytes())
    # the salt (in the header), a ciphertext byte, the last byte of the GCM tag
    index = {"header": 10, "middle": len(blob) // 2, "tag": len(blob) - 1}[where]
    blob[index] ^= 0x01
    path.write_bytes(bytes(blob))
    with pytest.raises(IntegrityError):
        sqlite_zone.bank._data.read("customers", 1)


def test_truncated_or_foreign_file_is_refused(sqlite_zone: Parties, tmp_path: Path) -> None:
    _ingest(sqlite_zone, tmp_path, "customers", "tok-T")
    path = sqlite_zone.root / "data" / "customers.v1.parquet.enc"
    path.write_bytes(b"PAR1 not ours")
    with pytest.raises(IntegrityError, match="not a collabzone data file"):
        sqlite_zone.bank._data.read("customers", 1)


def test_data_key_rotation_keeps_old_files_readable(sqlite_zone: Parties, tmp_path: Path) -> None:
    _ingest(sqlite_zone, tmp_path, "before", "tok-R1")
    keys = sqlite_zone.bank._keys
    assert keys.rotate(DATA_KEY) == 2
    _ingest(sqlite_zone, tmp_path, "after", "tok-R2")
    data = sqlite_zone.root / "data"
    assert (data / "before.v1.parquet.enc").read_bytes()[4:8] == (1).to_bytes(4, "big")
    assert (data / "after.v1.parquet.enc").read_bytes()[4:8] == (2).to_bytes(4, "big")
    assert sqlite_zone.bank._data.read("before", 1).num_rows == 40
    keys.destroy(DATA_KEY, 1)  # crypto-shredding: files under version 1 become unreadable
    with pytest.raises(NotFoundError, match="destroyed"):
        sqlite_zone.bank._data.read("before", 1)
    assert sqlite_zone.bank._data.read("after", 1).num_rows == 40
