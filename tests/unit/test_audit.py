"""The hash chain detects every kind of tampering (pure verification)."""

from __future__ import annotations

import dataclasses

from hypothesis import given
from hypothesis import strategies as st

from collabzone.audit import GENESIS, AuditEvent, event_hash, head_mac, verify_chain

KEY = b"k" * 32


def _chain(n: int) -> tuple[list[AuditEvent], tuple[int, str, str]]:
    events, prev = [], GENESIS
    for i in range(1, n + 1):
        body = {
            "seq": i,
            "id": f"ev-{i}",
            "at": f"2026-11-25T00:00:{i:02d}",
            "actor": "bank",
            "action": "x",
            "subject": "s",
            "parties": ["bank"],
            "details": {"n": i},
            "prev_hash": prev,
        }
        digest = event_hash(body)
        events.append(AuditEvent(**{**body, "parties": ("bank",)}, hash=digest))  # type: ignore[arg-type]
        prev = digest
    return events, (n, prev, head_mac(KEY, n, prev))


def test_intact_chain_verifies() -> None:
    events, head = _chain(5)
    assert verify_chain(events, head, KEY).ok


@given(st.integers(min_value=2, max_value=12), st.data())
def test_edit_delete_reorder_truncate_are_detected(n: int, data: st.DataObject) -> None:
    events, head = _chain(n)
    i = data.draw(st.integers(min_value=0, max_value=n - 1))
    edited = list(events)
    edited[i] = dataclasses.replace(events[i], details={"n": -1})
    assert verify_chain(edited, head, KEY).broken_at == i + 1
    deleted = events[:i] + events[i + 1 :]
    assert not verify_chain(deleted, head, KEY).ok
    j = data.draw(st.integers(min_value=0, max_value=n - 1).filter(lambda j: j != i))
    swapped = list(events)
    swapped[i], swapped[j] = swapped[j], swapped[i]
    assert not verify_chain(swapped, head, KEY).ok
    assert not verify_chain(events[:i], head, KEY).ok  # truncated: the signed head disagrees


def test_rewritten_chain_with_forged_head_is_detected() -> None:
    forged_events, (seq, last, _) = _chain(3)
    assert not verify_chain(forged_events, (seq, last, head_mac(b"x" * 32, seq, last)), KEY).ok
    assert "signature" in str(verify_chain(forged_events, (seq, last, "0" * 64), KEY))
