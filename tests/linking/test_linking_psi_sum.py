"""PSI reveal mode ``sum``: correct sums, the minimum group size, and the attacks on it."""

from __future__ import annotations

import random

import gmpy2
import numpy as np
import pytest

from collabzone.errors import InvalidInputError
from collabzone.techniques.linking import SumQuery, SumReceiver, SumResult, SumSender, intersect_sum


def items(values: range | set[int]) -> list[bytes]:
    return [f"c{v}@example.com".encode() for v in sorted(values)]


def test_sum_over_the_intersection_is_released_at_the_minimum_and_refused_below() -> None:
    rng = random.Random(3)
    x = items(range(0, 40))
    y_ids = list(range(30, 60))  # 10 shared: c30..c39
    values = [rng.randrange(-500, 10_000) for _ in y_ids]
    expected = sum(v for i, v in zip(y_ids, values, strict=True) if i < 40)
    sender = SumSender(x, min_group_size=10, random_bytes=rng.randbytes)
    result = intersect_sum(sender, SumReceiver(items(set(y_ids)), values, rng.randbytes))
    assert result == SumResult(True, 10, expected)
    assert sender.cardinality == 10  # the matching side learns the count (as in PJC)

    strict = SumSender(x, min_group_size=11, random_bytes=rng.randbytes)
    refused = intersect_sum(strict, SumReceiver(items(set(y_ids)), values, rng.randbytes))
    assert refused == SumResult(False)  # no count, no sum
    assert strict.cardinality == 10


def test_a_one_token_probe_gets_the_same_refusal_whether_or_not_the_person_is_there() -> None:
    x = items(range(0, 50))
    answers = []
    for target in (7, 70):  # in the sender's set, and not
        sender = SumSender(x, min_group_size=5)
        answers.append(intersect_sum(sender, SumReceiver(items({target}), [1_000_000])))
    assert answers[0] == answers[1] == SumResult(False)


def _forged(query: SumQuery, rows: list[np.ndarray]) -> SumQuery:
    return SumQuery(
        query.double, np.stack(rows), query.public_n, (query.ciphertexts[0],) * len(rows)
    )


def test_repeating_the_target_to_reach_the_minimum_is_refused() -> None:
    """The probe sends its one point k times, or with a small-order point added (u -> 1/u:
    the order-2 point (0, 0)), which X25519 maps to the same result: refused either way."""
    p = 2**255 - 19
    for target in (7, 70):
        for variant in ("same point", "small-order twin"):
            sender = SumSender(items(range(0, 50)), min_group_size=3)
            query = SumReceiver(items({target}), [1]).respond(sender.start())
            row = query.points[0]
            u = int.from_bytes(row.tobytes(), "little")
            twin = np.frombuffer(int(gmpy2.invert(u, p)).to_bytes(32, "little"), np.uint8)
            rows = [row, row, row] if variant == "same point" else [row, twin, row.copy()]
            with pytest.raises(InvalidInputError, match="repeats"):
                sender.finish(_forged(query, rows))


def test_the_sender_sees_only_fresh_ciphertexts_and_refuses_a_weak_key() -> None:
    sender = SumSender(items(range(0, 20)), min_group_size=1)
    receiver = SumReceiver(items(range(5, 10)), [42] * 5)
    query = receiver.respond(sender.start())
    assert len(set(query.ciphertexts)) == 5  # equal values, unrelated ciphertexts
    assert all(c != 42 and c.bit_length() > 2048 for c in query.ciphertexts)
    weak = SumReceiver(items(range(5, 10)), [1] * 5, key_bits=1024)
    other = SumSender(items(range(0, 20)), min_group_size=1)
    weak_query = weak.respond(other.start())
    with pytest.raises(InvalidInputError, match="2048 bits"):
        other.finish(weak_query)


def test_bad_sum_inputs_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="whole numbers"):
        SumReceiver([b"a"], [1.5])  # type: ignore[list-item]
    with pytest.raises(InvalidInputError, match="one value per item"):
        SumReceiver([b"a", b"b"], [1])
    with pytest.raises(InvalidInputError, match="at least 1"):
        SumSender([b"a"], min_group_size=0)
    receiver = SumReceiver([b"a", b"a"], [1, 2])
    with pytest.raises(InvalidInputError, match="distinct items"):
        receiver.respond(SumSender([b"a"], min_group_size=1).start())
