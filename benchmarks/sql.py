"""Benchmarks of governed SQL (figures printed; nothing asserted).

    .venv/bin/python benchmarks/sql.py                 # all three parts
    .venv/bin/python benchmarks/sql.py --part frontend  # parse + check + rewrite, 50 queries
    .venv/bin/python benchmarks/sql.py --part join      # governed vs raw DuckDB, 10M x 10M join
    .venv/bin/python benchmarks/sql.py --part dp        # DP GROUP BY 1M rows / 1000 groups,
                                                        # vs raw DuckDB and smartnoise-sql
    .venv/bin/python benchmarks/sql.py --part dpjoin    # DP GROUP BY over a 1M x 1M join
                                                        # vs raw DuckDB (time, CPU, memory)
    .venv/bin/python benchmarks/sql.py --part dpjoin --dp-join-rows 10000000 --repeat 1
    .venv/bin/python benchmarks/sql.py --part dpjoin --dp-join-key-repeat 3  # keys repeat
    .venv/bin/python benchmarks/sql.py --part dpjoin --dp-join-paths bounded,shipped
        # the bounded path with public groups packed (shipped) and as before (``shipped``:
        # the struct form), each against raw DuckDB, and against each other (alternated)

smartnoise-sql pins opendp<0.15 and pandas<3, so it runs in its own environment, made once:

    python3.11 -m venv /tmp/snsql-venv && /tmp/snsql-venv/bin/pip install smartnoise-sql==1.0.10

(``--snsql-python`` points elsewhere; the comparison is skipped, and said so, if absent.)
Ratios are taken against a baseline run in the same process on the same data, in wall
time and in CPU time of the process (``*_cpu_*``: steadier on a loaded machine); peak
memory is the resident high-water mark each path adds (reset in between, Linux only).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

from collabzone.budget import PrivacyCost
from collabzone.model import Agreement, Approval, Column, Dataset, Party, Role
from collabzone.techniques.sql import GovernedSQL, compile_request
from collabzone.techniques.sql.rules import packed_bounding

NOW = dt.datetime(2026, 11, 25, tzinfo=dt.UTC)


def _col(name: str, type_: str, class_: str, domain: Any = None) -> Column:
    return Column.model_validate({"name": name, "type": type_, "class": class_, "domain": domain})


def _dataset(name: str, columns: list[Column]) -> Dataset:
    return Dataset(
        name=name, owner=name, columns=tuple(columns), row_count=0, version=1, created_at=NOW
    )


def _agreement(ds: str, rules: Mapping[str, Any]) -> Agreement:
    return Agreement(id=f"a-{ds}", dataset=ds, owner=ds, grantees=("*",), technique="sql",
                     purposes=("*",), rules=dict(rules), approval=Approval.AUTO, valid_from=NOW,
                     valid_until=None, created_at=NOW)  # fmt: skip


class BenchContext:
    """Just enough RunContext for the technique over a prepared DuckDB connection."""

    def __init__(self, con: duckdb.DuckDBPyConnection, datasets: list[Dataset],
                 agreements: list[Agreement]) -> None:  # fmt: skip
        self._con, self._datasets, self._agreements = con, datasets, agreements
        self.requester = Party(name="analyst", roles=(Role.ANALYST,), created_at=NOW)
        self.now = NOW

    def dataset(self, name: str) -> Dataset:
        return next(d for d in self._datasets if d.name == name)

    def visible_datasets(self) -> list[Dataset]:
        return self._datasets

    def agreements_for(self, dataset: str) -> list[Agreement]:
        return [a for a in self._agreements if a.dataset == dataset]

    def party(self, name: str) -> Party:
        return self.requester

    def connection(self) -> duckdb.DuckDBPyConnection:
        return self._con

    def spent(self, dataset: str) -> PrivacyCost:
        return PrivacyCost()

    def history(self, dataset: str) -> list[Mapping[str, Any]]:
        return []

    def audit_state(self, space: str) -> tuple[int, bytes] | None:
        return None  # a fresh audited space: the cost of auditing one more release

    def derive_key(self, purpose: str, length: int = 32) -> bytes:
        return bytes(length)


def _paired(
    base: Callable[[], object], other: Callable[[], object], repeat: int
) -> tuple[float, float]:
    """Median times of ``base`` and ``other`` run alternately (a shared, busy machine slows
    both alike, so their ratio is steadier than two separate series)."""
    a: list[float] = []
    b: list[float] = []
    for _ in range(repeat):
        for fn, out in ((base, a), (other, b)):
            start = time.perf_counter()
            fn()
            out.append(time.perf_counter() - start)
    return statistics.median(a), statistics.median(b)


def _cpu_paired(
    base: Callable[[], object], other: Callable[[], object], repeat: int
) -> tuple[float, float]:
    """Median CPU seconds of this process (every DuckDB thread included) for ``base`` and
    ``other``, run alternately: on a loaded machine wall time mostly measures the others'
    jobs; CPU time measures the work done."""
    a: list[float] = []
    b: list[float] = []
    for _ in range(repeat):
        for fn, out in ((base, a), (other, b)):
            start = time.process_time()
            fn()
            out.append(time.process_time() - start)
    return statistics.median(a), statistics.median(b)


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _peak_rss_mb(fn: Callable[[], object]) -> float | None:
    """Peak resident memory ``fn`` adds above the process's current size, in MB: the
    kernel's high-water mark is reset first (``/proc/self/clear_refs`` 5, Linux), so two
    paths are measured in one process on the same data. None where that is not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return None
    before = _status_kb("VmRSS")
    fn()
    return max(0, _status_kb("VmHWM") - before) / 1024


