"""Scaling of governed SQL: join + threshold and DP join at 1M, 10M, 50M rows, DuckDB and
Spark local, time and peak memory of the whole process tree (the JVM included).

    nice -n 5 .venv/bin/python benchmarks/scale.py --rows 1000000,10000000 \\
        --engines duckdb,spark [--data /tmp/cz-scale] [--spark-memory 6g]

``bank`` has N people, ``shop`` about N/2 of them (each bank row kept with probability
1/2); both are Parquet files written once per N with a fixed seed, a million rows at a
time (generation never holds a table). Each (N, engine) case runs in a fresh child
process: DuckDB reads the files into memory as the zone holds an ingested dataset; Spark
``local[2]`` reads them in place (the JVM is started, and its start reported, before any
query is timed). In the case, in this order: the raw, ungoverned join on the same engine
(the baseline; run again last, the faster run counts), the governed join + threshold (audited: people lists, disclosure audit),
the DP join GROUP BY (contribution bounding and noise in the engine plan). For each: wall
seconds, CPU seconds of the process tree (steadier on a shared machine), the ratio to the
raw query in both, and the peak resident memory of the tree during that query (sum of
each process's high-water mark, reset before the query: an upper bound). Nothing is
asserted. ``--limit`` stops a case (its JVM included) after so many seconds and prints
the figures it had.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

JOIN = (
    "SELECT b.segment, s.shop_segment, COUNT(*), AVG(b.balance), SUM(s.spend) FROM bank b "
    "JOIN shop s ON b.pid = s.pid GROUP BY b.segment, s.shop_segment"
)
DP = "SELECT b.segment, COUNT(*), SUM(s.spend) FROM bank b JOIN shop s ON b.pid = s.pid GROUP BY 1"
CHUNK = 1_000_000
SEED = 18
MASTER = "local[2]"


def generate(root: Path, rows: int) -> Path:
    """``bank`` and ``shop`` Parquet files for ``rows`` people (made once, then reused)."""
    folder = root / f"n{rows}"
    done = folder / "done"
    if done.exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    bank_schema = pa.schema([("pid", pa.string()), ("segment", pa.string()),
                             ("region", pa.string()), ("age", pa.int64()),
                             ("balance", pa.float64()), ("converted", pa.int64()),
                             ("name", pa.string())])  # fmt: skip
    shop_schema = pa.schema([("pid", pa.string()), ("token", pa.string()),
                             ("shop_segment", pa.string()), ("spend", pa.float64())])  # fmt: skip
    segments = pa.array(["gold", "silver", "bronze"])
    regions = pa.array(["north", "south", "east", "west"])
    shops = pa.array(["sport", "home", "kids"])
    with (
        pq.ParquetWriter(folder / "bank.parquet", bank_schema) as bank,
        pq.ParquetWriter(folder / "shop.parquet", shop_schema) as shop,
    ):
        for start in range(0, rows, CHUNK):
            n = min(CHUNK, rows - start)
            digits = pc.utf8_lpad(
                pc.cast(pa.array(np.arange(start, start + n)), pa.string()), 9, "0"
            )
            pid = pc.binary_join_element_wise("p", digits, "")
            bank.write_table(pa.table({
                "pid": pid,
                "segment": segments.take(rng.integers(0, 3, n)),
                "region": regions.take(rng.integers(0, 4, n)),
                "age": rng.integers(18, 90, n),
                "balance": np.round(rng.normal(5000, 2000, n), 2),
                "converted": rng.integers(0, 2, n),
                "name": pid,
            }, schema=bank_schema))  # fmt: skip
            kept = pid.filter(pa.array(rng.random(n) < 0.5))
            m = len(kept)
            shop.write_table(pa.table({
                "pid": kept,
                "token": kept,
                "shop_segment": shops.take(rng.integers(0, 3, m)),
                "spend": np.round(rng.uniform(0, 500, m), 2),
            }, schema=shop_schema))  # fmt: skip
    done.write_text("ok")
    return folder


def _descendants() -> list[int]:
    """This process and every process under it (the JVM of a Spark session)."""
    found, todo = [os.getpid()], [os.getpid()]
    while todo:
        pid = todo.pop()
        for task in Path(f"/proc/{pid}/task").glob("*/children"):
            try:
                kids = [int(k) for k in task.read_text().split()]
            except OSError:
                continue
            found += kids
            todo += kids
    return found


def _status_kb(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _cpu_s(pids: list[int]) -> float:
    """User + system CPU seconds of ``pids`` so far."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def measure(fn: Callable[[], object]) -> dict[str, float]:
    """Wall and tree CPU seconds of ``fn``, and the tree's peak resident memory (GB)."""
    pids = _descendants()
    for pid in pids:  # reset each high-water mark to the current size (Linux)
        with contextlib.suppress(OSError):
            Path(f"/proc/{pid}/clear_refs").write_text("5")
    cpu, started = _cpu_s(pids), time.perf_counter()
    fn()
    wall = time.perf_counter() - started
    pids = _descendants()
    return {
        "wall_s": wall,
        "cpu_s": _cpu_s(pids) - cpu,
        "peak_gb": sum(_status_kb(p, "VmHWM") for p in pids) / 2**20,
    }


def _progress(out: dict[str, Any]) -> None:
    """The figures so far, one JSON line (the parent keeps the last if it stops the case)."""
    print(json.dumps(out), flush=True)


