"""Benchmarks of the disclosure audit (figures printed; nothing asserted).

    .venv/bin/python benchmarks/audit.py --part check   # one more release on a space of
                                                        # 1M people and 10k released cells
    .venv/bin/python benchmarks/audit.py --part join    # governed join with the audit on,
                                                        # vs the same query in raw DuckDB

``check`` builds, once, the audited space a busy collaboration would have: one million
people and ten thousand released cells (GROUP BY releases over four columns of twenty
values, with WHERE conditions), then times adding one more 20-cell release (the check a
request pays), the space's storage round trip, and a whole request's audit path. The
check is timed again on the space read back from storage (the path a request takes), with
the one-pass split of a release (``disclosure._split``) and with the general path it
falls back to (membership codes, ``refine_sparse``) as the baseline, alternately.

The check's own figures (``check_*``) come first, after one warm-up check (Numba's kernels
load from their cache on first use) and before the general path runs (its large temporary
arrays leave the allocator and the caches in another state): the median, and the minimum
as the figure a busy machine moves least.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

from collabzone import disclosure
from collabzone.disclosure import _space
from collabzone.model import Column

COLUMNS = {
    f"c{i}": Column.model_validate(
        {"name": f"c{i}", "type": "integer", "class": "dimension", "nullable": False,
         "domain": {"min": 0, "max": 19}}
    )
    for i in range(4)
}  # fmt: skip


def _times(
    fn: Callable[[], object], repeat: int, clock: Callable[[], float] = time.perf_counter
) -> list[float]:
    """``repeat`` runs of ``fn`` timed by ``clock`` (wall time, or ``time.process_time`` for
    the CPU time of this process's threads, which moves less with other jobs on the
    machine)."""
    times = []
    for _ in range(repeat):
        start = clock()
        fn()
        times.append(clock() - start)
    return times


def _median(
    fn: Callable[[], object], repeat: int, clock: Callable[[], float] = time.perf_counter
) -> float:
    """Median over ``repeat`` runs of ``clock`` (see :func:`_times`)."""
    return statistics.median(_times(fn, repeat, clock))


def _release(
    values: np.ndarray, ids: np.ndarray, rng: np.random.Generator
) -> disclosure.ReleasedCells:
    """A GROUP BY over one column, under a range condition on another (20 cells)."""
    group, other = rng.choice(4, size=2, replace=False)
    low = int(rng.integers(0, 10))
    keep = values[:, other] >= low
    cells = []
    for v in range(20):  # as the engine hands them over: each cell's people sorted
        cells.append(np.sort(ids[keep & (values[:, group] == v)]))
    return disclosure.ReleasedCells(
        members=cells,
        condition_sql=f'"c{other}" >= {low}',
        condition_literals={f"c{other}": [low]},
        group_columns=(f"c{group}",),
        own_values=[(v,) for v in range(20)],
    )


def bench_check(
    people: int, cells: int, repeat: int, space_file: str | None = None
) -> dict[str, Any]:
    rng = np.random.default_rng(7)
    values = rng.integers(0, 20, size=(people, 4))
    ids = disclosure.mix64(np.arange(people, dtype=np.uint64))
    con = duckdb.connect()
    space = disclosure.Space()
    built = time.perf_counter()
    kept = Path(space_file) if space_file else None
    if kept is not None and kept.exists():  # built by an earlier run with the same arguments
        space = disclosure.Space.from_bytes(kept.read_bytes())
        for _ in range(cells // 20):
            _release(values, ids, rng)  # the same random stream as building it
        built = float("nan")
    else:
        for _ in range(cells // 20):
            release = _release(values, ids, rng)
            space = disclosure.audit(space, release, COLUMNS, con, min_size=10).space
        built = time.perf_counter() - built
        if kept is not None:
            kept.write_bytes(space.to_bytes())
    nxt = _release(values, ids, rng)

    def check() -> object:
        return disclosure.audit(space, nxt, COLUMNS, con, min_size=10)

    check()  # warm-up: the compiled kernels load on first use
    check_wall = _times(check, repeat)
    check_cpu = _times(check, repeat, time.process_time)
    blob = space.to_bytes()
    stored = disclosure.Space.from_bytes(blob)  # the path a request takes: read from storage

    def check_stored() -> object:
        return disclosure.audit(stored, nxt, COLUMNS, con, min_size=10)

    one_pass = getattr(_space, "split_release")  # noqa: B009 (a private name swapped)

    def general(*_: object) -> None:
        return None  # the general path (membership codes, refine_sparse), same run

    # the one pass and the general path alternated on the stored space (CPU time of this
    # process, then wall time), so that a busy machine slows both alike
    cpu: dict[str, list[float]] = {"one_pass": [], "general": []}
    wall: dict[str, list[float]] = {"one_pass": [], "general": []}
    for _ in range(repeat):
        for name, split in (("one_pass", one_pass), ("general", general)):
            setattr(_space, "split_release", split)  # noqa: B010
            start_cpu, start = time.process_time(), time.perf_counter()
            check_stored()
            cpu[name].append(time.process_time() - start_cpu)
            wall[name].append(time.perf_counter() - start)
    setattr(_space, "split_release", one_pass)  # noqa: B010

    def check_and_store() -> object:
        return disclosure.audit(stored, nxt, COLUMNS, con, min_size=10).space.to_bytes()

    out = {
        "people": people,
        "released_cells": space.releases * 20,
        "regions": space.regions,
        "build_s": round(built, 1),
        "check_median_ms": round(1000 * statistics.median(check_wall), 1),
        "check_min_ms": round(1000 * min(check_wall), 1),
        "check_median_cpu_ms": round(1000 * statistics.median(check_cpu), 1),
        "stored_check_median_ms": round(1000 * statistics.median(wall["one_pass"]), 1),
        "stored_check_median_cpu_ms": round(1000 * statistics.median(cpu["one_pass"]), 1),
        "stored_check_general_path_ms": round(1000 * statistics.median(wall["general"]), 1),
        "stored_check_general_path_cpu_ms": round(1000 * statistics.median(cpu["general"]), 1),
        "check_and_store_cpu_ms": round(
            1000 * _median(check_and_store, repeat, time.process_time), 1
        ),
        "store_bytes": len(blob),
        "to_bytes_median_ms": round(1000 * _median(space.to_bytes, repeat), 1),
        "from_bytes_median_ms": round(
            1000 * _median(lambda: disclosure.Space.from_bytes(blob), repeat), 1
        ),
    }
    con.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["all", "check", "join"], default="all")
    parser.add_argument("--people", type=int, default=1_000_000)
    parser.add_argument("--cells", type=int, default=10_000)
    parser.add_argument("--join-rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument(
        "--space-file",
        help="keep the built space in this file and reuse it in later runs (building it "
        "takes minutes; the file holds only the benchmark's synthetic hashes)",
    )
    args = parser.parse_args()
    report: dict[str, Any] = {"python": sys.version.split()[0], "duckdb": duckdb.__version__}
    if args.part in ("all", "check"):
        report["check"] = bench_check(args.people, args.cells, args.repeat, args.space_file)
    if args.part in ("all", "join"):
        from benchmarks.sql import bench_join

        report["join"] = {"rows_each_side": args.join_rows, **bench_join(args.join_rows, 3)}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
