"""The append-only, hash-chained audit log.

Each event carries the SHA-256 of the previous event (``prev_hash``) and its own ``hash``:
the SHA-256 of its canonical JSON (sorted keys, no spaces, UTF-8) including ``prev_hash``.
Editing an event breaks its hash; deleting or reordering breaks the next ``prev_hash``.
Truncating the tail leaves a valid-looking chain, so the chain head (last seq and hash) is
also kept in a separate row authenticated with an HMAC under a keyring key the database
does not hold: a truncated or rewritten log no longer matches its signed head.

:func:`verify_chain` is pure; :func:`append` writes inside the caller's transaction so an
event commits together with the state change it records.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Connection, select, update

from collabzone.store import tables as t

GENESIS = "0" * 64


def canonical_json(value: Any) -> str:
    """The one JSON spelling of ``value`` that hashes are computed over."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


@dataclass(frozen=True)
class AuditEvent:
    """One entry of the log."""

    seq: int
    id: str
    at: str
    actor: str
    action: str
    subject: str
    parties: tuple[str, ...]
    details: Mapping[str, Any]
    prev_hash: str
    hash: str

    def body(self) -> dict[str, Any]:
        """Every field but ``hash``: what the hash covers."""
        return {
            "seq": self.seq,
            "id": self.id,
            "at": self.at,
            "actor": self.actor,
            "action": self.action,
            "subject": self.subject,
            "parties": list(self.parties),
            "details": dict(self.details),
            "prev_hash": self.prev_hash,
        }

    def as_dict(self) -> dict[str, Any]:
        return {**self.body(), "hash": self.hash}


def event_hash(body: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()


def head_mac(key: bytes, seq: int, last_hash: str) -> str:
    return hmac.new(key, f"{seq}:{last_hash}".encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Verification:
    """Result of checking the log: ``ok``, or the first broken link and why.

    ``problems`` lists every further finding (ledger rows without events and the like);
    ``anchor`` names the kept checkpoint the log was shown to continue, if one was given.
    """

    ok: bool
    events: int
    broken_at: int | None = None
    problem: str | None = None
    problems: tuple[str, ...] = ()
    anchor: str | None = None

    def __str__(self) -> str:
        if self.ok:
            text = f"audit log intact: {self.events} events, chain and signed head verified"
            if self.anchor:
                text += f"; continues your {self.anchor}"
            return text
        where = f" at event {self.broken_at}" if self.broken_at is not None else ""
        lines = [f"audit log BROKEN{where}: {self.problem}"]
        lines += [f"  - {p}" for p in self.problems]
        return "\n".join(lines)

    def with_problem(
        self, problem: str, *, at: int | None = None, problems: Sequence[str] = ()
    ) -> Verification:
        """This result, failed with ``problem`` unless it already failed on the chain."""
        if not self.ok:
            return replace(self, problems=(*self.problems, problem, *problems))
        return replace(self, ok=False, broken_at=at, problem=problem, problems=tuple(problems))


def verify_chain(
    events: Iterable[AuditEvent],
    head: tuple[int, str, str] | None,
    mac_key: bytes | Sequence[bytes],
) -> Verification:
    """Recompute the chain; report the first event whose link does not hold.

    ``mac_key`` may be several keys (every ``audit-head`` version still held, so the log
    verifies across a key rotation); the head must carry the HMAC of one of them.
    """
    mac_keys = [mac_key] if isinstance(mac_key, bytes) else list(mac_key)
    prev = GENESIS
    expected_seq = 1
    count = 0
    for event in events:
        count += 1
        if event.seq != expected_seq:
            return Verification(
                False,
                count,
                event.seq,
                f"expected event {expected_seq} here (deleted or reordered)",
            )
        if event.prev_hash != prev:
            return Verification(
                False, count, event.seq, "previous-hash link does not match (deleted or reordered)"
            )
        if event_hash(event.body()) != event.hash:
            return Verification(False, count, event.seq, "content does not match its hash (edited)")
        prev = event.hash
        expected_seq += 1
    if head is None:
        if count:
            return Verification(False, count, count, "the signed chain head is missing")
        return Verification(True, 0)
    head_seq, head_hash, mac = head
    if not any(hmac.compare_digest(mac, head_mac(k, head_seq, head_hash)) for k in mac_keys):
        return Verification(
            False, count, head_seq, "the chain head's signature is invalid (head rewritten)"
        )
    if head_seq != count or head_hash != prev:
        return Verification(
            False,
            count,
            min(head_seq, count) + 1,
            f"the log ends at event {count} but its signed head says {head_seq} (truncated or extended)",
        )
    return Verification(True, count)


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")


def append(
    conn: Connection,
    mac_key: bytes,
    *,
    actor: str,
    action: str,
    subject: str,
    parties: Iterable[str] = (),
    details: Mapping[str, Any] | None = None,
    at: str | None = None,
) -> AuditEvent:
    """Append one event inside the caller's transaction (locks the chain head)."""
    head = conn.execute(
        select(t.audit_head.c.seq, t.audit_head.c.hash)
        .where(t.audit_head.c.id == 1)
        .with_for_update()
    ).first()
    seq, prev = (head.seq, head.hash) if head else (0, GENESIS)
    body = {
        "seq": seq + 1,
        "id": f"ev-{uuid.uuid4().hex[:16]}",
        "at": at or now_iso(),
        "actor": actor,
        "action": action,
        "subject": subject,
        "parties": sorted(set(parties)),
        "details": json.loads(canonical_json(dict(details or {}))),
        "prev_hash": prev,
    }
    digest = event_hash(body)
    conn.execute(t.audit_events.insert().values(**body, hash=digest))
    mac = head_mac(mac_key, seq + 1, digest)
    if head:
        conn.execute(
            update(t.audit_head)
            .where(t.audit_head.c.id == 1)
            .values(seq=seq + 1, hash=digest, mac=mac)
        )
    else:
        conn.execute(t.audit_head.insert().values(id=1, seq=seq + 1, hash=digest, mac=mac))
    return AuditEvent(
        seq=body["seq"],
        id=body["id"],
        at=body["at"],
        actor=actor,
        action=action,
        subject=subject,
        parties=tuple(body["parties"]),
        details=body["details"],
        prev_hash=prev,
        hash=digest,
    )


def lock_head(conn: Connection) -> None:
    """Take the chain-head lock early (PostgreSQL) so check-then-write sequences serialise."""
    conn.execute(select(t.audit_head.c.seq).where(t.audit_head.c.id == 1).with_for_update())


def read_events(conn: Connection, subject: str | None = None) -> list[AuditEvent]:
    """The log in chain order; with ``subject``, only the events about it (indexed)."""
    query = select(t.audit_events).order_by(t.audit_events.c.seq)
    if subject is not None:
        query = query.where(t.audit_events.c.subject == subject)
    rows = conn.execute(query).mappings()
    return [
        AuditEvent(
            seq=r["seq"],
            id=r["id"],
            at=r["at"],
            actor=r["actor"],
            action=r["action"],
            subject=r["subject"],
            parties=tuple(r["parties"]),
            details=r["details"],
            prev_hash=r["prev_hash"],
            hash=r["hash"],
        )
        for r in rows
    ]


def read_head(conn: Connection) -> tuple[int, str, str] | None:
    row = conn.execute(select(t.audit_head).where(t.audit_head.c.id == 1)).first()
    return (row.seq, row.hash, row.mac) if row else None
