"""Released payloads as Arrow, CSV, Parquet and a Rich table, with their protections."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from collabzone.techniques.sql import render, to_arrow, to_csv, to_parquet
from collabzone.techniques.sql._payload import summary
from tests.sql.sql_support import FakeZone


def test_dp_payload_formats(dp_zone: FakeZone, tmp_path: Path) -> None:
    payload = dp_zone.submit(
        "analyst",
        {"sql": "SELECT segment, COUNT(*) AS n FROM bank GROUP BY segment", "epsilon": 1.0},
    )
    table = to_arrow(payload)
    assert table.column_names == ["segment", "n", "n_ci_low", "n_ci_high"]
    assert table.num_rows == 4
    lows, highs, values = (table.column(c).to_pylist() for c in ("n_ci_low", "n_ci_high", "n"))
    assert all(lo <= v <= hi for lo, v, hi in zip(lows, values, highs, strict=True))
    assert to_csv(payload).splitlines()[0] == '"segment","n","n_ci_low","n_ci_high"'
    to_parquet(payload, str(tmp_path / "r.parquet"))
    assert pq.read_table(tmp_path / "r.parquet").num_rows == 4
    lines = summary(payload)
    assert any(line.startswith("noise scale: n=") for line in lines)
    assert any("epsilon" in line for line in lines)
    assert render(payload).row_count == 4


def test_threshold_payload_says_what_is_left_out_but_not_how_many(fake_zone: FakeZone) -> None:
    payload = fake_zone.submit(
        "analyst", {"sql": "SELECT segment, COUNT(*) FROM bank GROUP BY segment"}
    )
    assert summary(payload)[0].startswith("groups with fewer than 5 people")
    assert "not disclosed" in summary(payload)[0]
    assert to_arrow(payload).num_rows == 3
