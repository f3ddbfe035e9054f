"""Benchmark: optimal full-domain search on ARX's Adult (30,162 rows, 9 hierarchies).

Runs the Flash-style search (median of --repeats runs, each on a fresh lattice so nothing
is cached) and, once per scenario, the exhaustive search on the same problem, and prints
nodes checked, times (wall clock, and CPU time of this process, which other jobs on a
shared machine disturb less), the ratio, and whether both found the same optimal score.

Then the scale cases, each in a fresh child process so its peak resident memory (RSS) is
its own; the child also prints its RSS after the imports (the baseline):

* ``zip90k``: a 90,000-leaf ZIP hierarchy (10000..99999 masked digit by digit) on the
  32,561 rows of UCI Adult (ZIPs drawn with a fixed seed) with sex, age and race, k = 5;
* ``adult9``: the 32,561 rows of UCI Adult (adult.data) with the 9 QIs and ARX's
  hierarchies (values ARX's hierarchies lack, such as ``?``, get their own branch), k = 5;
* ``synthetic1m``: 1,000,000 rows, 10 QIs, fixed seed, k = 5.

    .venv/bin/python benchmarks/deid.py [--repeats 5] [--skip-exhaustive] [--scale-only]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from collabzone.techniques.deid import (
    EntropyLDiversity,
    Hierarchy,
    KAnonymity,
    Lattice,
    encode,
    exhaustive,
    flash,
    read_arx_csv,
)
from collabzone.techniques.deid._hierarchy import flat, masking, tree
from collabzone.techniques.deid._search import search

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
DATA = SHARED / "arx_adult"
UCI = SHARED / "uci_adult_full" / "adult.data"
UCI_COLUMNS = {
    "age": 0, "workclass": 1, "education": 3, "marital-status": 5, "occupation": 6,
    "race": 8, "sex": 9, "native-country": 13, "salary-class": 14,
}  # fmt: skip
SCALE_CASES = ("zip90k", "adult9", "synthetic1m")
COLUMNS = [
    "sex", "age", "race", "marital-status", "education", "native-country", "workclass",
    "occupation", "salary-class",
]  # fmt: skip


def _peak_mb() -> float:
    """This process's peak resident memory: VmHWM (reset by exec, unlike ru_maxrss, which
    Linux carries over from the parent process)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _with_branch(h: Hierarchy, values: set[str]) -> Hierarchy:
    """ARX's hierarchy plus one branch per value it lacks (the value up to the top)."""
    missing = sorted(values - set(h.leaves))
    rows = [list(r) for r in h.rows] + [[v] * h.height + ["*"] for v in missing]
    return Hierarchy.from_rows(h.attribute, rows, numeric=False)


def _uci_adult() -> tuple[pa.Table, dict[str, Hierarchy]]:
    text = [line.split(", ") for line in UCI.read_text().splitlines() if line.strip()]
    table = pa.table({c: [row[i].strip() for row in text] for c, i in UCI_COLUMNS.items()})
    hs = {
        c: _with_branch(
            read_arx_csv(DATA / f"adult_hierarchy_{c}.csv", c), set(table.column(c).to_pylist())
        )
        for c in COLUMNS
    }
    return table, hs


def _synthetic(rows: int) -> tuple[pa.Table, dict[str, Hierarchy]]:
    """10 QIs with skewed value frequencies (Dirichlet weights), fixed seed; built from
    index arrays (pyarrow ``take``), never a million Python strings."""
    rng = np.random.default_rng(20261202)
    columns: dict[str, pa.Array] = {}
    hs: dict[str, Hierarchy] = {}

    def skewed(values: list[str]) -> pa.Array:
        p = rng.dirichlet(np.full(len(values), 0.5))
        return pa.array(values).take(pa.array(rng.choice(len(values), size=rows, p=p)))

    zips = [str(v) for v in range(100, 1000)]
    columns["zip3"], hs["zip3"] = skewed(zips), masking("zip3", zips)
    columns["age"] = skewed([str(a) for a in range(100)])
    hs["age"] = Hierarchy.from_rows(
        "age",
        [[str(a), f"{a // 10 * 10}-{a // 10 * 10 + 9}", f"{a // 20 * 20}-{a // 20 * 20 + 19}", "*"]
         for a in range(100)],
    )  # fmt: skip
    columns["sex"], hs["sex"] = skewed(["m", "f"]), flat("sex", ["m", "f"])
    for c in range(7):
        name, width = f"cat{c}", (12 if c < 4 else 6)
        values = [f"{name}_{v}" for v in range(width)]
        columns[name] = skewed(values)
        if c < 4:  # height 3: two groups of two subgroups of three
            nested = {
                f"g{top}": {f"s{g}": values[3 * g : 3 * g + 3] for g in (2 * top, 2 * top + 1)}
                for top in range(2)
            }
            hs[name] = tree(name, nested)
        else:  # height 1
            hs[name] = flat(name, values)
    return pa.table(columns), hs


def run_case(case: str) -> None:
    """One scale case in this process: print its figures, peak RSS included."""
    baseline = _peak_mb()
    started = time.perf_counter()
    if case == "zip90k":
        table, hs = _uci_adult()
        rng = np.random.default_rng(90000)
        zips = [str(z) for z in rng.integers(10000, 100000, size=table.num_rows).tolist()]
        table = table.append_column("zip", pa.array(zips))
        hs["zip"] = masking("zip", [str(z) for z in range(10000, 100000)])
        qis = ["zip", "sex", "age", "race"]
    elif case == "adult9":
        table, hs = _uci_adult()
        qis = COLUMNS
    else:
        table, hs = _synthetic(1_000_000)
        qis = list(hs)
    loaded = time.perf_counter()
    loaded_mb = _peak_mb()
    encoded = encode(table, qis, hs)
    encoded_at = time.perf_counter()
    lattice = Lattice(encoded, [KAnonymity(5)], 0.0)
    result = search(lattice)
    done = time.perf_counter()
    best = result.best
    leaves = max(len(hs[q].rows) for q in qis)
    print(
        f"{case:12} rows {table.num_rows:>9,} QIs {len(qis):>2} largest hierarchy {leaves:>6,} "
        f"leaves lattice {lattice.size:>7,} checked {result.checked:>5} ({result.algorithm}) "
        f"load {loaded - started:6.2f} s encode {encoded_at - loaded:6.2f} s search "
        f"{done - encoded_at:7.2f} s peak RSS {_peak_mb():7.1f} MB (after imports "
        f"{baseline:5.1f} MB, after loading {loaded_mb:5.1f} MB) node {None if best is None else list(best.levels)}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip-exhaustive", action="store_true")
    parser.add_argument("--scale-only", action="store_true")
    parser.add_argument("--case", choices=SCALE_CASES, help="run one scale case here")
    args = parser.parse_args()
    if args.case:
        run_case(args.case)
        return
    if not args.scale_only:
        adult_search(args)
    print("scale cases (each in a fresh process):")
    for case in SCALE_CASES:
        subprocess.run([sys.executable, __file__, "--case", case], check=True)


def adult_search(args: argparse.Namespace) -> None:
    """Flash against exhaustive on ARX's Adult (30,162 rows, 9 QIs)."""
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
