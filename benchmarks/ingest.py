"""Ingest throughput: ``Zone.add_dataset`` against a plain DuckDB CSV read, same process.

Generates a 1M-row CSV (fixed seed; string, integer, float and date columns) in a temp
directory, then times, three times each, (a) the zone's full ingest (validation, typing,
Parquet, AES-GCM, metadata + audit transaction) and (b) ``duckdb.read_csv(path)``
materialised to Arrow, the baseline. Prints the medians, rows/s and the ratio
zone / baseline (target >= 0.5).

Run: ``.venv/bin/python benchmarks/ingest.py [--rows N] [--profile]``
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from collabzone import ingest
from collabzone.keys import MASTER_KEY_ENV, new_master_key
from collabzone.zone import Zone, init

SPEC = {
    "columns": [
        {"name": "token", "type": "string", "class": "join_key"},
        {
            "name": "region",
            "type": "string",
            "class": "dimension",
            "domain": ["north", "south", "east", "west"],
        },
        {"name": "age", "type": "integer", "class": "quasi_identifier"},
        {"name": "visits", "type": "integer", "class": "measure"},
        {"name": "spend", "type": "float", "class": "measure", "domain": {"min": 0, "max": 10000}},
        {"name": "since", "type": "date", "class": "other"},
    ]
}


def write_csv(path: Path, rows: int, seed: int = 20261125) -> Path:
    """A deterministic customer-like CSV of ``rows`` rows."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "token": [f"tok{v:016x}" for v in rng.integers(0, 2**62, rows)],
            "region": rng.choice(["north", "south", "east", "west"], rows),
            "age": rng.integers(18, 95, rows),
            "visits": rng.poisson(12, rows),
            "spend": np.round(rng.uniform(0, 10000, rows), 2),
            "since": pd.Timestamp("2010-01-01")
            + pd.to_timedelta(rng.integers(0, 5000, rows), unit="D"),
        }
    )
    frame["since"] = frame["since"].dt.strftime("%Y-%m-%d")
    frame.to_csv(path, index=False)
    return path


def median_seconds(run: Callable[[int], None], repeat: int = 3) -> float:
    times = []
    for i in range(repeat):
        start = time.perf_counter()
        run(i)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="profile one zone ingest")
    args = parser.parse_args()
    os.environ.setdefault(MASTER_KEY_ENV, new_master_key())
    with tempfile.TemporaryDirectory(prefix="cz-bench-ingest-") as tmp:
        root = Path(tmp)
        source = write_csv(root / "customers.csv", args.rows)
        size_mb = source.stat().st_size / 1e6
        operator, _ = init(root / "zone")
        _, token = operator.add_party("bank", ["provider"])
        bank: Zone = operator.as_party(token)

        def baseline(_: int) -> None:
            table = duckdb.read_csv(str(source)).to_arrow_table()
            assert table.num_rows == args.rows

        def zone_ingest(i: int) -> None:
            dataset = bank.add_dataset(f"customers_{i}", source, SPEC)
            assert dataset.row_count == args.rows

        if args.profile:
            profiler = cProfile.Profile()
            profiler.runcall(zone_ingest, 99)
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
        base = median_seconds(baseline, args.repeat)
        ours = median_seconds(zone_ingest, args.repeat)
        # where the zone's time goes: validate + type (DuckDB), then seal (Parquet + AES-GCM)
        spec = ingest.parse_spec(SPEC)
        table = ingest.read_file(source, spec)
        read = median_seconds(lambda _: ingest.read_file(source, spec), args.repeat)
        store = bank._data
        seal = median_seconds(lambda i: store.write(f"bench_{i}", 1, table), args.repeat)
    print(f"rows: {args.rows:,}  file: {size_mb:.1f} MB  repeats: {args.repeat} (median)")
    print(f"duckdb.read_csv -> Arrow : {base:6.2f} s  {args.rows / base:12,.0f} rows/s")
    print(f"Zone.add_dataset         : {ours:6.2f} s  {args.rows / ours:12,.0f} rows/s")
    print(f"ratio zone / baseline    : {base / ours:.2f} (target >= 0.5)")
    print(f"  of which validate+type : {read:6.2f} s  ({read / ours:.0%})")
    print(f"  of which Parquet+AES   : {seal:6.2f} s  ({seal / ours:.0%})")
    print(f"  rest (metadata, audit) : {max(0.0, ours - read - seal):6.2f} s")


if __name__ == "__main__":
    main()
