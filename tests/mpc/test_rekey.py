"""Rotating the join key: stored pseudonyms move to a fresh key without PII, joins survive,
the old key shares stop working, and fewer than 2t + 1 servers cannot open the ratio."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from collabzone.crypto.group import L
from collabzone.errors import InvalidInputError
from collabzone.techniques.mpc import ShareStore, split_upload
from collabzone.techniques.mpc._join import deal_key, match, pseudonymise, share_server
from collabzone.techniques.mpc._rekey import (
    rekey_factor,
    rekey_message,
    rotate_join_key,
)

PEOPLE = [f"person-{i}@example.org" for i in range(40)]


def _stores(tmp_path: Path, master_key: str) -> list[ShareStore]:
    stores = [ShareStore(tmp_path / f"s{i}", master_key) for i in range(3)]
    for store, share in zip(stores, deal_key(3, 1), strict=True):
        store.set_oprf_share(share)
    return stores


def _pseudonyms(stores: list[ShareStore], ids: list[str]) -> list[str]:
    servers = [share_server(i, s.oprf_share(), s.join_key_version()) for i, s in enumerate(stores)]
    return pseudonymise(ids, [servers[0].evaluate, servers[2].evaluate], 1)


def _upload(stores: list[ShareStore], name: str, ids: list[str]) -> None:
    keys = _pseudonyms(stores, ids)
    packages = split_upload(
        name, name, {"x": np.arange(len(ids), dtype=float)}, {"x": (0.0, 100.0)},
        reports=["mean"], recipients=["ministry"], min_group_size=5, join_keys=keys,
    )  # fmt: skip
    for store, package in zip(stores, packages, strict=True):
        store.put(package)


def test_rotation_moves_every_pseudonym_and_keeps_the_join(tmp_path: Path, master_key: str) -> None:
    stores = _stores(tmp_path, master_key)
    _upload(stores, "bank", PEOPLE[:30])
    _upload(stores, "clinic", PEOPLE[10:][::-1])
    before = {n: stores[0].join_keys(n) for n in ("bank", "clinic")}
    old_shares = [s.oprf_share() for s in stores]

    assert rotate_join_key(stores, threshold=1) == 2

    after = {n: stores[0].join_keys(n) for n in ("bank", "clinic")}
    assert all(s.join_key_version() == 2 for s in stores)
    assert all(stores[i].join_keys("bank") == after["bank"] for i in range(3))
    assert not set(after["bank"]) & set(before["bank"])  # nothing stays linkable as stored
    assert match(after) == match(before)  # the same people still join, in the same order
    # a provider pseudonymising now with the new shares gets exactly the rotated values
    assert _pseudonyms(stores, PEOPLE[:30]) == after["bank"]
    assert [s.oprf_share() for s in stores] != old_shares
    # the old shares are gone from disk: only the new version of the key file is left
    assert all(not list((s.root / "data").glob("__oprf_key__.v1.*")) for s in stores)


def test_an_upload_under_the_old_key_is_refused_after_rotation(
    tmp_path: Path, master_key: str
) -> None:
    stores = _stores(tmp_path, master_key)
    stale = _pseudonyms(stores, PEOPLE[:10])
    rotate_join_key(stores, threshold=1)
    package = split_upload(
        "late", "late", {"x": np.zeros(10)}, {"x": (0.0, 1.0)}, reports=["mean"],
        recipients=["ministry"], min_group_size=5, join_keys=stale,
    )[0]  # fmt: skip
    with pytest.raises(InvalidInputError, match=r"join key .*version 2: pseudonymise again"):
        stores[0].put(package)
    assert "late" not in stores[0].holdings()


def test_the_ratio_needs_an_honest_majority_and_reveals_only_the_ratio() -> None:
    old, new, mask = deal_key(3, 1), deal_key(3, 1), deal_key(3, 1)
    messages = [rekey_message(i, old[i], new[i], mask[i]) for i in range(3)]
    factor = rekey_factor(messages, threshold=1)

    def secret(shares: list[int]) -> int:  # reconstruct from shares 1 and 2 (degree 1)
        return (2 * shares[0] - shares[1]) % L

    assert factor == secret(new) * pow(secret(old), -1, L) % L
    with pytest.raises(InvalidInputError, match="needs messages from 3 distinct servers"):
        rekey_factor(messages[:2], threshold=1)
    with pytest.raises(InvalidInputError, match="3 distinct servers"):
        rekey_factor([messages[0], messages[0], messages[1]], threshold=1)
    # one server's message is its own share times a uniform mask share: a fresh mask gives
    # a different message for the same key share, so the message alone says nothing of it
    other = rekey_message(0, old[0], new[0], deal_key(3, 1)[0])
    assert (other.masked_old, other.masked_new) != (messages[0].masked_old, messages[0].masked_new)


def test_a_failed_rotation_leaves_the_store_as_it_was(
    tmp_path: Path, master_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    stores = _stores(tmp_path, master_key)
    _upload(stores, "bank", PEOPLE[:20])
    before = stores[0].join_keys("bank")
    files_before = sorted(p.name for p in (stores[0].root / "data").iterdir())
    real_write = stores[0]._data.write

    def failing_write(dataset: str, version: int, table: object) -> tuple[str, str]:
        if dataset == "__oprf_key__":
            raise OSError("disk full")
        return real_write(dataset, version, table)  # type: ignore[arg-type]

    monkeypatch.setattr(stores[0]._data, "write", failing_write)
    with pytest.raises(OSError, match="disk full"):
        stores[0].rekey_join_keys(12345, 678)
    assert stores[0].join_key_version() == 1
    assert stores[0].join_keys("bank") == before
    assert sorted(p.name for p in (stores[0].root / "data").iterdir()) == files_before
