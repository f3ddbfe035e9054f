"""HMAC tokens: equal to the standard library, separated per zone / version / key, and
useless to a dictionary attacker without the key."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collabzone.errors import InvalidInputError, NotFoundError
from collabzone.keys import LocalKeyring
from collabzone.techniques.linking import LinkKey, hmac_tokens, link_key, normalise_column


@settings(max_examples=100, deadline=None)
@given(
    st.binary(min_size=16, max_size=100),
    st.lists(st.one_of(st.text(max_size=80), st.none()), max_size=20),
    st.integers(1, 999),
)
def test_tokens_equal_the_standard_library_hmac(
    key: bytes, messages: list[str | None], version: int
) -> None:
    tokens = hmac_tokens(LinkKey(version, key), pa.array(messages, type=pa.string()))
    expected = [
        None
        if m is None
        else f"v{version}:"
        + base64.b64encode(hmac.digest(key, m.encode("utf-8"), "sha256")[:30]).decode()
        for m in messages
    ]
    assert tokens.to_pylist() == expected


def test_short_keys_and_non_text_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="too short"):
        hmac_tokens(LinkKey(1, b"short"), pa.array(["a"]))
    with pytest.raises(InvalidInputError, match="text"):
        hmac_tokens(LinkKey(1, bytes(32)), pa.array([1, 2]))


def _token(keyring: LocalKeyring, zone: str, match_key: str, version: int | None = None) -> str:
    key = link_key(keyring, "link:bank-retail", zone, match_key, version)
    return str(hmac_tokens(key, pa.array(["jane@example.com"]))[0])


def test_tokens_differ_across_zones_versions_and_match_keys(keyring: LocalKeyring) -> None:
    base = _token(keyring, "demo", "email")
    assert base == _token(keyring, "demo", "email")  # deterministic: it can link
    assert base.startswith("v1:")
    assert base != _token(keyring, "other-zone", "email")
    assert base.split(":")[1] != _token(keyring, "demo", "phone").split(":")[1]
    keyring.rotate("link:bank-retail")
    rotated = _token(keyring, "demo", "email")
    assert rotated.startswith("v2:") and rotated.split(":")[1] != base.split(":")[1]
    assert _token(keyring, "demo", "email", version=1) == base  # old version still readable
    keyring.destroy("link:bank-retail", 1)
    with pytest.raises(NotFoundError):
        _token(keyring, "demo", "email", version=1)


def test_link_key_repr_hides_material(keyring: LocalKeyring) -> None:
    key = link_key(keyring, "link:bank-retail", "demo", "email")
    for shown in (repr(key), str(key)):
        assert key.material.hex() not in shown
        assert base64.b64encode(key.material).decode() not in shown
        assert "v1" in shown


def test_dictionary_attack_on_released_tokens_finds_nothing(keyring: LocalKeyring) -> None:
    """The attacker holds 1M candidate e-mails and phones and hashes them without a key
    (unsalted SHA-256, in every encoding a token could use); the released tokens of 2,000
    customers drawn from those candidates must match none of them."""
    candidates = [f"user{i}@example.com" for i in range(500_000)] + [
        f"+4479{i:08d}" for i in range(500_000)
    ]
    customers = candidates[::500]
    key = link_key(keyring, "link:bank-retail", "demo", "email")
    emails = normalise_column(pa.array(customers[:1000]), "email").values
    phones = normalise_column(pa.array(customers[1000:]), "phone", {"region": "GB"}).values
    assert emails.null_count == 0 and phones.null_count == 0
    released = hmac_tokens(key, emails).to_pylist() + hmac_tokens(key, phones).to_pylist()
    bodies = {t.split(":", 1)[1] for t in released}
    raw = {base64.b64decode(b) for b in bodies}
    hits = 0
    for candidate in candidates:
        digest = hashlib.sha256(candidate.encode()).digest()
        hits += (
            digest[:30] in raw
            or base64.b64encode(digest[:30]).decode() in bodies
            or digest.hex() in bodies
        )
    assert hits == 0
    # and the same customers *are* found by whoever holds the key: the attack had data
    again = hmac_tokens(key, normalise_column(pa.array(customers[:1000]), "email").values)
    assert set(again.to_pylist()) <= set(released)