def run_case(folder: Path, engine: str) -> dict[str, Any]:
    """The raw, governed and DP queries on one engine over the files in ``folder``."""
    from collabzone.remote_tables import Location, SparkTable, spark_session
    from tests.sql.remote_support import remote_copy
    from tests.sql.sql_support import AGG_RULES, DP_RULES, FakeZone, make_fake_zone

    out: dict[str, Any] = {"engine": engine}
    paths = {name: str(folder / f"{name}.parquet") for name in ("bank", "shop")}
    if engine == "duckdb":
        import duckdb

        tables: dict[str, pa.Table] = {}
        out["load"] = measure(
            lambda: tables.update({n: pq.read_table(p) for n, p in paths.items()})
        )
        _progress(out)
        con = duckdb.connect()
        for name, table in tables.items():
            con.register(name, table)

        def raw() -> object:
            return con.sql(JOIN).to_arrow_table()

        def wrap(zone: FakeZone) -> FakeZone:
            zone.tables = tables
            return zone
    else:
        spark: Any = None

        def start() -> None:
            nonlocal spark
            spark = spark_session(MASTER)
            spark.sql("SELECT 1").collect()

        out["load"] = measure(start)
        _progress(out)
        tables = {}
        for name, path in paths.items():
            spark.read.parquet(path).createOrReplaceTempView(name)

        def raw() -> object:
            return spark.sql(JOIN).toArrow()

        def wrap(zone: FakeZone) -> FakeZone:
            def opener(dataset: str) -> SparkTable:
                return SparkTable(Location("spark", ("parquet", paths[dataset]), MASTER))

            return remote_copy(zone, opener=opener)

    long = {"timeout_seconds": 24 * 3600}
    cases: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
        ("governed", {"sql": JOIN}, {**AGG_RULES, "threshold_jitter": 0, **long}),
        ("dp", {"sql": DP, "epsilon": 1.0}, {**DP_RULES, **long}),
    ]
    out["raw"] = measure(raw)
    _progress(out)
    for label, spec, rules in cases:
        zone = wrap(make_fake_zone(rules, rules))
        released: list[int] = []
        out[label] = measure(
            lambda z=zone, s=spec, r=released: r.append(len(z.submit("analyst", s)["rows"]))
        )
        out[label]["groups"] = released[0]
        _progress(out)
    again = measure(raw)  # (the first run also warmed the engine up: the faster one counts)
    if again["wall_s"] < out["raw"]["wall_s"]:
        out["raw"] = again
        _progress(out)
    return out


def _child(folder: Path, engine: str, spark_memory: str, limit_s: float) -> dict[str, Any]:
    """Run one case in a fresh process (group); after ``limit_s`` stop it, JVM included,
    and keep the figures it had printed."""
    env = dict(os.environ)
    env["PYSPARK_SUBMIT_ARGS"] = (
        f"--driver-memory {spark_memory} --conf spark.driver.maxResultSize=0 pyspark-shell"
    )
    proc = subprocess.Popen(
        [sys.executable, __file__, "--case", str(folder), "--engines", engine],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    stopped = False
    try:
        stdout, stderr = proc.communicate(timeout=limit_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        stopped = True
    found: dict[str, Any] = {"engine": engine}
    for line in stdout.splitlines():
        if line.startswith("{"):
            found = dict(json.loads(line))
    if stopped:
        found["stopped"] = f"stopped after {limit_s:.0f} s"
    elif proc.returncode != 0:
        tail = (stderr or "").strip().splitlines()[-3:]
        found["error"] = " | ".join(tail) or f"exit {proc.returncode}"
    return found


def _report(rows: int, result: dict[str, Any]) -> None:
    engine = result["engine"]
    for why in ("error", "stopped"):
        if why in result:
            print(f"{rows:>11,} {engine:7s} did not finish ({result[why]}); figures so far:")
    if "load" in result:
        load = result["load"]
        print(f"{rows:>11,} {engine:7s} start/load {load['wall_s']:7.1f} s "
              f"{load['peak_gb']:5.2f} GB", flush=True)  # fmt: skip
    raw = result.get("raw")
    for label in ("raw", "governed", "dp"):
        r = result.get(label)
        if r is None:
            print(f"{'':11s} {'':7s} {label:9s} not measured", flush=True)
            continue
        ratio = (
            f" ({r['wall_s'] / raw['wall_s']:5.1f}x)",
            f" ({r['cpu_s'] / max(raw['cpu_s'], 1e-9):5.1f}x)",
        ) if raw else ("", "")  # fmt: skip
        print(
            f"{'':11s} {'':7s} {label:9s} {r['wall_s']:8.1f} s{ratio[0]}"
            f"  cpu {r['cpu_s']:8.1f} s{ratio[1]}  peak {r['peak_gb']:5.2f} GB"
            + (f"  {r['groups']} groups" if "groups" in r else ""),
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", default="1000000,10000000,50000000")
    parser.add_argument("--engines", default="duckdb,spark")
    parser.add_argument("--data", default="/tmp/cz-scale", help="where the Parquet files go")
    parser.add_argument("--spark-memory", default="6g", help="the Spark driver's heap")
    parser.add_argument("--limit", type=float, default=4 * 3600, help="seconds per case")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        run_case(Path(args.case), args.engines)
        return
    for rows in (int(r) for r in args.rows.split(",")):
        started = time.perf_counter()
        folder = generate(Path(args.data), rows)
        print(f"{rows:>11,} rows: data ready in {time.perf_counter() - started:.1f} s "
              f"({sum(f.stat().st_size for f in folder.glob('*.parquet')) / 2**20:.0f} MiB "
              "Parquet)", flush=True)  # fmt: skip
        for engine in args.engines.split(","):
            _report(rows, _child(folder, engine, args.spark_memory, args.limit))


if __name__ == "__main__":
    main()
