"""Dataset contents at rest: Parquet, encrypted with AES-256-GCM.

DuckDB's own database encryption needs its httpfs extension to write (a download this
zone must not make), so each dataset version is one Parquet file sealed with AES-GCM
under a per-file key derived (HKDF) from the keyring's ``data-at-rest`` key and a random
salt. The file's name, dataset and version are bound in as associated data, so a file
swapped for another dataset's fails to open. Layout::

    b"CZD2" | key version (4 bytes) | salt (16) | nonce (12) | ciphertext+tag

The plaintext is a part count, the part lengths and that many Parquet files (large tables
are encoded in parallel, one part per thread).

Rotating ``data-at-rest`` re-seals each file under the new key version (:meth:`DataStore.reseal`:
temp file + rename, so a file is always whole under the version its own header names).
"""

from __future__ import annotations

import hashlib
import io
import os
import secrets
import struct
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from collabzone.errors import IntegrityError, NotFoundError
from collabzone.keys import KeyProvider, derive

MAGIC = b"CZD2"
DATA_KEY = "data-at-rest"
TEMP_PREFIX = ".ingest-"
TEMP_GRACE_SECONDS = 600
"""A temp file younger than this may belong to a write still running in another process."""


PART_ROWS = 250_000
"""Tables larger than this are encoded as several Parquet parts in parallel threads
(pyarrow's writer is single-threaded; its encoding releases the GIL)."""
WORKERS = max(1, min(4, os.cpu_count() or 1))
_writers = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="parquet")


def _encode(part: pa.Table) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(part, buffer, compression="snappy")
    return buffer.getvalue()


