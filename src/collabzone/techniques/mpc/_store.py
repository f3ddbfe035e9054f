"""A compute server's own store: its shares, sealed at rest, and what providers agreed to.

Each server keeps a directory of its own::

    <root>/keyring.json      its LocalKeyring (master key from COLLABZONE_MASTER_KEY)
    <root>/holdings.json     per dataset: provider, rows, bounds, accepted reports (public)
    <root>/data/*.enc        one sealed file per dataset version (the zone's DataStore:
                             AES-256-GCM, HKDF per-file keys, dataset and version bound in)

A share is a field element below 2**128, stored as 16 big-endian bytes in a Parquet
fixed-size binary column. One server's file alone is uniform noise (see the tests).
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from collabzone.errors import ConflictError, InvalidInputError, NotFoundError
from collabzone.keys import KeyProvider, LocalKeyring
from collabzone.store.data import DATA_KEY, DataStore
from collabzone.techniques.mpc._reports import Holding
from collabzone.techniques.mpc._shares import field, from_bytes

SHARE_BYTES = 16
JOIN_COLUMN = "__join__"
OPRF_FILE = "__oprf_key__"
INBOX_KEY_FILE = "__inbox_key__"
RELAY_KEY_FILE = "__relay_key__"
JOIN_KEY_ENTRY = "__join_key__"  # holdings.json entry: the join key's version


def _to_bytes(values: Sequence[int]) -> pa.Array:
    return pa.array([v.to_bytes(SHARE_BYTES, "big") for v in values], pa.binary(SHARE_BYTES))


def _from_bytes(column: pa.ChunkedArray | pa.Array) -> list[int]:
    values: list[int] = _share_array(column).tolist()
    return values


def _packed(values: Sequence[int] | str, rows: int) -> pa.Array:
    """A column of a package (ints, or base64 of 16-byte shares) as a fixed-size binary
    array; every share must be a field element."""
    if not isinstance(values, str):
        return _to_bytes(values)
    data = base64.b64decode(values, validate=True)
    if len(data) != rows * SHARE_BYTES:
        raise InvalidInputError("the upload's share columns do not all have the declared row count")
    halves = np.frombuffer(data, dtype=">u8").reshape(-1, 2)
    modulus = int(field().modulus)
    high, low = np.uint64(modulus >> 64), np.uint64(modulus & (2**64 - 1))
    if np.any((halves[:, 0] > high) | ((halves[:, 0] == high) & (halves[:, 1] >= low))):
        raise InvalidInputError("a share in the upload is not a field element")
    return pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(SHARE_BYTES), rows, [None, pa.py_buffer(data)]
    )


def _share_array(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """The shares of a stored column as an object array of Python ints (vectorised)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if len(column) == 0:
        return np.zeros(0, dtype=object)
    data = column.buffers()[1]
    start = column.offset * SHARE_BYTES
    return from_bytes(memoryview(data)[start : start + len(column) * SHARE_BYTES])


