"""Signed checkpoints of the audit chain's head, kept outside the zone.

The chain head's HMAC (audit.py) catches a log cut short *after* its head was last
written, but an insider who saved an older head row can delete the events after it and
put the old row back: the chain and its head agree again. Nothing inside the zone's
database can tell; only a copy of a later head kept elsewhere can.

A :class:`Checkpoint` is that copy, modelled on a transparency log's signed tree head
(RFC 6962 section 4.3, Sigstore Rekor's checkpoints): the zone's id, the number of events
and the hash of the last one, when it was issued, signed with Ed25519 by a key derived
from the zone's ``audit-head`` key. Owners and auditors fetch one now and then
(``collabzone audit checkpoint``) and keep it; ``audit verify --against FILE`` then proves
the log still holds event ``size`` with hash ``head``. Because every event hashes its
predecessor, that one comparison covers every event up to ``size``: a log cut back below
it is a *rollback*, a different hash there is a *fork* (history rewritten).

The signature lets anyone check a checkpoint came from the zone (an owner cannot forge
one to accuse it), and lets the zone refuse a checkpoint signed by another key.
This module is pure: no database, no key provider.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from collabzone.errors import InvalidInputError

FORMAT = "collabzone-checkpoint/1"
FIELDS = ("format", "zone", "size", "head", "at", "key_version", "public_key", "signature")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise InvalidInputError(f"checkpoint {what} is not base64") from None


def public_key_of(seed: bytes) -> str:
    """The base64 raw Ed25519 public key of the signing ``seed`` (32 bytes)."""
    public = Ed25519PrivateKey.from_private_bytes(seed).public_key()
    return _b64(public.public_bytes(Encoding.Raw, PublicFormat.Raw))


def key_id(public_key: str) -> str:
    """A short fingerprint of a public key (first 8 bytes of its SHA-256, hex)."""
    return hashlib.sha256(public_key.encode("ascii")).hexdigest()[:16]


@dataclass(frozen=True)
class Checkpoint:
    """A signed statement: "zone ``zone``'s log had ``size`` events, the last hashing to
    ``head``, at ``at``", signed by version ``key_version`` of its checkpoint key."""

    zone: str
    size: int
    head: str
    at: str
    key_version: int
    public_key: str
    signature: str
    format: str = FORMAT

    def note(self) -> bytes:
        """The exact text the signature covers (one field per line, like a signed note)."""
        return note_text(self.zone, self.size, self.head, self.at, self.key_version)

    def signature_ok(self) -> bool:
        """Whether ``signature`` is this checkpoint's text signed by ``public_key``."""
        try:
            key = Ed25519PublicKey.from_public_bytes(_unb64(self.public_key, "public key"))
            key.verify(_unb64(self.signature, "signature"), self.note())
        except (InvalidSignature, InvalidInputError, ValueError):
            return False
        return True

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), indent=2, sort_keys=True) + "\n"

    def describe(self) -> str:
        return (
            f"checkpoint of {self.zone} at {self.size} events (head {self.head[:12]}..., "
            f"issued {self.at}, key {key_id(self.public_key)})"
        )


def note_text(zone: str, size: int, head: str, at: str, key_version: int) -> bytes:
    return (
        f"{FORMAT}\nzone {zone}\nsize {size}\nhead {head}\nat {at}\nkey {key_version}\n"
    ).encode()


def sign(seed: bytes, *, zone: str, size: int, head: str, at: str, key_version: int) -> Checkpoint:
    """A checkpoint of (``size``, ``head``) signed with the Ed25519 key of ``seed``."""
    private = Ed25519PrivateKey.from_private_bytes(seed)
    signature = private.sign(note_text(zone, size, head, at, key_version))
    return Checkpoint(
        zone=zone,
        size=size,
        head=head,
        at=at,
        key_version=key_version,
        public_key=public_key_of(seed),
        signature=_b64(signature),
    )


def from_dict(doc: Mapping[str, Any]) -> Checkpoint:
    """A checkpoint from its JSON form; InvalidInputError naming what is wrong.

    The signature is checked here: a checkpoint that does not verify is never used.
    """
    if not isinstance(doc, Mapping):
        raise InvalidInputError("a checkpoint is a JSON object")
    unknown = sorted(set(doc) - set(FIELDS))
    missing = [f for f in FIELDS if f not in doc]
    if unknown or missing:
        raise InvalidInputError(
            "not a collabzone checkpoint: "
            + "; ".join(
                part
                for part in (
                    f"missing {', '.join(missing)}" if missing else "",
                    f"unknown {', '.join(unknown)}" if unknown else "",
                )
                if part
            )
        )
    if doc["format"] != FORMAT:
        raise InvalidInputError(f"checkpoint format must be {FORMAT!r}")
    size, version = doc["size"], doc["key_version"]
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise InvalidInputError("checkpoint size must be a whole number of events")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise InvalidInputError("checkpoint key_version must be a positive whole number")
    texts = ("zone", "head", "at", "public_key", "signature")
    if not all(isinstance(doc[f], str) for f in texts):
        raise InvalidInputError(f"checkpoint fields {', '.join(texts)} must be text")
    checkpoint = Checkpoint(
        zone=doc["zone"],
        size=size,
        head=doc["head"],
        at=doc["at"],
        key_version=version,
        public_key=doc["public_key"],
        signature=doc["signature"],
    )
    if not checkpoint.signature_ok():
        raise InvalidInputError(
            "the checkpoint's signature does not verify: it was edited or not issued by a zone"
        )
    return checkpoint


def load(path: str | Path) -> Checkpoint:
    """Read and check a checkpoint file (as ``collabzone audit checkpoint`` wrote it)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInputError(f"cannot read checkpoint {path}: {exc.strerror}") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError:
        raise InvalidInputError(f"checkpoint {path} is not JSON") from None
    return from_dict(doc)


def consistency_problem(
    checkpoint: Checkpoint, zone: str, size: int, hash_at: str | None
) -> str | None:
    """Why a log of ``size`` events whose event ``checkpoint.size`` hashes to ``hash_at``
    is not a continuation of what ``checkpoint`` witnessed (None: it is).

    The log's own chain must already have verified: this only compares the anchor.
    """
    if checkpoint.zone != zone:
        return f"the checkpoint is for zone {checkpoint.zone}, not {zone}"
    if size < checkpoint.size:
        return (
            f"ROLLED BACK: the log has {size} events but the checkpoint issued "
            f"{checkpoint.at} witnessed {checkpoint.size} (events {size + 1} to "
            f"{checkpoint.size} are gone)"
        )
    if checkpoint.size and hash_at != checkpoint.head:
        return (
            f"FORKED: event {checkpoint.size} does not hash to the head the checkpoint issued "
            f"{checkpoint.at} witnessed (history at or before it was rewritten)"
        )
    return None
