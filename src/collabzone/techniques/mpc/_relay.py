"""Share packages relayed by the zone, sealed end to end to each compute server's key.

The compute servers need not be reachable by providers: each publishes an X25519 public
key (PyNaCl; the private half is made and sealed in its own store,
:meth:`~collabzone.techniques.mpc._store.ShareStore.relay_key`), the provider's client
seals package ``i`` to server ``i``'s key (:func:`seal`, a libsodium sealed box:
ephemeral X25519, XSalsa20-Poly1305, anonymous sender) and posts it to the zone, which
files it in server ``i``'s mailbox with who posted it (:class:`Mailbox`). Server ``i``
fetches its mailbox, opens each package with its key (:func:`unseal`) and seals it into
its store. The zone (the relay) only ever holds sealed bytes: it cannot read a share, and
a package it moved to another server's mailbox does not open there. Who posted a package
is the zone's word (checked against the authenticated party), and the server refuses a
package whose provider or dataset differ from it.

The directory operations here do no access control: :mod:`._relay_party` checks who is
acting before calling them.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from collabzone.errors import ConflictError, InvalidInputError, NotFoundError

KEY_FILE = "key.pub"
MAX_BYTES = 1024 * 1024 * 1024
"""Largest sealed package accepted (1M rows x 3 columns is about 70 MB of JSON)."""
KEY_BYTES = 32


def _plain(name: str, what: str) -> str:
    if not name or "/" in name or "\\" in name or name.startswith(".") or len(name) > 128:
        raise InvalidInputError(f"{what} {name!r} is not a plain name")
    return name


def fingerprint(public_key: bytes) -> str:
    """A relay key's fingerprint (first 16 hex digits of its SHA-256), to compare out of
    band: the zone hands out the keys, and a zone that swapped one could read what is
    sealed to it."""
    import hashlib

    return hashlib.sha256(public_key).hexdigest()[:16]


def seal(package: Mapping[str, Any], public_key: bytes) -> bytes:
    """``package`` (JSON) sealed to one server's X25519 public key; only it can open it."""
    from nacl.public import PublicKey, SealedBox

    if len(public_key) != KEY_BYTES:
        raise InvalidInputError("a compute server's relay key is 32 bytes (X25519)")
    data = json.dumps(package, separators=(",", ":")).encode("utf-8")
    return bytes(SealedBox(PublicKey(public_key)).encrypt(data))


def open_sealed(blob: bytes, private_key: Any, what: str = "package") -> dict[str, Any]:
    """Open a JSON document sealed with :func:`seal` (``nacl.public.PrivateKey``).

    Raises :class:`InvalidInputError` if it was not sealed to this key or was altered.
    """
    from nacl.exceptions import CryptoError
    from nacl.public import SealedBox

    try:
        data = SealedBox(private_key).decrypt(blob)
    except CryptoError:
        raise InvalidInputError(
            f"this {what} was not sealed to this server's key (or was altered on the way)"
            if what == "package"
            else f"this {what} was not sealed to your key (or was altered on the way)"
        ) from None
    doc = json.loads(data)
    if not isinstance(doc, dict):
        raise InvalidInputError(f"the sealed {what} is not a JSON object")
    return doc


def unseal(blob: bytes, private_key: Any) -> dict[str, Any]:
    """Open a share package sealed to this server (see :func:`open_sealed`)."""
    package = open_sealed(blob, private_key)
    if "holding" not in package or "shares" not in package:
        raise InvalidInputError("the sealed package is not a share package")
    return package