def _pack(table: pa.Table) -> bytes:
    """The plaintext of a data file: a part count, the part lengths, then the Parquet parts."""
    count = max(1, min(WORKERS, table.num_rows // PART_ROWS))
    step = -(-table.num_rows // count) if table.num_rows else 0
    slices = [table.slice(i * step, step) for i in range(count)] if count > 1 else [table]
    parts = list(_writers.map(_encode, slices))
    return struct.pack(f">I{len(parts)}Q", len(parts), *(len(p) for p in parts)) + b"".join(parts)


def _unpack(plain: bytes, dataset: str) -> pa.Table:
    try:
        (count,) = struct.unpack_from(">I", plain, 0)
        lengths = struct.unpack_from(f">{count}Q", plain, 4)
    except struct.error:
        raise IntegrityError(f"the data file of dataset {dataset!r} is malformed") from None
    offset, tables = 4 + 8 * count, []
    view = memoryview(plain)
    for length in lengths:
        tables.append(pq.read_table(pa.BufferReader(view[offset : offset + length])))
        offset += length
    return pa.concat_tables(tables) if len(tables) > 1 else tables[0]


class DataStore:
    """Encrypted Parquet files under ``<zone>/data``."""

    def __init__(self, root: Path, keys: KeyProvider) -> None:
        self.root = Path(root)
        self._keys = keys

    def file_name(self, dataset: str, version: int) -> str:
        return f"{dataset}.v{version}.parquet.enc"

    @staticmethod
    def _aad(dataset: str, version: int) -> bytes:
        return f"collabzone-data/{dataset}/{version}".encode()

    def write(self, dataset: str, version: int, table: pa.Table) -> tuple[str, str]:
        """Seal ``table`` as the file of (dataset, version); returns (file name, sha256).

        The file appears atomically (temp file + rename); the caller removes it again if
        its metadata transaction fails.
        """
        name = self.file_name(dataset, version)
        plain = _pack(table)
        self._seal(dataset, version, name, plain)
        return name, hashlib.sha256(plain).hexdigest()

    def _seal(self, dataset: str, version: int, name: str, plain: bytes) -> int:
        """Encrypt ``plain`` under the current data key into file ``name``; its key version."""
        key_version, master = self._keys.get(DATA_KEY)
        salt, nonce = secrets.token_bytes(16), secrets.token_bytes(12)
        key = derive(master, f"file/{salt.hex()}", context=DATA_KEY)
        sealed = AESGCM(key).encrypt(nonce, plain, self._aad(dataset, version))
        header = MAGIC + struct.pack(">I", key_version) + salt + nonce
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=TEMP_PREFIX)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(header)
                handle.write(sealed)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.root / name)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return key_version

    def _open(self, dataset: str, version: int, file_name: str | None) -> bytes:
        """The decrypted plaintext of one dataset version's file."""
        if file_name and file_name.startswith("node:"):
            raise NotFoundError(
                f"dataset {dataset!r} is held at {file_name[5:]!r}'s premises: only its node can read it"
            )
        path = self.root / (file_name or self.file_name(dataset, version))
        try:
            blob = path.read_bytes()
        except FileNotFoundError:
            raise NotFoundError(f"the data file of dataset {dataset!r} is missing") from None
        if blob[:4] != MAGIC or len(blob) < 4 + 4 + 16 + 12 + 16:
            raise IntegrityError(
                f"the data file of dataset {dataset!r} is not a collabzone data file"
            )
        (key_version,) = struct.unpack(">I", blob[4:8])
        salt, nonce, sealed = blob[8:24], blob[24:36], blob[36:]
        _, master = self._keys.get(DATA_KEY, key_version)
        key = derive(master, f"file/{salt.hex()}", context=DATA_KEY)
        try:
            return AESGCM(key).decrypt(nonce, sealed, self._aad(dataset, version))
        except InvalidTag:
            raise IntegrityError(
                f"the data file of dataset {dataset!r} failed authentication (tampered or swapped)"
            ) from None

    def seal_blob(self, dataset: str, version: int, file_name: str, plain: bytes) -> None:
        """Seal a small secret of a dataset (a remote table's location) like a data file:
        same key, same header, so key rotation re-seals it with the rest."""
        self._seal(dataset, version, file_name, plain)

    def open_blob(self, dataset: str, version: int, file_name: str) -> bytes:
        """The plaintext :meth:`seal_blob` sealed."""
        return self._open(dataset, version, file_name)

    def read(self, dataset: str, version: int, file_name: str | None = None) -> pa.Table:
        """Open and decrypt one dataset version."""
        return _unpack(self._open(dataset, version, file_name), dataset)

    def key_version_of(self, file_name: str) -> int | None:
        """The ``data-at-rest`` version a file is sealed under (None: no such file)."""
        try:
            with (self.root / file_name).open("rb") as handle:
                head = handle.read(8)
        except FileNotFoundError:
            return None
        if head[:4] != MAGIC or len(head) < 8:
            raise IntegrityError(f"data file {file_name} is not a collabzone data file")
        return int(struct.unpack(">I", head[4:8])[0])

    def reseal(
        self,
        dataset: str,
        version: int,
        file_name: str,
        transform: Callable[[pa.Table], pa.Table] | None = None,
    ) -> tuple[int, str]:
        """Decrypt one file and seal it again under the current data key, in place.

        With ``transform`` the table is rewritten on the way (OPRF re-key); without it the
        plaintext is kept byte for byte. Temp file + rename: at every instant the file is
        whole, under the old or the new key version (its header says which). Returns (key
        version, sha256 of the new plaintext).
        """
        plain = self._open(dataset, version, file_name)
        if transform is not None:
            plain = _pack(transform(_unpack(plain, dataset)))
        key_version = self._seal(dataset, version, file_name, plain)
        return key_version, hashlib.sha256(plain).hexdigest()

    def remove(self, file_name: str) -> None:
        (self.root / file_name).unlink(missing_ok=True)

    def files(self) -> set[str]:
        """Files the zone's orphan sweep may consider: sealed dataset files and the temp files
        of cut-short writes, both only once older than :data:`TEMP_GRACE_SECONDS`. A younger
        file may belong to an ingest still running in another process (renamed into place
        but not yet committed), so it is never swept."""
        if not self.root.exists():
            return set()
        horizon = time.time() - TEMP_GRACE_SECONDS
        old = set()
        for path in [*self.root.glob("*.parquet.enc"), *self.root.glob(f"{TEMP_PREFIX}*")]:
            try:
                if path.stat().st_mtime < horizon:
                    old.add(path.name)
            except FileNotFoundError:  # its writer just renamed or removed it
                continue
        return old
