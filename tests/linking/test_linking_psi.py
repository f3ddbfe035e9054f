"""ECDH PSI: equals the plain intersection and openmined-psi; the relay learns nothing."""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collabzone.errors import InvalidInputError
from collabzone.techniques.linking import PsiMessage, PsiReceiver, PsiSender, _psi, intersect


def items(values: set[int]) -> list[bytes]:
    return [f"c{v}@example.com".encode() for v in sorted(values)]


@settings(max_examples=20, deadline=None)
@given(
    st.sets(st.integers(0, 80), min_size=1, max_size=40),
    st.sets(st.integers(0, 80), min_size=1, max_size=40),
    st.integers(0, 2**32),
)
def test_psi_equals_plain_intersection(x: set[int], y: set[int], seed: int) -> None:
    rng = random.Random(seed)
    card = intersect(
        PsiSender(items(x), random_bytes=rng.randbytes), PsiReceiver(items(y), rng.randbytes)
    )
    assert card.cardinality == len(x & y)
    assert card.intersection is None  # cardinality-only agreement: no members
    full = intersect(
        PsiSender(items(x), "intersection", rng.randbytes), PsiReceiver(items(y), rng.randbytes)
    )
    assert full.intersection is not None
    assert set(full.intersection) == set(items(x & y))


def test_psi_cardinality_equals_openmined_psi() -> None:
    psi = pytest.importorskip("private_set_intersection.python")
    rng = random.Random(11)
    x = {rng.randrange(5000) for _ in range(1500)}
    y = {rng.randrange(5000) for _ in range(1200)}
    ours = intersect(PsiSender(items(x)), PsiReceiver(items(y))).cardinality
    client = psi.client.CreateWithNewKey(True)
    server = psi.server.CreateWithNewKey(True)
    setup = server.CreateSetupMessage(1e-9, len(y), [i.decode() for i in items(x)])
    response = server.ProcessRequest(client.CreateRequest([i.decode() for i in items(y)]))
    theirs = client.GetIntersectionSize(setup, response)
    assert ours == theirs == len(x & y)


def test_parallel_streamed_run_gives_the_same_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_psi, "BATCH_ITEMS", 500)
    monkeypatch.setattr(_psi, "PARALLEL_MIN_ITEMS", 1000)
    x = items(set(range(0, 3_000)))
    y = items(set(range(2_900, 3_100)) | {5})
    sender = PsiSender.from_batches(
        lambda: (x[i : i + 700] for i in range(0, len(x), 700)), workers=2
    )
    result = intersect(sender, PsiReceiver(y * 2, workers=2))  # duplicates count once
    assert result.cardinality == 101
    full = intersect(
        PsiSender(x, "intersection", workers=2),
        PsiReceiver.from_batches(lambda: [y[:50], y[50:]], workers=2),
    )
    assert full.cardinality == 101 and full.intersection is None  # streamed: positions only
    assert full.positions is not None
    assert sorted(y[int(i)] for i in full.positions) == sorted(
        items(set(range(2_900, 3_000)) | {5})
    )


def test_relay_sees_no_identifier_and_cardinality_reply_is_unlinkable() -> None:
    x, y = items(set(range(0, 30))), items(set(range(20, 50)))
    seen: list[PsiMessage] = []

    def relay(message: PsiMessage) -> PsiMessage:
        seen.append(message)
        return message

    intersect(PsiSender(x), PsiReceiver(y), relay)
    blob = b"".join(e for m in seen for e in m.elements)
    assert not any(item in blob for item in x + y)
    assert [m.step for m in seen] == ["sender_set", "receiver_query", "sender_reply"]
    reply = seen[2].elements
    assert list(reply) == sorted(reply)  # order no longer says which query element matched


def test_sorted_reply_does_not_tell_the_receiver_which_items_matched() -> None:
    """A receiver that ignores the mode and reads the sorted reply positionally gets the
    members right no better than chance: the order carries no link to its query."""
    rng = random.Random(5)
    right_guesses = 0
    for _ in range(20):
        x, y = items(set(range(0, 10))), items(set(range(9, 19)))  # one shared item
        sender = PsiSender(x, random_bytes=rng.randbytes)
        receiver = PsiReceiver(y, rng.randbytes)
        first = sender.start()
        reply = sender.respond(receiver.start())
        forged = PsiMessage(reply.step, reply.points, "intersection")  # lie about the mode
        result = receiver.finish(first, forged)
        assert result.cardinality == 1
        right_guesses += result.intersection == (y[0],)
    assert right_guesses <= 8  # chance is 1 in 10 per run; P(>8 of 20) < 1e-4


def test_bad_inputs_and_protocol_misuse_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="empty"):
        PsiSender([])
    sender = PsiSender([b"a"])
    with pytest.raises(InvalidInputError, match="start"):
        sender.respond(PsiMessage("receiver_query", np.zeros((0, 32), np.uint8)))
    receiver = PsiReceiver([b"a"])
    query = receiver.start()
    first = sender.start()
    with pytest.raises(InvalidInputError, match="expected"):
        receiver.finish(query, query)
    with pytest.raises(InvalidInputError, match="32 bytes"):
        sender.respond(PsiMessage("receiver_query", np.zeros((1, 16), np.uint8)))
    assert receiver.finish(first, sender.respond(query)).cardinality == 1
