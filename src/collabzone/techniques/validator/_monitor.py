"""Query monitor for submissions: repeats and a cap per period (pure).

Each released submission leaves a small entry with its release: the fingerprint of its
records and options (a hash of keyed digests, BLAKE2b under a node key the ML party does
not have), the id of that key, and for DP answers the released payload, so an identical
resubmission replays the earlier noisy answer instead of drawing (and charging) fresh
noise. The cap counts these entries per ML party and period.

Combinations of submissions (differencing, overlapping files) are the disclosure audit's
job (``_audit``); this module no longer compares sets.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Mapping, Sequence
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