class Mailbox:
    """One compute server's folder at the zone: its public key and the sealed packages."""

    def __init__(self, root: Path, server: str) -> None:
        self.folder = Path(root) / _plain(server, "server")
        self.server = server

    def publish_key(self, public_key: bytes) -> None:
        if len(public_key) != KEY_BYTES:
            raise InvalidInputError("a relay key is the 32-byte X25519 public key")
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / KEY_FILE).write_bytes(public_key)

    def key(self) -> bytes:
        path = self.folder / KEY_FILE
        if not path.is_file():
            raise ConflictError(
                f"{self.server!r} has not published its relay key yet (`collabzone mpc "
                "relay-key` on a compute server, `collabzone mpc recipient-key` for a "
                "report's recipient)"
            )
        return path.read_bytes()

    def post(self, provider: str, dataset: str, sealed: bytes) -> str:
        """File a sealed package posted by ``provider`` for ``dataset``; returns its id."""
        if not sealed:
            raise InvalidInputError("the sealed package is empty")
        if len(sealed) > MAX_BYTES:
            raise InvalidInputError(f"a sealed package is at most {MAX_BYTES // 2**20} MiB")
        self.key()  # the server must have published: the provider sealed to that key
        package_id = uuid.uuid4().hex
        folder = self.folder / "packages"
        folder.mkdir(parents=True, exist_ok=True)
        part = folder / f"{package_id}.part"
        part.write_bytes(sealed)
        meta = {"id": package_id, "provider": provider, "dataset": dataset,
                "posted": int(time.time()), "bytes": len(sealed)}  # fmt: skip
        (folder / f"{package_id}.json").write_text(json.dumps(meta), "utf-8")
        os.replace(part, folder / f"{package_id}.sealed")  # visible only once complete
        return package_id

    def waiting(self) -> list[dict[str, Any]]:
        """The packages waiting, oldest first (who posted them, for which dataset)."""
        folder = self.folder / "packages"
        if not folder.is_dir():
            return []
        found = [
            json.loads((folder / f"{p.stem}.json").read_text("utf-8"))
            for p in folder.glob("*.sealed")
        ]
        return sorted(found, key=lambda m: (m["posted"], m["id"]))

    def _path(self, package_id: str) -> Path:
        if len(package_id) != 32 or not all(c in "0123456789abcdef" for c in package_id):
            raise InvalidInputError(f"{package_id!r} is not a package id")
        path = self.folder / "packages" / f"{package_id}.sealed"
        if not path.is_file():
            raise NotFoundError(f"no package {package_id} for {self.server!r}")
        return path

    def read(self, package_id: str) -> bytes:
        return self._path(package_id).read_bytes()

    def remove(self, package_id: str) -> None:
        """Drop a package once the server stored it (the relay keeps nothing after)."""
        path = self._path(package_id)
        path.unlink()
        path.with_suffix(".json").unlink(missing_ok=True)

    # -- report jobs (remote compute servers, :mod:`._remote`) ------------------------

    def _job(self, job_id: str, suffix: str) -> Path:
        if len(job_id) != 32 or not all(c in "0123456789abcdef" for c in job_id):
            raise InvalidInputError(f"{job_id!r} is not a job id")
        return self.folder / "jobs" / f"{job_id}{suffix}"

    def post_job(self, job: Mapping[str, Any]) -> None:
        """Hand the server a report to run (the zone, as relay)."""
        path = self._job(str(job["id"]), ".json")
        path.parent.mkdir(parents=True, exist_ok=True)
        part = path.with_suffix(".part")
        part.write_text(json.dumps(job), "utf-8")
        os.replace(part, path)

    def jobs(self) -> list[dict[str, Any]]:
        """The reports waiting for this server (not yet answered), oldest first."""
        folder = self.folder / "jobs"
        if not folder.is_dir():
            return []
        waiting = [
            p for p in folder.glob("*.json")
            if not p.with_suffix(".share").exists() and not p.with_suffix(".error").exists()
        ]  # fmt: skip
        return [json.loads(p.read_text("utf-8")) for p in sorted(waiting, key=os.path.getmtime)]

    def answer(self, job_id: str, *, share: bytes | None = None, error: str = "") -> None:
        """The server's answer to a job: its output share sealed to the recipient, or why
        it refused or failed."""
        if not self._job(job_id, ".json").is_file():
            raise NotFoundError(f"no job {job_id} for {self.server!r}")
        suffix, body = (".share", share) if share is not None else (".error", error.encode())
        if share is not None and (not share or len(share) > MAX_BYTES):
            raise InvalidInputError("an output share is a non-empty sealed box")
        path = self._job(job_id, suffix)
        part = path.with_suffix(".part")
        part.write_bytes(body[:MAX_BYTES])
        os.replace(part, path)

    def result(self, job_id: str) -> tuple[bytes | None, str | None]:
        """``(sealed share, None)``, ``(None, error)`` or ``(None, None)`` while waiting."""
        share, error = self._job(job_id, ".share"), self._job(job_id, ".error")
        if share.is_file():
            return share.read_bytes(), None
        if error.is_file():
            return None, error.read_text("utf-8", errors="replace")[:2000]
        return None, None

    def clear_job(self, job_id: str) -> None:
        for suffix in (".json", ".share", ".error"):
            self._job(job_id, suffix).unlink(missing_ok=True)


__all__ = ("MAX_BYTES", "Mailbox", "fingerprint", "open_sealed", "seal", "unseal")