class ShareStore:
    """The shares and holdings of one compute server (index ``index`` of ``servers``)."""

    def __init__(self, root: Path, master_key: str, *, keys: KeyProvider | None = None) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        ring_path = self.root / "keyring.json"
        if keys is None:
            if ring_path.exists():
                keys = LocalKeyring(ring_path, master_key)
            else:
                keys = LocalKeyring.create_new(ring_path, master_key)
        if DATA_KEY not in keys.names():
            keys.create(DATA_KEY)
        self._data = DataStore(self.root / "data", keys)

    @property
    def _holdings_path(self) -> Path:
        return self.root / "holdings.json"

    def _read_doc(self) -> dict[str, dict[str, Any]]:
        if not self._holdings_path.exists():
            return {}
        doc: dict[str, dict[str, Any]] = json.loads(self._holdings_path.read_text("utf-8"))
        return doc

    def _read_holdings(self) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self._read_doc().items() if k != JOIN_KEY_ENTRY}

    def _write_holdings(
        self, doc: Mapping[str, Any], join_key: Mapping[str, Any] | None = None
    ) -> None:
        """Replace holdings.json atomically: the one commit point of every change here."""
        meta = join_key if join_key is not None else self._read_doc().get(JOIN_KEY_ENTRY)
        full = {**doc, **({JOIN_KEY_ENTRY: meta} if meta is not None else {})}
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".holdings-")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(full, handle, indent=1, sort_keys=True)
        os.replace(tmp, self._holdings_path)

    def join_key_version(self) -> int:
        """The version of the join key this server's pseudonyms are under (1 until rotated)."""
        return int(self._read_doc().get(JOIN_KEY_ENTRY, {}).get("version", 1))

    def holdings(self) -> dict[str, Holding]:
        """Every dataset this server holds shares of, with the provider's agreement."""
        out = {}
        for name, doc in self._read_holdings().items():
            out[name] = Holding(
                dataset=name,
                provider=doc["provider"],
                rows=doc["rows"],
                bounds={c: (b[0], b[1]) for c, b in doc["bounds"].items()},
                reports=tuple(doc["reports"]),
                recipients=tuple(doc["recipients"]),
                min_group_size=doc["min_group_size"],
                extra={
                    "index": doc["index"],
                    "servers": doc["servers"],
                    "threshold": doc["threshold"],
                    "join": doc.get("join", False),
                    "groups": doc.get("groups"),
                },
            )
        return out

    def put(self, package: Mapping[str, Any]) -> None:
        """Store one upload package (see :func:`~collabzone.techniques.mpc._client.split_upload`).

        A dataset name already held is refused (upload under a new name), so no stored
        shares are overwritten half-way.
        """
        holding = package["holding"]
        name = holding["dataset"]
        doc = self._read_holdings()
        if name in doc:
            raise ConflictError(
                f"this server already holds dataset {name!r}: upload under a new name"
            )
        shares: Mapping[str, Sequence[int] | str] = package["shares"]
        rows = holding["rows"]
        if any(not isinstance(v, str) and len(v) != rows for v in shares.values()):
            raise InvalidInputError(
                "the upload's share columns do not all have the declared row count"
            )
        table = pa.table({c: _packed(v, rows) for c, v in shares.items()})
        join_keys = package.get("join_keys")
        if join_keys is not None:
            if len(join_keys) != holding["rows"]:
                raise InvalidInputError("the upload's join keys do not match its row count")
            expected = f"o{self.join_key_version()}"
            stale = {k.partition(":")[0] for k in join_keys} - {expected}
            if stale:
                raise InvalidInputError(
                    f"the upload's pseudonyms are under join key {sorted(stale)}, this "
                    f"server's join key is at version {expected[1:]}: pseudonymise again"
                )
            table = table.append_column(JOIN_COLUMN, pa.array(join_keys, pa.string()))
        file_name, _digest = self._data.write(name, 1, table)
        doc[name] = {**holding, "file": file_name, "join": join_keys is not None}
        self._write_holdings(doc)

    def shares(self, dataset: str, columns: Sequence[str]) -> dict[str, list[int]]:
        """This server's shares of ``columns`` of ``dataset`` (decrypted in memory only)."""
        doc = self._read_holdings().get(dataset)
        if doc is None:
            raise NotFoundError(f"this server holds no dataset {dataset!r}")
        table = self._data.read(dataset, doc.get("file_version", 1), doc["file"])
        return {c: _from_bytes(table.column(c)) for c in columns}

    def share_arrays(self, dataset: str, columns: Sequence[str]) -> dict[str, np.ndarray]:
        """:meth:`shares` as object arrays of Python ints (no per-share Python loop)."""
        doc = self._read_holdings().get(dataset)
        if doc is None:
            raise NotFoundError(f"this server holds no dataset {dataset!r}")
        table = self._data.read(dataset, doc.get("file_version", 1), doc["file"])
        return {c: _share_array(table.column(c)) for c in columns}

    def join_keys(self, dataset: str) -> list[str]:
        """The pseudonyms of ``dataset``'s rows (threshold-OPRF outputs, never raw ids)."""
        doc = self._read_holdings().get(dataset)
        if doc is None or not doc.get("join"):
            raise NotFoundError(f"this server holds no join keys for dataset {dataset!r}")
        table = self._data.read(dataset, doc.get("file_version", 1), doc["file"])
        keys: list[str] = table.column(JOIN_COLUMN).to_pylist()
        return keys

    def set_oprf_share(self, share: int) -> None:
        """Seal this server's share of the join key (see ``_join.deal_key``)."""
        table = pa.table({"share": pa.array([str(share)], pa.string())})
        self._data.write(OPRF_FILE, self.join_key_version(), table)

    def oprf_share(self) -> int:
        """This server's sealed share of the join key."""
        table = self._data.read(OPRF_FILE, self.join_key_version())
        return int(table.column("share")[0].as_py())

    def rekey_join_keys(self, factor: int, new_share: int) -> int:
        """Move every stored pseudonym to the next join key (multiply by ``factor``, the
        opened ``k'/k`` of :func:`._rekey.rotate_join_key`) and seal ``new_share``; returns
        the new version. All or nothing: new files first, then one holdings commit, then
        the old files (and with them the old share) are deleted."""
        from collabzone.techniques.mpc._rekey import rekey_tokens

        version = self.join_key_version() + 1
        doc = self._read_holdings()
        written: list[str] = []
        try:
            for name, entry in doc.items():
                if not entry.get("join"):
                    continue
                table = self._data.read(name, entry.get("file_version", 1), entry["file"])
                moved = rekey_tokens(table.column(JOIN_COLUMN).to_pylist(), factor, version)
                position = table.schema.get_field_index(JOIN_COLUMN)
                table = table.set_column(position, JOIN_COLUMN, pa.array(moved, pa.string()))
                file_name, _ = self._data.write(name, version, table)
                written.append(file_name)
                doc[name] = {**entry, "file": file_name, "file_version": version, "old": entry}
            share = pa.table({"share": pa.array([str(new_share)], pa.string())})
            written.append(self._data.write(OPRF_FILE, version, share)[0])
            old_files = [doc[n].pop("old")["file"] for n in doc if "old" in doc[n]]
            old_files.append(self._data.file_name(OPRF_FILE, version - 1))
            self._write_holdings(doc, {"version": version})
        except BaseException:
            for file_name in written:
                self._data.remove(file_name)
            raise
        for file_name in old_files:
            self._data.remove(file_name)
        return version

    def inbox_key(self) -> Any:
        """This server's P-256 key for survey answers sealed to it (made once, sealed here)."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec

        try:
            table = self._data.read(INBOX_KEY_FILE, 1)
        except (FileNotFoundError, NotFoundError):
            key = ec.generate_private_key(ec.SECP256R1())
            pem = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            self._data.write(INBOX_KEY_FILE, 1, pa.table({"pem": pa.array([pem], pa.binary())}))
            return key
        return serialization.load_pem_private_key(table.column("pem")[0].as_py(), None)

    def inbox_public(self) -> str:
        """The public half of :meth:`inbox_key`, as the survey page hands it to browsers."""
        from collabzone.techniques.mpc._survey import public_raw

        return public_raw(self.inbox_key())

    def relay_key(self) -> Any:
        """This server's X25519 key (PyNaCl) for share packages sealed to it and relayed by
        the zone (:mod:`._relay`): made once, sealed here, never leaves the store."""
        from nacl.public import PrivateKey

        try:
            table = self._data.read(RELAY_KEY_FILE, 1)
        except (FileNotFoundError, NotFoundError):
            key = PrivateKey.generate()
            raw = pa.array([bytes(key)], pa.binary())
            self._data.write(RELAY_KEY_FILE, 1, pa.table({"key": raw}))
            return key
        return PrivateKey(table.column("key")[0].as_py())

    def sealed_file(self, dataset: str) -> Path:
        """The sealed file of ``dataset`` (what an attacker stealing the disk gets)."""
        return self._data.root / str(self._read_holdings()[dataset]["file"])
