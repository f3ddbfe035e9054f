"""Benchmark of DP post-processing: the SELECT list, HAVING, ORDER BY and LIMIT evaluated
on released noisy values, against the OpenDP release of the same groups (figures printed;
nothing asserted).

    .venv/bin/python benchmarks/sql_postprocess.py [--groups 1000] [--repeat 5]

For each query shape it times ``_postprocess.answer`` (values, intervals, labels) and
``_dp.release`` (the noise itself) on the same groups in the same process and prints the
ratio: post-processing is free in privacy, and this says what it costs in time.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import time
from collections.abc import Callable
from functools import partial

from collabzone.model import Column, Dataset
from collabzone.techniques.sql import _postprocess
from collabzone.techniques.sql._compile import compile_request
from collabzone.techniques.sql._dp import Measure, release

NOW = dt.datetime(2026, 12, 2, tzinfo=dt.UTC)
SHAPES = {
    "plain": "SELECT g, COUNT(*) AS n, SUM(x) AS s FROM t GROUP BY g",
    "avg": "SELECT g, COUNT(*) AS n, SUM(x) AS s, AVG(x) AS a FROM t GROUP BY g",
    "expressions": (
        "SELECT g, COUNT(*) AS n, SUM(x) / COUNT(*) AS ratio, POWER(AVG(x), 2) AS sq, "
        "ROUND(AVG(x), 1) AS r FROM t GROUP BY g HAVING n > 10 ORDER BY ratio DESC LIMIT 100"
    ),
}


def _median_ms(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--groups", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    keys = [(f"g{i:05d}",) for i in range(args.groups)]
    table = Dataset(
        name="t", owner="o", row_count=args.groups * 100, version=1, created_at=NOW,
        columns=(
            Column.model_validate({"name": "id", "type": "string", "class": "join_key"}),
            Column.model_validate({"name": "g", "type": "string", "class": "dimension",
                                   "domain": [k[0] for k in keys]}),
            Column.model_validate({"name": "x", "type": "float", "class": "measure",
                                   "domain": {"min": 0, "max": 100}}),
        ),
    )  # fmt: skip
    rules = {"analysis": ["dp"], "max_rows_per_entity": 1, "max_groups_per_entity": 1}
    figures = {}
    for shape, sql in SHAPES.items():
        compiled = compile_request({"sql": sql, "epsilon": 1.0}, [table], {"t": [rules]}, "a")
        assert not compiled.reasons and compiled.budget is not None, compiled.reasons
        data = {q.name: [100 + i for i in range(len(keys))] for q in compiled.quantities}
        measures = [
            Measure(q.name, max(abs(q.bound.low), abs(q.bound.high)) if q.bound else 1)
            for q in compiled.quantities
        ]
        budget = compiled.budget
        noisy = release(keys, data, measures, budget=budget, max_groups=1, public_keys=keys)
        noise = partial(release, keys, data, measures, budget=budget, max_groups=1,
                        public_keys=keys)  # fmt: skip
        unit = {q.name: q.bound.scale if q.bound else 1 for q in compiled.quantities}
        post_ms = _median_ms(
            lambda c=compiled, n=noisy, u=unit: _postprocess.answer(c, n, u, 0.05), args.repeat
        )
        noise_ms = _median_ms(noise, args.repeat)
        figures[shape] = {
            "groups": len(keys),
            "postprocess_ms": round(post_ms, 2),
            "release_ms": round(noise_ms, 2),
            "postprocess_over_release": round(post_ms / noise_ms, 3),
        }
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
