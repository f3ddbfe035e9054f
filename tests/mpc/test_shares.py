"""Shares: round trips, and what one server's shares and sealed files reveal (nothing)."""

from __future__ import annotations

import base64
import itertools
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collabzone.errors import ConflictError, InvalidInputError
from collabzone.techniques.mpc import ShareStore, open_report, split_upload
from collabzone.techniques.mpc._shares import (
    decode,
    encode,
    encode_array,
    field,
    from_bytes,
    recombine,
    split,
    split_bytes,
)

from .conftest import make_stores


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=20))
def test_any_two_of_three_servers_reconstruct(values: list[float]) -> None:
    parts = split(encode(values), 3, 1)
    for pair in itertools.combinations(range(3), 2):
        opened = decode(recombine({i: parts[i] for i in pair}, 1))
        assert opened == pytest.approx(values, abs=2**-31)


@settings(max_examples=20, deadline=None)
@given(
    st.lists(st.integers(-(2**62), 2**62), min_size=1, max_size=12),
    st.sampled_from([(1, 0), (3, 1), (5, 2), (7, 3)]),
)
def test_vectorised_split_opens_with_any_threshold_plus_one_servers(
    values: list[int], shape: tuple[int, int]
) -> None:
    """The limb arithmetic mod 2**128 - 173 agrees with the field: signed int64 input and
    elements next to p (carries, the final subtraction) open to the same elements."""
    servers, threshold = shape
    modulus = int(field().modulus)
    near_p = [modulus - 1, modulus - 173, 2**128 - 174, 2**96 - 1]
    for batch in (np.array(values, dtype=np.int64), np.array(near_p + values, dtype=object)):
        parts = [from_bytes(b) for b in split_bytes(batch, servers, threshold)]
        assert all(0 <= int(v) < modulus for part in parts for v in part)
        for pick in itertools.combinations(range(servers), threshold + 1):
            opened = recombine({i: parts[i].tolist() for i in pick}, threshold)
            assert [v % modulus for v in opened] == [int(v) % modulus for v in batch]
    assert encode_array(np.array([0.5, -0.25])).tolist() == [2**31, -(2**30)]


def test_a_share_outside_the_field_is_refused(tmp_path: Path, master_key: str) -> None:
    """A package is bytes from outside: a 'share' >= p would not be a field element."""
    package = split_upload(
        "d", "p", {"a": np.array([0.5, 0.25])}, {"a": (0.0, 1.0)},
        reports=["mean"], recipients=["r"], min_group_size=1,
    )[0]  # fmt: skip
    bad = base64.b64encode(int(field().modulus).to_bytes(16, "big") * 2).decode()
    with pytest.raises(InvalidInputError, match="not a field element"):
        ShareStore(tmp_path / "s", master_key).put({**package, "shares": {"a": bad}})
    with pytest.raises(InvalidInputError, match="row count"):
        ShareStore(tmp_path / "t", master_key).put({**package, "shares": {"a": bad[:20]}})


def test_one_share_alone_does_not_open_and_bad_thresholds_are_refused() -> None:
    parts = split(encode([1.0]), 3, 1)
    with pytest.raises(InvalidInputError, match="from 2 servers"):
        recombine({0: parts[0]}, 1)
    with pytest.raises(InvalidInputError, match="2 \\* threshold < servers"):
        split(encode([1.0]), 3, 2)


def _chi_square_uniform(shares: list[int], bins: int = 16) -> float:
    modulus = int(field().modulus)
    counts = np.bincount([s * bins // modulus for s in shares], minlength=bins)
    expected = len(shares) / bins
    return float(((counts - expected) ** 2 / expected).sum())


def test_one_servers_shares_are_uniform_whatever_the_data(tmp_path: Path, master_key: str) -> None:
    """A constant column and a real one look alike to one server: uniform over the field.

    Chi-square with 15 degrees of freedom; 46.8 is its 1e-6 upper quantile.
    """
    rows = 3000
    data = {"constant": np.full(rows, 42.0), "age": np.random.default_rng(3).normal(40, 10, rows)}
    bounds = {"constant": (0.0, 100.0), "age": (0.0, 100.0)}
    packages = split_upload(
        "d", "p", data, bounds, reports=["mean"], recipients=["r"], min_group_size=1
    )
    store = ShareStore(tmp_path / "s1", master_key)
    store.put(packages[1])
    held = store.shares("d", ["constant", "age"])
    for column in ("constant", "age"):
        assert _chi_square_uniform(held[column]) < 46.8
        assert len(set(held[column])) == rows  # no repeated share betrays repeated values


def test_shares_are_sealed_at_rest(tmp_path: Path, master_key: str) -> None:
    stores, _ = make_stores(tmp_path, master_key, servers=3, threshold=1, rows=50)
    blob = stores[0].sealed_file("adult").read_bytes()
    first = stores[0].shares("adult", ["age"])["age"][0]
    assert first.to_bytes(16, "big") not in blob
    assert b"PAR1" not in blob  # no readable Parquet
    with pytest.raises(ConflictError):
        stores[0].put(
            split_upload(
                "adult",
                "x",
                {"age": np.ones(3)},
                {"age": (0, 1)},
                reports=["mean"],
                recipients=["r"],
                min_group_size=1,
            )[0]
        )


def test_recipient_refuses_mixed_or_misaddressed_output_shares() -> None:
    doc = {
        "server": 0,
        "threshold": 0,
        "rows": 1,
        "bounds": {"a": [0, 1]},
        "report": {"report": "mean", "datasets": ["d"], "columns": ["a"], "recipient": "r"},
        "shares": [str(encode([0.5])[0])],
    }
    assert open_report([doc], "r")["result"] == {"a": 0.5}
    with pytest.raises(InvalidInputError, match="computed for 'r'"):
        open_report([doc], "someone-else")
    with pytest.raises(InvalidInputError, match="different reports"):
        open_report([doc, {**doc, "server": 1, "rows": 2}], "r")
