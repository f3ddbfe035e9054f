"""Honest DP outputs (issue 11): released values and intervals lie where the true values
must lie, and the notes say when the noise dwarfs the values."""

from __future__ import annotations

from typing import Any

import pytest

from tests.sql.sql_support import DP_RULES, make_fake_zone

SQL = (
    "SELECT segment, COUNT(*) AS n, SUM(converted) AS converted, AVG(balance) AS balance "
    "FROM bank GROUP BY segment"
)
BALANCE = (-1000.0, 20000.0)  # the declared domain of bank.balance


def _answer(epsilon: float) -> dict[str, Any]:
    zone = make_fake_zone(DP_RULES, DP_RULES)  # a fresh zone: no cached noise
    return zone.submit("analyst", {"sql": SQL, "epsilon": epsilon})


def test_tiny_epsilon_never_gives_negative_counts_or_averages_out_of_bounds() -> None:
    for _ in range(12):
        payload = _answer(0.02)
        columns = payload["columns"]
        n, converted, balance = (columns.index(c) for c in ("n", "converted", "balance"))
        for row in payload["rows"]:
            assert row[n] >= 0 and row[converted] >= 0
            assert row[balance] is None or BALANCE[0] <= row[balance] <= BALANCE[1]
        for name in ("n", "converted"):
            assert all(low is None or low >= 0 for low, _ in payload["confidence_intervals"][name])
        for low, high in payload["confidence_intervals"]["balance"]:
            assert low is not None and high is not None
            assert BALANCE[0] <= low <= high <= BALANCE[1]


def test_the_notes_say_when_the_noise_dwarfs_the_values() -> None:
    noisy = _answer(0.002)  # noise in the thousands on counts of a few hundred
    assert any("noise is larger than most values" in note for note in noisy["notes"])
    dwarfed = next(note for note in noisy["notes"] if "noise is larger" in note)
    assert "converted" in dwarfed  # a sum of 0/1 at epsilon 0.02: noise in the hundreds
    clear = _answer(4.0)
    assert not any("noise is larger" in note for note in clear["notes"])


@pytest.mark.parametrize("epsilon", [0.02, 1.0])
def test_intervals_contain_the_released_value(epsilon: float) -> None:
    payload = _answer(epsilon)
    for name, column in payload["confidence_intervals"].items():
        index = payload["columns"].index(name)
        for row, (low, high) in zip(payload["rows"], column, strict=True):
            value = row[index]
            if value is not None:
                assert (low is None or low <= value + 1e-9) and (
                    high is None or value <= high + 1e-9
                )


def test_dwarfed_counts_rows_whose_interval_is_wider_than_the_value() -> None:
    from collabzone.techniques.sql._run_dp import dwarfed

    rows = [["a", 10, 5.0], ["b", 100, 5.0], ["c", 1, None]]
    intervals = {"n": [[0, 40], [90, 110], [0, 3]], "avg": [[0, 20], [0, 20], [None, None]]}
    # n: wide in rows a and c (2 of 3); avg: wide in a and b (2 of 3, c has no value)
    assert dwarfed(rows, intervals, ["key", "n", "avg"]) == ["n", "avg"]
    assert dwarfed(rows, {"n": [[9, 11], [90, 110], [0, 3]]}, ["key", "n", "avg"]) == []
