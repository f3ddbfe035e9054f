"""Runs every ARX parity case (tests/deid/arx_parity_cases.py) and prints the match count.

    PYTHONPATH=src:. python benchmarks/deid_arx_parity.py [--only PREFIX]

For each of ARX's published Adult test expectations the engine's optimum and score are
compared with ARX's; the time per case is printed so the slow ones stay visible.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pyarrow.csv as pacsv

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from collabzone.techniques.deid import read_arx_csv  # noqa: E402
from tests.deid.arx_parity_cases import ADULT_COLUMNS, CASES, matches, run_case  # noqa: E402

DATA = ROOT / ".." / "shared" / "data" / "arx_adult"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", default="", help="run the cases whose id starts with this")
    args = parser.parse_args()
    options = pacsv.ParseOptions(delimiter=";")
    adult = pacsv.read_csv(DATA / "adult.csv", parse_options=options)
    subset = pacsv.read_csv(DATA / "adult_subset.csv", parse_options=options)
    hierarchies = {c: read_arx_csv(DATA / f"adult_hierarchy_{c}.csv", c) for c in ADULT_COLUMNS}
    cases = [c for c in CASES if c.id.startswith(args.only)]
    ok = 0
    for case in cases:
        start = time.perf_counter()
        node, score = run_case(case, adult, subset, hierarchies)
        took = time.perf_counter() - start
        good = matches(case, node, score)
        ok += good
        print(
            f"{'ok  ' if good else 'DIFF'} {case.id:32s} {took:6.2f} s  ours {node} {score}"
            + ("" if good else f"  ARX {case.node} {case.score}"),
            flush=True,
        )
    print(f"{ok} of {len(cases)} ARX cases match (optimum and score)")


if __name__ == "__main__":
    main()
