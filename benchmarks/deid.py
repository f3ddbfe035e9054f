"""Benchmark: optimal full-domain search on ARX's Adult (30,162 rows, 9 hierarchies).

Runs the Flash-style search (median of --repeats runs, each on a fresh lattice so nothing
is cached) and, once per scenario, the exhaustive search on the same problem, and prints
nodes checked, times (wall clock, and CPU time of this process, which other jobs on a
shared machine disturb less), the ratio, and whether both found the same optimal score.

    .venv/bin/python benchmarks/deid.py [--repeats 5] [--skip-exhaustive]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow.csv as pacsv

from collabzone.techniques.deid import (
    EntropyLDiversity,
    KAnonymity,
    Lattice,
    encode,
    exhaustive,
    flash,
    read_arx_csv,
)

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "arx_adult"
COLUMNS = [
    "sex", "age", "race", "marital-status", "education", "native-country", "workclass",
    "occupation", "salary-class",
]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip-exhaustive", action="store_true")
    args = parser.parse_args()

    table = pacsv.read_csv(DATA / "adult.csv", parse_options=pacsv.ParseOptions(delimiter=";"))
    hierarchies = {c: read_arx_csv(DATA / f"adult_hierarchy_{c}.csv", c) for c in COLUMNS}
    started = time.perf_counter()
    all_qis = encode(table, COLUMNS, hierarchies)
    encode_s = time.perf_counter() - started
    without_occupation = [c for c in COLUMNS if c != "occupation"]
    with_sensitive = encode(table, without_occupation, hierarchies, ["occupation"])
    print(f"Adult: {table.num_rows} rows; encoding 9 QIs took {encode_s:.3f} s (once, excluded)")

    scenarios: list[tuple[str, Callable[[], Lattice]]] = [
        ("k=5, 0% suppression", lambda: Lattice(all_qis, [KAnonymity(5)], 0.0)),
        ("k=5, 4% suppression", lambda: Lattice(all_qis, [KAnonymity(5)], 0.04)),
        (
            "entropy-l=5 on occupation, 0%",
            lambda: Lattice(with_sensitive, [EntropyLDiversity("occupation", 5)], 0.0),
        ),
    ]
    header = (
        f"{'scenario':32} {'nodes':>6} {'flash checked':>13} {'flash median s':>14} {'cpu s':>6} "
        f"{'exh. checked':>12} {'exh. s':>8} {'speed-up':>8} {'same optimum':>12}"
    )
    print(header)
    for name, make in scenarios:
        times, cpu, checked, score = [], [], 0, None
        for _ in range(args.repeats):
            lattice = make()
            started, cpu_started = time.perf_counter(), time.process_time()
            result = flash(lattice)
            times.append(time.perf_counter() - started)
            cpu.append(time.process_time() - cpu_started)
            checked = result.checked
            score = None if result.best is None else result.best.score
        median, cpu_median = statistics.median(times), statistics.median(cpu)
        if args.skip_exhaustive:
            print(f"{name:32} {lattice.size:>6} {checked:>13} {median:>14.3f} {cpu_median:>6.3f}")
            continue
        lattice = make()
        started = time.perf_counter()
        reference = exhaustive(lattice)
        exh_s = time.perf_counter() - started
        ref_score = None if reference.best is None else reference.best.score
        print(
            f"{name:32} {lattice.size:>6} {checked:>13} {median:>14.3f} {cpu_median:>6.3f} "
            f"{reference.checked:>12} {exh_s:>8.2f} {exh_s / median:>7.1f}x "
            f"{score == ref_score!s:>12}"
        )


if __name__ == "__main__":
    main()
