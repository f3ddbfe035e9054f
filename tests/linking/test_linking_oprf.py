"""OPRF tokens: equal to a plain intersection, blind to the zone, rotatable without PII."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collabzone.crypto.group import L, hash_to_group, mul
from collabzone.crypto.oprf import OPRF_DST, encode_token
from collabzone.errors import InvalidInputError
from collabzone.keys import LocalKeyring
from collabzone.techniques.linking import (
    BlindRequest,
    EvaluateResponse,
    OprfClient,
    OprfServer,
    OprfShareServer,
    decode_token,
    oprf_tokens,
    split_key,
)


@pytest.fixture
def server(keyring: LocalKeyring) -> OprfServer:
    keyring.create("oprf:bank-retail")
    return OprfServer(keyring, "oprf:bank-retail", "demo")


def seeded(seed: int) -> random.Random:
    return random.Random(seed)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.sets(st.integers(0, 60), max_size=25),
    st.sets(st.integers(0, 60), max_size=25),
    st.integers(0, 2**32),
)
def test_oprf_overlap_equals_plain_intersection(
    keyring: LocalKeyring, left: set[int], right: set[int], seed: int
) -> None:
    keyring.create("oprf:bank-retail")  # idempotent: the fixture is shared by the examples
    server = OprfServer(keyring, "oprf:bank-retail", "demo")
    rng = seeded(seed)
    a = [f"person{i}@example.com".encode() for i in sorted(left)]
    b = [f"person{i}@example.com".encode() for i in sorted(right)]
    ta = oprf_tokens("email", a, server.evaluate, rng.randbytes)
    tb = oprf_tokens("email", b, server.evaluate, rng.randbytes)
    assert len(set(ta) & set(tb)) == len(left & right)
    assert len(set(ta)) == len(a)


def test_zone_sees_only_fresh_random_points(server: OprfServer) -> None:
    seen: list[BlindRequest] = []

    def spy(request: BlindRequest) -> EvaluateResponse:
        seen.append(request)
        return server.evaluate(request)

    value = b"jane@example.com"
    first = oprf_tokens("email", [value, value], spy)
    second = oprf_tokens("email", [value], spy)
    assert first[0] == first[1] == second[0]  # same token every time...
    blinded = [p for r in seen for p in r.elements]
    assert len(set(blinded)) == 3  # ...but the zone never saw the same point twice
    unblinded_hash = hash_to_group(value, OPRF_DST + b"email")
    assert unblinded_hash not in blinded
    assert all(value not in p for p in blinded)


def test_rotation_keeps_overlaps_without_pii(keyring: LocalKeyring, server: OprfServer) -> None:
    a = [f"p{i}@example.com".encode() for i in range(0, 40)]
    b = [f"p{i}@example.com".encode() for i in range(25, 60)]
    ta = oprf_tokens("email", a, server.evaluate)
    tb = oprf_tokens("email", b, server.evaluate)
    before = len(set(ta) & set(tb))
    version = keyring.rotate("oprf:bank-retail")
    # the zone re-keys what it stores: tokens in, tokens out, no provider, no PII
    ra = server.rekey("email", ta, version)
    rb = server.rekey("email", tb, version)
    assert len(set(ra) & set(rb)) == before == 15
    assert all(t is not None and t.startswith(f"o{version}:") for t in ra)
    assert not set(ra) & set(ta)
    # and a provider tokenising afresh under the new key lands on the same tokens
    assert oprf_tokens("email", a, server.evaluate) == ra
    keyring.destroy("oprf:bank-retail", 1)
    with pytest.raises(Exception, match="no version 1"):
        server.rekey("email", ta, version)


def test_threshold_oprf_any_t_of_n_gives_the_same_token() -> None:
    rng = seeded(3)
    secret = 987654321987654321
    servers = [OprfShareServer(i, s) for i, s in split_key(secret, 2, 3, rng.randbytes)]
    expected = encode_token(mul(hash_to_group(b"x@y.com", OPRF_DST + b"email"), secret), 1)
    for pair in ([0, 1], [1, 2], [2, 0]):
        client = OprfClient(rng.randbytes)
        request = client.blind("email", [b"x@y.com"])
        tokens = client.finalize_threshold([servers[i].evaluate(request) for i in pair], 2)
        assert tokens == [expected]
    # one server alone holds a share, not the key: its answer alone gives another token
    client = OprfClient(rng.randbytes)
    request = client.blind("email", [b"x@y.com"])
    alone = client.finalize(servers[0].evaluate(request))
    assert alone != [expected]
    with pytest.raises(InvalidInputError, match="need answers from 2"):
        OprfClient().finalize_threshold([], 2)


def test_server_rejects_points_outside_the_group(server: OprfServer) -> None:
    small_order = bytes([1] + [0] * 31)  # the identity: would reveal nothing but must fail
    with pytest.raises(InvalidInputError):
        server.evaluate(BlindRequest("email", (small_order,)))
    with pytest.raises(InvalidInputError):
        server.evaluate(BlindRequest("email", (b"\xff" * 32,)))


def test_client_state_machine_refuses_misuse(server: OprfServer) -> None:
    client = OprfClient()
    with pytest.raises(InvalidInputError, match="after blinding"):
        client.finalize(EvaluateResponse(1, ()))
    request = client.blind("email", [b"a", b"b"])
    with pytest.raises(InvalidInputError, match="already blinded"):
        client.blind("email", [b"c"])
    with pytest.raises(InvalidInputError, match="different number"):
        client.finalize(EvaluateResponse(1, request.elements[:1]))


def test_tokens_round_trip_and_bad_tokens_are_refused() -> None:
    point = hash_to_group(b"v", b"t")
    assert decode_token(encode_token(point, 7)) == (7, point)
    for bad in ("v1:abc", "o1:!!", "o1:" + "A" * 10, "nonsense"):
        with pytest.raises(InvalidInputError):
            decode_token(bad)
    assert L > 2**252


def test_mixed_order_points_leak_nothing_about_the_key(server: OprfServer) -> None:
    """The attack: add a point of small order T to a blinded element. Without cofactor
    clearing, k*(B + T) - k*B = k*T reveals k mod 4; the answer must equal k*B."""
    import nacl.bindings as sodium

    from collabzone.crypto.group import is_valid_point

    blinded = hash_to_group(b"probe", b"t")
    order_four = bytes(32)  # y = 0: a point of order 4
    mixed = bytes(sodium.crypto_core_ed25519_add(blinded, order_four))
    assert not is_valid_point(mixed)
    honest = server.evaluate(BlindRequest("email", (blinded,))).elements
    attacked = server.evaluate(BlindRequest("email", (mixed,))).elements
    assert attacked == honest
    assert "oprf" in repr(server) and "demo" in repr(server)
