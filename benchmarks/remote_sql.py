"""Governed SQL where the data lives: DuckDB (ingested) vs PostgreSQL (vs Spark local).

    COLLABZONE_TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/test \\
        .venv/bin/python benchmarks/remote_sql.py --rows 100000 [--spark]

The same governed join + threshold (audited aggregation: people lists for the disclosure
audit) and one DP GROUP BY run on each engine over the same generated tables; the figures
are wall-clock seconds per query (best of ``--repeat``) and the rows each engine sent back.
Nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from collabzone.remote_tables import Location, SparkTable
from tests.sql.remote_support import pg_schema, remote_copy
from tests.sql.sql_support import AGG_RULES, DP_RULES, FakeZone, make_fake_zone

JOIN = (
    "SELECT b.segment, s.shop_segment, COUNT(*), AVG(b.balance), SUM(s.spend) FROM bank b "
    "JOIN shop s ON b.pid = s.pid GROUP BY b.segment, s.shop_segment"
)
DP = "SELECT b.segment, COUNT(*), SUM(s.spend) FROM bank b JOIN shop s ON b.pid = s.pid GROUP BY 1"


def _tables(rows: int) -> dict[str, pa.Table]:
    rng = np.random.default_rng(1)
    pid = np.array([f"p{i:08d}" for i in range(rows)])
    bank = pa.table({
        "pid": pid,
        "segment": rng.choice(["gold", "silver", "bronze"], size=rows),
        "region": rng.choice(["north", "south", "east", "west"], size=rows),
        "age": rng.integers(18, 90, size=rows),
        "balance": np.round(rng.normal(5000, 2000, size=rows), 2),
        "converted": rng.integers(0, 2, size=rows),
        "name": pid,
    })  # fmt: skip
    picked = np.sort(rng.choice(rows, size=rows // 2, replace=False))
    shop = pa.table({
        "pid": pid[picked],
        "token": pid[picked],
        "shop_segment": rng.choice(["sport", "home", "kids"], size=picked.size),
        "spend": np.round(rng.uniform(0, 500, size=picked.size), 2),
    })  # fmt: skip
    return {"bank": bank, "shop": shop}


def _time(make: Callable[[], FakeZone], spec: dict[str, Any], repeat: int) -> tuple[float, int]:
    """Best wall-clock of ``repeat`` runs, each in a fresh zone (no audit memory, no DP
    cache: a repeated DP query would be answered from the cache)."""
    best, released = float("inf"), 0
    for _ in range(repeat):
        zone = make()
        started = time.perf_counter()
        payload = zone.submit("analyst", spec)
        best = min(best, time.perf_counter() - started)
        released = len(payload["rows"])
    return best, released


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--spark", action="store_true", help="also Spark local[2] (JVM start)")
    args = parser.parse_args()
    if not os.environ.get("COLLABZONE_TEST_POSTGRES_URL"):
        raise SystemExit("set COLLABZONE_TEST_POSTGRES_URL")
    tables = _tables(args.rows)
    rules = {**AGG_RULES, "threshold_jitter": 0}
    print(f"bank {args.rows} rows, shop {args.rows // 2} rows; best of {args.repeat}")
    with pg_schema(tables) as schema, TemporaryDirectory() as lake:
        for name, table in tables.items():
            pq.write_table(table, Path(lake) / f"{name}.parquet")
        engines: dict[str, Callable[[FakeZone], FakeZone]] = {
            "duckdb": lambda z: z,
            "postgres": lambda z: remote_copy(z, schema),
        }
        if args.spark:

            def spark(z: FakeZone) -> FakeZone:
                return remote_copy(z, opener=lambda d: SparkTable(Location(
                    "spark", ("parquet", str(Path(lake) / f"{d}.parquet")), "local[2]")))  # fmt: skip

            engines["spark"] = spark
        for label, spec, agreement in (
            ("governed join + threshold (audited)", {"sql": JOIN}, rules),
            ("DP join GROUP BY (bounded in engine)", {"sql": DP, "epsilon": 1.0}, DP_RULES),
        ):
            for engine, wrap in engines.items():

                def make(
                    wrap: Callable[[FakeZone], FakeZone] = wrap,
                    agreement: dict[str, Any] = agreement,
                ) -> FakeZone:
                    zone = make_fake_zone(agreement, agreement)
                    zone.tables = tables
                    return wrap(zone)

                seconds, released = _time(make, spec, args.repeat)
                print(f"{label:40s} {engine:9s} {seconds:8.3f} s  {released} groups released")


if __name__ == "__main__":
    main()
