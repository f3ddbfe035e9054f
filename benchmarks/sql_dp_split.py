"""Where the DP GROUP BY's CPU time goes (``benchmarks/sql.py --part dp``'s query), step by
step, and its governed / raw DuckDB CPU ratio (figures printed; nothing asserted).

    PYTHONPATH=src:. .venv/bin/python benchmarks/sql_dp_split.py            # the split
    PYTHONPATH=src:. .venv/bin/python benchmarks/sql_dp_split.py --ratio    # one JSON line

Each step is timed with ``time.process_time`` (every thread of the process, DuckDB's
included) by wrapping the module function that does it; nested steps are counted in
both (``release`` holds OpenDP's ``measurement_invoke``). ``--ratio`` run alternately
with ``PYTHONPATH=<other checkout>/src:.`` compares two versions of the code (they cannot
be imported into one process).
"""

from __future__ import annotations

import argparse
import collections
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

from benchmarks.sql import _dp_runs

STEPS = [
    ("collabzone.techniques.sql._technique", "compile_for"),
    ("collabzone.techniques.sql._technique", "configure"),
    ("collabzone.techniques.sql._run_dp", "_dp_cache_key"),
    ("collabzone.techniques.sql._run_dp", "release"),
    ("collabzone.techniques.sql._run_dp", "dwarfed"),
    ("collabzone.techniques.sql._run_dp", "_json_column"),
    ("collabzone.techniques.sql._run_dp", "_saturated"),
    ("collabzone.techniques.sql._postprocess", "answer"),
    ("collabzone.techniques.sql._engines", "execute"),
    ("collabzone.techniques.sql._dp", "i64_map"),
    ("opendp.core", "measurement_invoke"),
]


def _wrap(spent: collections.defaultdict[str, float]) -> None:
    """Replace each step by a wrapper adding its CPU time to ``spent``."""
    import importlib

    for module_name, name in STEPS:
        module = importlib.import_module(module_name)
        inner = getattr(module, name, None)
        if inner is None:  # (a step another version of the code does not have)
            continue
        label = f"{module_name.rsplit('.', 1)[-1]}.{name}"

        def timed(*args: Any, _inner: Any = inner, _label: str = label, **kwargs: Any) -> Any:
            start = time.process_time()
            try:
                return _inner(*args, **kwargs)
            finally:
                spent[_label] += time.process_time() - start

        setattr(module, name, timed)


def _cpu(run: Callable[[], object]) -> float:
    start = time.process_time()
    run()
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ratio", action="store_true", help="governed / raw CPU only")
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    spent: collections.defaultdict[str, float] = collections.defaultdict(float)
    if not args.ratio:
        _wrap(spent)
    runs = _dp_runs(1_000_000, 1000)
    governed, raw = runs["unique"], runs["raw"]
    for _ in range(3):  # warm up (OpenDP's calibration caches, DuckDB)
        governed(), raw()
    spent.clear()
    raw_cpu, governed_cpu = [], []
    for _ in range(args.runs):
        raw_cpu.append(_cpu(raw))
        governed_cpu.append(_cpu(governed))
    g, r = statistics.median(governed_cpu), statistics.median(raw_cpu)
    if args.ratio:
        import collabzone

        print(json.dumps({"code": collabzone.__file__, "governed_ms": round(g * 1e3, 1),
                          "raw_ms": round(r * 1e3, 1), "ratio": round(g / r, 3)}))  # fmt: skip
        return
    print(f"raw DuckDB {r * 1e3:.1f} ms CPU, governed DP {g * 1e3:.1f} ms CPU (medians)")
    for label, seconds in sorted(spent.items(), key=lambda item: -item[1]):
        print(f"  {label:40s} {seconds / args.runs * 1e3:7.2f} ms per query (mean)")


if __name__ == "__main__":
    main()
