"""Audit exports that verify offline, whole or filtered to one party.

An export is JSON Lines: a header, one line per event of the log, and the zone's signed
checkpoint of the log as it was exported::

    {"collabzone_audit_export": 1, "zone": "zone-...", "party": "bank", "size": 42, ...}
    {"seq": 1, "id": "ev-...", "action": "zone.created", ..., "prev_hash": "000...", "hash": ...}
    {"seq": 2, "redacted": true, "prev_hash": "...", "hash": "..."}
    ...
    {"checkpoint": {"format": "collabzone-checkpoint/1", "size": 42, "head": ..., ...}}

A party that may not read every event gets the others *redacted*: only their sequence
number and hashes, so the chain still links from the first event to the checkpoint
without showing what the hidden events say (each hashes a random event id, so the hash
gives nothing away). Verifying an export (:func:`verify_export`) recomputes the hash of
every event shown, checks that the links run unbroken from event 1 to the checkpoint's
head and that the checkpoint is signed, and, given a checkpoint the party kept earlier,
that the export continues it (no rollback, no fork). A file cut short lacks its closing
checkpoint and says so, distinctly from an intact one.

What redaction cannot show: that a redacted event does not concern you. The auditor's
full export can.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from collabzone.audit import GENESIS, AuditEvent, canonical_json, event_hash
from collabzone.audit_checkpoint import Checkpoint, consistency_problem, from_dict, key_id
from collabzone.errors import InvalidInputError

EXPORT_FORMAT = 1
HEADER = "collabzone_audit_export"


def export_records(
    events: Iterable[AuditEvent],
    visible: Callable[[AuditEvent], bool],
    checkpoint: Checkpoint,
    *,
    party: str,
) -> Iterator[dict[str, Any]]:
    """The lines of an export: header, every event (redacted unless ``visible``), checkpoint."""
    listed = list(events)
    shown = [e for e in listed if visible(e)]
    yield {
        HEADER: EXPORT_FORMAT,
        "zone": checkpoint.zone,
        "party": party,
        "size": checkpoint.size,
        "shown": len(shown),
        "filtered": len(shown) != len(listed),
    }
    for event in listed:
        if visible(event):
            yield event.as_dict()
        else:
            yield {
                "seq": event.seq,
                "redacted": True,
                "prev_hash": event.prev_hash,
                "hash": event.hash,
            }
    yield {"checkpoint": checkpoint.as_dict()}


def write_export(path: str | Path, records: Iterable[dict[str, Any]]) -> int:
    """Write ``records`` as JSON Lines (temp file + rename); the number of events shown."""
    target = Path(path)
    tmp = target.with_name(target.name + ".tmp")
    shown = 0
    with tmp.open("w", encoding="utf-8") as handle:
        for record in records:
            if HEADER in record:
                shown = int(record["shown"])
            handle.write(canonical_json(record) + "\n")
    tmp.replace(target)
    return shown


@dataclass(frozen=True)
class ExportCheck:
    """What verifying an export found: ``ok``, ``truncated``, and a sentence saying so."""

    ok: bool
    message: str
    events: int = 0
    shown: int = 0
    truncated: bool = False

    def __str__(self) -> str:
        return self.message


def _broken(message: str, events: int = 0, shown: int = 0) -> ExportCheck:
    return ExportCheck(False, f"export BROKEN: {message}", events, shown)


def _truncated(message: str, events: int, shown: int) -> ExportCheck:
    return ExportCheck(False, f"export TRUNCATED: {message}", events, shown, truncated=True)


def _parse(text: str) -> tuple[list[dict[str, Any]], ExportCheck | None]:
    records: list[dict[str, Any]] = []
    lines = text.split("\n")
    complete = text.endswith("\n")
    if complete:
        lines = lines[:-1]
    for number, line in enumerate(lines, 1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            if number == len(lines) and not complete:
                return records, _truncated(
                    f"the file ends mid-line (line {number}) without its closing checkpoint",
                    len(records) - 1,
                    0,
                )
            return records, _broken(f"line {number} is not JSON (edited)")
        if not isinstance(record, dict):
            return records, _broken(f"line {number} is not a JSON object (edited)")
        records.append(record)
    return records, None


def verify_export(path: str | Path, against: Checkpoint | None = None) -> ExportCheck:
    """Verify an export file offline; ``against`` is a checkpoint the reader kept earlier."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInputError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        return _broken("the file is not UTF-8 text")
    return verify_export_text(text, against)


def verify_export_text(text: str, against: Checkpoint | None = None) -> ExportCheck:
    """Verify an export given as its JSON Lines text (see :func:`verify_export`)."""
    if not text:
        return _broken("the file is empty (not an audit export)")
    records, problem = _parse(text)
    if not records or HEADER not in records[0]:
        return problem or _broken(
            "the first line is not an export header (exports written before checkpoints "
            "cannot be verified: export again)"
        )
    header = records[0]
    if header[HEADER] != EXPORT_FORMAT:
        return _broken(f"export format {header[HEADER]!r} is not {EXPORT_FORMAT}")
    body = records[1:]
    closing = body[-1] if body and "checkpoint" in body[-1] else None
    events = body[:-1] if closing is not None else body
    prev, shown = GENESIS, 0
    for expected, record in enumerate(events, 1):
        seq = record.get("seq")
        if seq != expected:
            return _broken(
                f"expected event {expected}, found {seq!r} (deleted or reordered)", expected, shown
            )
        if record.get("prev_hash") != prev:
            return _broken(f"event {seq}'s previous-hash link does not match", expected, shown)
        if record.get("redacted") is True and set(record) == {
            "seq",
            "redacted",
            "prev_hash",
            "hash",
        }:
            pass
        elif event_hash({k: v for k, v in record.items() if k != "hash"}) != record.get("hash"):
            return _broken(f"event {seq}'s content does not match its hash (edited)", seq, shown)
        else:
            shown += 1
        prev = str(record.get("hash"))
    count = len(events)
    promised = header.get("size")
    if problem is not None or closing is None:
        return problem or _truncated(
            f"the file ends after event {count} without its closing checkpoint "
            f"(the header promised {promised} events)",
            count,
            shown,
        )
    try:
        checkpoint = from_dict(closing["checkpoint"])
    except InvalidInputError as exc:
        return _broken(f"its closing checkpoint is invalid: {exc.message}", count, shown)
    if checkpoint.zone != header.get("zone") or checkpoint.size != promised:
        return _broken("its header and closing checkpoint disagree", count, shown)
    if checkpoint.size != count or (count and checkpoint.head != prev):
        return _broken(
            f"the chain ends at event {count} but the checkpoint signs {checkpoint.size} "
            "events with another head (events removed or added)",
            count,
            shown,
        )
    note = ""
    if against is not None:
        if against.key_version == checkpoint.key_version and (
            against.public_key != checkpoint.public_key
        ):
            return _broken(
                f"your checkpoint (key {key_id(against.public_key)}) and the export's "
                f"(key {key_id(checkpoint.public_key)}) are signed by different keys",
                count,
                shown,
            )
        hash_at = str(events[against.size - 1]["hash"]) if 0 < against.size <= count else None
        mismatch = consistency_problem(against, checkpoint.zone, count, hash_at)
        if mismatch is not None:
            return _broken(mismatch, count, shown)
        note = f"; continues your checkpoint at {against.size} events"
    return ExportCheck(
        True,
        f"export intact: {count} events ({shown} shown, {count - shown} redacted), chain "
        f"verified up to the zone's signed {checkpoint.describe()}{note}",
        count,
        shown,
    )