def _median_time(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


BANK = _dataset("bank", [
    _col("pid", "integer", "join_key"), _col("segment", "string", "dimension"),
    _col("region", "string", "dimension"), _col("age", "integer", "dimension"),
    _col("balance", "float", "measure", {"min": 0, "max": 100000}),
    _col("converted", "integer", "measure", {"min": 0, "max": 1}),
])  # fmt: skip
SHOP = _dataset("shop", [
    _col("pid", "integer", "join_key"), _col("shop_segment", "string", "dimension"),
    _col("spend", "float", "measure", {"min": 0, "max": 1000}),
])  # fmt: skip


def typical_queries() -> list[str]:
    """50 queries of the kinds analysts send (single table, joins, filters, ordering)."""
    out = []
    for i in range(10):
        out += [
            f"SELECT segment, COUNT(*) AS n, AVG(balance) FROM bank WHERE age > {20 + i} GROUP BY segment",
            f"SELECT b.segment, s.shop_segment, COUNT(DISTINCT b.pid), SUM(s.spend) FROM bank b "
            f"JOIN shop s ON b.pid = s.pid WHERE b.region IN ('north', 'south') AND b.age BETWEEN "
            f"{18 + i} AND 65 GROUP BY b.segment, s.shop_segment ORDER BY 3 DESC LIMIT 10",
            f"SELECT region, SUM(converted) AS conv, COUNT(*) FROM bank WHERE segment <> 's{i}' "
            "GROUP BY region HAVING COUNT(*) > 100",
            f"SELECT COUNT(*) FROM bank b JOIN shop s ON b.pid = s.pid WHERE s.shop_segment = 'k{i}'",
            f"SELECT s.shop_segment, AVG(s.spend), COUNT(*) FROM shop s JOIN bank b ON s.pid = b.pid "
            f"WHERE b.segment = 'gold' OR b.age < {30 + i} GROUP BY s.shop_segment ORDER BY 1",
        ]  # fmt: skip
    return out


def bench_frontend() -> dict[str, float]:
    rules = {"bank": [{"analysis": "aggregation", "min_group_size": 10}],
             "shop": [{"analysis": "aggregation", "min_group_size": 10}]}  # fmt: skip
    queries = typical_queries()
    per_query = []
    for sql in queries:

        def once(sql: str = sql) -> None:
            compiled = compile_request({"sql": sql}, [BANK, SHOP], rules, "analyst")
            assert not compiled.reasons, compiled.reasons
            compiled.rewritten(collect_members=True).sql(dialect="duckdb")

        once()  # warm caches (sqlglot dialect tables)
        per_query.append(_median_time(once, 5))
    ms = sorted(t * 1000 for t in per_query)
    return {"queries": len(ms), "median_ms": statistics.median(ms), "p90_ms": ms[int(0.9 * len(ms))],
            "max_ms": ms[-1]}  # fmt: skip


def bench_join(rows: int, repeat: int) -> dict[str, float]:
    con = duckdb.connect()
    con.execute(f"""
        CREATE TABLE bank AS SELECT i AS pid,
            ['gold','silver','bronze','new'][1 + (hash(i) % 4)::INT] AS segment,
            ['north','south','east','west'][1 + (hash(i * 7) % 4)::INT] AS region,
            (18 + hash(i * 3) % 70)::BIGINT AS age, (hash(i * 5) % 100000)::DOUBLE AS balance,
            (hash(i * 11) % 2)::BIGINT AS converted
        FROM range({rows}) t(i)""")
    con.execute(f"""
        CREATE TABLE shop AS SELECT (i * 3) % {rows * 2} AS pid,
            ['sport','home','kids','food','toys'][1 + (hash(i * 13) % 5)::INT] AS shop_segment,
            (hash(i * 17) % 1000)::DOUBLE AS spend
        FROM range({rows}) t(i)""")
    raw = """
        SELECT b.segment, s.shop_segment, COUNT(*) AS n, SUM(s.spend) AS spend
        FROM bank b JOIN shop s ON b.pid = s.pid WHERE b.age > 25
        GROUP BY b.segment, s.shop_segment HAVING COUNT(DISTINCT b.pid) >= 10"""
    governed = ("SELECT b.segment, s.shop_segment, COUNT(*) AS n, SUM(s.spend) AS spend FROM bank b "
                "JOIN shop s ON b.pid = s.pid WHERE b.age > 25 GROUP BY b.segment, s.shop_segment")  # fmt: skip
    results = {}
    for monitor in (False, True):
        rules = {"analysis": "aggregation", "min_group_size": 10, "query_monitor": monitor}
        ctx = BenchContext(
            con, [BANK, SHOP], [_agreement("bank", rules), _agreement("shop", rules)]
        )
        technique = GovernedSQL()

        def run_governed(ctx: BenchContext = ctx, technique: GovernedSQL = technique) -> object:
            return technique.run(technique.plan({"sql": governed}, ctx), ctx)  # type: ignore[arg-type]

        def run_raw() -> object:
            return con.sql(raw).to_arrow_table()

        run_raw(), run_governed()  # warm up
        t_raw, t_gov = _paired(run_raw, run_governed, repeat)
        c_raw, c_gov = _cpu_paired(run_raw, run_governed, repeat)
        key = "with_audit" if monitor else "threshold_only"
        results[f"{key}_raw_s"] = t_raw
        results[f"{key}_governed_s"] = t_gov
        results[f"{key}_ratio"] = t_gov / t_raw
        results[f"{key}_raw_cpu_s"] = c_raw
        results[f"{key}_governed_cpu_s"] = c_gov
        results[f"{key}_cpu_ratio"] = c_gov / c_raw
    con.close()
    return results


SNSQL_SCRIPT = textwrap.dedent("""
    import json, sys, time
    import numpy as np, pandas as pd, snsql
    from snsql import Privacy
    rows, groups, repeat = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"pid": np.arange(rows), "grp": rng.integers(0, groups, rows).astype(str),
                       "v": rng.uniform(0, 100, rows)})
    meta = {"Db": {"S": {"T": {"max_ids": 1, "row_privacy": False,
            "pid": {"type": "int", "private_id": True}, "grp": {"type": "string"},
            "v": {"type": "float", "lower": 0, "upper": 100}}}}}
    reader = snsql.from_df(df, privacy=Privacy(epsilon=1.0, delta=1e-6), metadata=meta)
    query = "SELECT grp, COUNT(*) AS n, SUM(v) AS s FROM S.T GROUP BY grp"
    reader.execute(query)
    times, cpu = [], []
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        out = reader.execute(query)
        times.append(time.perf_counter() - t); cpu.append(time.process_time() - c)
    times.sort(); cpu.sort()
    print(json.dumps({"seconds": times[len(times) // 2], "cpu_seconds": cpu[len(cpu) // 2],
                      "rows_out": len(out) - 1}))
""")


def _probe_peak(part: str, path: str, rows: int, key_repeat: int = 1) -> float | None:
    """Peak memory (MB) one first run of ``path`` adds, in a fresh process of its own
    (an allocator keeps what an earlier run freed, so one process cannot compare two)."""
    done = subprocess.run(
        [sys.executable, __file__, "--probe", f"{part}:{path}", "--dp-rows", str(rows),
         "--dp-join-rows", str(rows), "--dp-join-key-repeat", str(key_repeat)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    lines = done.stdout.strip().splitlines()
    return float(lines[-1]) if done.returncode == 0 and lines and lines[-1] != "None" else None


def _probe(part: str, path: str, rows: int, groups: int, key_repeat: int) -> float | None:
    """Run one path once after the libraries are warm (OpenDP on a tiny table), and
    return the peak memory it added (``_peak_rss_mb``)."""
    runs = _dp_runs(rows, groups) if part == "dp" else _dp_join_runs(rows, key_repeat)
    tiny = _dp_runs(100, 3)
    tiny["unique"]()
    return _peak_rss_mb(runs[path])


def _dp_runs(rows: int, groups: int) -> dict[str, Callable[[], object]]:
    """The DP GROUP BY benchmark's paths on its data: raw DuckDB, governed with ``pid``
    declared unique, governed and bounded per person."""
    rng = np.random.default_rng(1)
    con = duckdb.connect()
    data = {"pid": np.arange(rows), "grp": rng.integers(0, groups, rows).astype(str),
            "v": rng.uniform(0, 100, rows)}  # fmt: skip
    import pyarrow as pa

    con.register("events", pa.table(data))
    rules = {
        "analysis": "dp",
        "max_rows_per_entity": 1,
        "max_groups_per_entity": 1,
        "dp_delta": 1e-6,
    }
    spec = {
        "sql": "SELECT grp, COUNT(*) AS n, SUM(v) AS s FROM events GROUP BY grp",
        "epsilon": 1.0,
    }
    technique = GovernedSQL()

    def governed(unique: bool) -> Callable[[], object]:
        """The governed query with ``pid`` declared unique (one row per person, checked at
        ingest, as smartnoise's ``max_ids: 1``) or not (bounded per person in the plan)."""
        pid = Column.model_validate(
            {"name": "pid", "type": "integer", "class": "join_key", "unique": unique}
        )
        events = _dataset("events", [
            pid, _col("grp", "string", "dimension"),
            _col("v", "float", "measure", {"min": 0, "max": 100}),
        ])  # fmt: skip
        ctx = BenchContext(con, [events], [_agreement("events", rules)])
        return lambda: technique.run(technique.plan(spec, ctx), ctx)  # type: ignore[arg-type]

    def run_raw() -> object:
        return con.sql("SELECT grp, COUNT(*), SUM(v) FROM events GROUP BY grp").to_arrow_table()

    return {"raw": run_raw, "unique": governed(True), "bounded": governed(False)}


def bench_dp(rows: int, groups: int, repeat: int, snsql_python: str) -> dict[str, Any]:
    runs = _dp_runs(rows, groups)
    run_raw = runs["raw"]
    run_governed, run_bounded = runs["unique"], runs["bounded"]
    run_bounded()
    _, t_bounded = _paired(run_raw, run_bounded, repeat)
    run_raw(), run_governed()
    t_raw, t_gov = _paired(run_raw, run_governed, repeat)
    c_raw, c_gov = _cpu_paired(run_raw, run_governed, repeat)
    out: dict[str, Any] = {"raw_duckdb_s": t_raw, "governed_dp_s": t_gov}
    out["dp_over_raw_ratio"] = out["governed_dp_s"] / out["raw_duckdb_s"]
    out["raw_duckdb_cpu_s"], out["governed_dp_cpu_s"] = c_raw, c_gov
    out["dp_over_raw_cpu_ratio"] = c_gov / c_raw
    out["governed_dp_bounded_s"] = t_bounded
    out["bounded_over_raw_ratio"] = t_bounded / t_raw
    peak_raw, peak_gov = _probe_peak("dp", "raw", rows), _probe_peak("dp", "unique", rows)
    out["peak_mb_raw"], out["peak_mb_dp"] = peak_raw, peak_gov
    if peak_raw and peak_gov is not None:
        out["peak_memory_ratio"] = peak_gov / peak_raw
    if Path(snsql_python).exists():
        done = subprocess.run([snsql_python, "-c", SNSQL_SCRIPT, str(rows), str(groups), str(repeat)],
                              capture_output=True, text=True, check=False)  # fmt: skip
        if done.returncode == 0:
            sn = json.loads(done.stdout.strip().splitlines()[-1])
            out["smartnoise_sql_s"] = sn["seconds"]
            out["speedup_vs_smartnoise"] = sn["seconds"] / out["governed_dp_s"]
            out["smartnoise_sql_cpu_s"] = sn["cpu_seconds"]
            out["speedup_vs_smartnoise_cpu"] = sn["cpu_seconds"] / c_gov
        else:
            out["smartnoise_sql_error"] = done.stderr.strip().splitlines()[-1:]
    else:
        out["smartnoise_sql_error"] = f"{snsql_python} not found (see the module docstring)"
    return out


def _dp_join_runs(rows: int, key_repeat: int = 1) -> dict[str, Callable[[], object]]:
    """The DP join benchmark's paths: raw DuckDB, governed with ``pid`` unique on both
    sides (no bounding step), governed and bounded per person after the join. With
    ``key_repeat`` k > 1 each shop key is on k rows (the join repeats people; the
    ``unique`` path is then not run, since its declaration would be false)."""
    con = duckdb.connect()
    con.execute(f"""
        CREATE TABLE bank AS SELECT i AS pid,
            ['gold','silver','bronze','new'][1 + (hash(i) % 4)::INT] AS segment,
            (hash(i * 5) % 100000)::DOUBLE AS balance
        FROM range({rows}) t(i)""")
    con.execute(f"""
        CREATE TABLE shop AS SELECT ((i // {key_repeat}) * 3) % {rows * 2} AS pid,
            ['sport','home','kids','food','toys'][1 + (hash(i * 13) % 5)::INT] AS shop_segment,
            (hash(i * 17) % 1000)::DOUBLE AS spend
        FROM range({rows}) t(i)""")
    sql = ("SELECT b.segment, s.shop_segment, COUNT(*) AS n, SUM(s.spend) AS spend FROM bank b "
           "JOIN shop s ON b.pid = s.pid GROUP BY b.segment, s.shop_segment")  # fmt: skip
    technique = GovernedSQL()
    spec = {"sql": sql, "epsilon": 1.0}
    rules = {"analysis": "dp", "max_rows_per_entity": 1, "max_groups_per_entity": 1,
             "timeout_seconds": 600}  # (a 10M x 10M join on a busy machine: minutes)  # fmt: skip

    def governed(unique: bool) -> Callable[[], object]:
        """pid declared unique on both sides (one row per key, checked at ingest: the
        join cannot repeat anyone, no bounding step) or not (bounded per person)."""
        pid = Column.model_validate(
            {"name": "pid", "type": "integer", "class": "join_key", "unique": unique}
        )
        bank = _dataset("bank", [
            pid, _col("segment", "string", "dimension", ["gold", "silver", "bronze", "new"]),
            _col("balance", "float", "measure", {"min": 0, "max": 100000}),
        ])  # fmt: skip
        shop = _dataset("shop", [
            pid,
            _col("shop_segment", "string", "dimension", ["sport", "home", "kids", "food", "toys"]),
            _col("spend", "float", "measure", {"min": 0, "max": 1000}),
        ])  # fmt: skip
        agreements = [_agreement("bank", rules), _agreement("shop", rules)]
        ctx = BenchContext(con, [bank, shop], agreements)
        return lambda: technique.run(technique.plan(spec, ctx), ctx)  # type: ignore[arg-type]

    def run_raw() -> object:
        return con.sql(sql).to_arrow_table()

    bounded = governed(False)

    def shipped() -> object:
        """The bounded path in the struct form (the packing of public groups off)."""
        packed_bounding.PACKING = False
        try:
            return bounded()
        finally:
            packed_bounding.PACKING = True

    return {"raw": run_raw, "unique": governed(True), "bounded": bounded, "shipped": shipped}


def bench_dp_join(
    rows: int, repeat: int, key_repeat: int = 1, paths: tuple[str, ...] = ("unique", "bounded")
) -> dict[str, Any]:
    """DP GROUP BY over a join vs the same join and GROUP BY in raw DuckDB: wall and CPU
    ratios, and peak memory (each path's first run in a fresh process)."""
    runs = _dp_join_runs(rows, key_repeat)
    run_raw = runs["raw"]
    out: dict[str, Any] = {"rows_each_side": rows, "shop_rows_per_key": key_repeat}
    if "bounded" in paths and "shipped" in paths:  # the two forms alternated, same data
        runs["shipped"](), runs["bounded"]()
        c_shipped, c_packed = _cpu_paired(runs["shipped"], runs["bounded"], repeat)
        out["packed_vs_shipped_cpu"] = {
            "shipped_cpu_s": c_shipped, "packed_cpu_s": c_packed, "ratio": c_packed / c_shipped
        }  # fmt: skip
    for label in paths if key_repeat == 1 else [p for p in paths if p != "unique"]:
        run_governed = runs[label]
        run_raw(), run_governed()
        t_raw, t_gov = _paired(run_raw, run_governed, repeat)
        c_raw, c_gov = _cpu_paired(run_raw, run_governed, repeat)
        peak_raw = _probe_peak("dpjoin", "raw", rows, key_repeat)
        peak_gov = _probe_peak("dpjoin", label, rows, key_repeat)
        out[label] = {
            "raw_s": t_raw, "dp_s": t_gov, "ratio": t_gov / t_raw,
            "raw_cpu_s": c_raw, "dp_cpu_s": c_gov, "cpu_ratio": c_gov / c_raw,
            "peak_mb_raw": peak_raw, "peak_mb_dp": peak_gov,
            "peak_memory_ratio": peak_gov / peak_raw if peak_raw and peak_gov else None,
        }  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--part", choices=["all", "frontend", "join", "dp", "dpjoin"], default="all"
    )
    parser.add_argument("--dp-join-rows", type=int, default=1_000_000)
    parser.add_argument("--dp-join-key-repeat", type=int, default=1,
                        help="rows per shop key in the DP join (>1: keys repeat)")  # fmt: skip
    parser.add_argument("--dp-join-paths", default="unique,bounded",
                        help="which governed DP join paths to run (comma-separated)")  # fmt: skip
    parser.add_argument("--join-rows", type=int, default=10_000_000)
    parser.add_argument("--dp-rows", type=int, default=1_000_000)
    parser.add_argument("--dp-groups", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--snsql-python", default="/tmp/snsql-venv/bin/python")
    parser.add_argument("--probe", help=argparse.SUPPRESS)  # part:path, see _probe_peak
    args = parser.parse_args()
    if args.probe:
        part, path = args.probe.split(":")
        rows = args.dp_rows if part == "dp" else args.dp_join_rows
        print(_probe(part, path, rows, args.dp_groups, args.dp_join_key_repeat))
        return
    report: dict[str, Any] = {"duckdb": duckdb.__version__, "python": sys.version.split()[0]}
    if args.part in ("all", "frontend"):
        report["frontend"] = bench_frontend()
    if args.part in ("all", "join"):
        report["join"] = {
            "rows_each_side": args.join_rows,
            **bench_join(args.join_rows, args.repeat),
        }
    if args.part in ("all", "dp"):
        report["dp"] = {"rows": args.dp_rows, "groups": args.dp_groups,
                        **bench_dp(args.dp_rows, args.dp_groups, args.repeat, args.snsql_python)}  # fmt: skip
    if args.part in ("all", "dpjoin"):
        paths = tuple(args.dp_join_paths.split(","))
        report["dp_join"] = bench_dp_join(
            args.dp_join_rows, args.repeat, args.dp_join_key_repeat, paths
        )
    print(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    main()
