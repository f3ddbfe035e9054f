"""Query monitor for submissions: differencing, repeats and a cap per period (pure).

Each submission is remembered as keyed digests only (BLAKE2b under a node key the ML party
does not have; 8 bytes each): per record, the digest of its token and the digest of
(token, group, prediction). For two cells (the whole submission, a group, a confidence
band) the number of records that differ is ``(|R1 ^ R2| + |T1 ^ T2|) / 2``: a record
present on one side only counts once, a record whose prediction or group changed counts
once too. Any pair of released cells, in the new submission or against an earlier one,
that differs in at least one but fewer than ``min_difference`` records is refused
(``DIFFERENCING``): their metric difference would describe those few records.

Pairwise checks do not stop every linear combination of many large submissions; the
agreement's DP noise is the defence against that (see docs/validator.md).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from collabzone.budget import Period, period_key

U64 = NDArray[np.uint64]
DIGEST_BYTES = 8


def _digest(key: bytes, text: str) -> int:
    raw = hashlib.blake2b(text.encode("utf-8"), key=key, digest_size=DIGEST_BYTES).digest()
    return int.from_bytes(raw, "little")


def digests(
    key: bytes, tokens: Sequence[str], predictions: Sequence[float], groups: Sequence[str] | None
) -> tuple[U64, U64]:
    """Per record, the keyed digest of its token and of (token, group, prediction)."""
    token_d = np.fromiter((_digest(key, t) for t in tokens), dtype=np.uint64, count=len(tokens))
    group_of = groups if groups is not None else [""] * len(tokens)
    record_d = np.fromiter(
        (
            _digest(key, f"{t}\x1f{g}\x1f{p!r}")
            for t, g, p in zip(tokens, group_of, predictions, strict=True)
        ),
        dtype=np.uint64,
        count=len(tokens),
    )
    return token_d, record_d


def key_id(key: bytes) -> str:
    """A short public identifier of the monitor key (history under another key is useless)."""
    return hashlib.blake2b(
        b"collabzone/validator/monitor-key-id", key=key, digest_size=8
    ).hexdigest()


def encode(array: NDArray[Any]) -> str:
    return base64.b64encode(np.ascontiguousarray(array).tobytes()).decode("ascii")


def decode(text: str, dtype: type[np.generic]) -> NDArray[Any]:
    return np.frombuffer(base64.b64decode(text), dtype=dtype)


@dataclass(frozen=True)
class Cell:
    """The digests of one released cell, sorted."""

    tokens: U64
    records: U64

    @classmethod
    def of(cls, tokens: U64, records: U64) -> Cell:
        return cls(np.sort(tokens), np.sort(records))


def changed(a: Cell, b: Cell) -> int:
    """How many records differ between two cells (added, removed or re-predicted)."""
    common_t = np.intersect1d(a.tokens, b.tokens, assume_unique=True).size
    common_r = np.intersect1d(a.records, b.records, assume_unique=True).size
    delta_t = a.tokens.size + b.tokens.size - 2 * common_t
    delta_r = a.records.size + b.records.size - 2 * common_r
    return (delta_t + delta_r) // 2


def cells_of(tokens: U64, records: U64, members: Sequence[NDArray[np.bool_]]) -> list[Cell]:
    """Cells from per-record digests and boolean membership masks."""
    return [Cell.of(tokens[mask], records[mask]) for mask in members]


def remember(tokens: U64, records: U64, members: Sequence[NDArray[np.bool_]]) -> dict[str, Any]:
    """The monitor entry stored with a release (digests and cell masks, nothing raw)."""
    return {
        "tokens": encode(tokens.astype("<u8")),
        "records": encode(records.astype("<u8")),
        "cells": [encode(np.packbits(mask)) for mask in members],
        "size": int(tokens.size),
    }


def recall(entry: Mapping[str, Any]) -> list[Cell]:
    """The cells of an earlier submission from its monitor entry."""
    tokens = decode(entry["tokens"], np.uint64)
    records = decode(entry["records"], np.uint64)
    size = int(entry["size"])
    masks = [np.unpackbits(decode(c, np.uint8))[:size].astype(bool) for c in entry["cells"]]
    return cells_of(tokens, records, masks)


def differencing_pairs(
    new: Sequence[Cell], earlier: Iterable[Sequence[Cell]], min_difference: int
) -> int:
    """How many cell pairs differ in at least one but fewer than ``min_difference`` records."""
    found = 0
    for index, cell in enumerate(new):
        for other in new[:index]:
            if abs(int(cell.tokens.size) - int(other.tokens.size)) >= min_difference:
                continue  # at least that many records differ: no need to compare
            if 0 < changed(cell, other) < min_difference:
                found += 1
    for cells in earlier:
        for cell in new:
            for other in cells:
                if abs(int(cell.tokens.size) - int(other.tokens.size)) >= min_difference:
                    continue
                if 0 < changed(cell, other) < min_difference:
                    found += 1
    return found


def fingerprint(records: U64, parameters: Mapping[str, Any]) -> str:
    """Identifies a submission and its options (same records, same options, same hash)."""
    digest = hashlib.sha256(np.sort(records).astype("<u8").tobytes())
    digest.update(repr(sorted(parameters.items())).encode("utf-8"))
    return digest.hexdigest()


def in_period(history: Iterable[Mapping[str, Any]], period: str, now: dt.datetime) -> int:
    """How many earlier submissions fall in the same period as ``now``."""
    current = period_key(Period(period), now)
    count = 0
    for entry in history:
        at = entry.get("released_at")
        if isinstance(at, str):
            at = dt.datetime.fromisoformat(at)
        if isinstance(at, dt.datetime):
            if at.tzinfo is None:
                at = at.replace(tzinfo=dt.UTC)
            if period_key(Period(period), at) == current:
                count += 1
    return count
