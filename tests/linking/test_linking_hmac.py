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


def _stdlib(key: bytes, version: int, messages: list[str | None]) -> list[str | None]:
    return [
        None
        if m is None
        else f"v{version}:"
        + base64.b64encode(hmac.digest(key, m.encode("utf-8"), "sha256")[:30]).decode()
        for m in messages
    ]


@pytest.mark.parametrize("key_length", [16, 32, 64, 65, 200])
def test_compiled_hmac_at_every_sha256_block_boundary(key_length: int) -> None:
    """Messages whose padding lands at each edge of a 64-byte block (55/56 bytes: the length
    field no longer fits; 64, 119, 120: a further block), keys longer than a block (hashed
    first, RFC 2104), multi-byte UTF-8: every token equals the standard library's."""
    key = bytes(range(7, 7 + key_length))
    lengths = [0, 1, 54, 55, 56, 57, 63, 64, 65, 118, 119, 120, 128, 300]
    messages: list[str | None] = [*("x" * n for n in lengths), "é" * 28, "日本" * 20, None]
    tokens = hmac_tokens(LinkKey(12, key), pa.array(messages, type=pa.string()))
    assert tokens.type == pa.string()
    assert tokens.null_count == 1
    assert tokens.to_pylist() == _stdlib(key, 12, messages)


def test_compiled_hmac_reads_slices_chunks_and_large_strings() -> None:
    """The kernel reads Arrow's buffers directly: a sliced array (non-zero offset), a
    chunked column and 64-bit offsets must give the tokens of the values, not of the
    neighbouring bytes of the buffer."""
    key = bytes(32)
    values: list[str | None] = [f"person{i}@example.com" if i % 7 else None for i in range(50)]
    expected = _stdlib(key, 1, values)
    column = pa.array(values, type=pa.string())
    assert hmac_tokens(LinkKey(1, key), column.slice(13, 20)).to_pylist() == expected[13:33]
    chunked = pa.chunked_array([column.slice(0, 10), column.slice(10)])
    assert hmac_tokens(LinkKey(1, key), chunked).to_pylist() == expected
    large = pa.array(values, type=pa.large_string())
    assert hmac_tokens(LinkKey(1, key), large).to_pylist() == expected
    assert hmac_tokens(LinkKey(1, key), pa.array([None, None], pa.string())).to_pylist() == [
        None,
        None,
    ]


def test_compiled_hmac_on_two_threads_equals_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """From THREADED_FROM rows the column is split over two threads writing one output
    buffer: every row's token must be its own (a wrong offset would shift tokens)."""
    from collabzone.techniques.linking import _hmac_batch

    monkeypatch.setattr(_hmac_batch, "THREADED_FROM", 100)
    key = bytes(range(32))
    values: list[str | None] = [None if i % 10 == 0 else f"{i}@example.com" for i in range(1011)]
    tokens = hmac_tokens(LinkKey(2, key), pa.array(values, type=pa.string())).to_pylist()
    expected = _stdlib(key, 2, values)
    assert tokens == expected
