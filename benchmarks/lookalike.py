"""Look-alike benchmark: the technique's train + score + audience vs plain scikit-learn.

Both sides fit the same allowlisted pipeline on the same overlap rows and score the same
non-overlap partner customers, single-threaded, in the same process; the ratio is
technique time / plain time (issue 17's target: <= 1.3). The plain side is timed on
DataFrames prepared beforehand (fit + predict_proba + rank only). The technique side is the real
``plan -> check -> run -> release`` over Arrow tables (DuckDB join and anti-join, label
randomized response off, delivery coin, audience draw); the zone's decryption of the two
datasets is not included (docs/benchmarks.md gives the ingest figures). The sealed-code
sandbox start-up (unshare + chroot + rlimits + Python start) is timed on its own.

    .venv/bin/python benchmarks/lookalike.py                      # 100k overlap, 1M scored
    .venv/bin/python benchmarks/lookalike.py --scored 100000 --overlap 10000 --runs 1
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from collabzone.techniques.lookalike import build_model, single_threaded
from collabzone.techniques.lookalike._local import LocalContext, run_local
from collabzone.techniques.lookalike._synthetic import PARTNER_COLUMNS, SEED_COLUMNS, generate


def _clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def _since(start: tuple[float, float]) -> tuple[float, float]:
    """(wall, CPU) seconds since ``start``: CPU time (all threads of this process) is the
    figure that holds on a machine shared with other jobs; wall time is printed too."""
    return time.perf_counter() - start[0], time.process_time() - start[1]


def frames(partner: pa.Table, seed: pa.Table) -> tuple[Any, Any, Any]:
    """Training rows, their labels and the rows to score, as DataFrames (untimed)."""
    con = duckdb.connect()
    con.register("partner", partner)
    con.register("seed", seed)
    train = con.execute(
        "SELECT p.age, p.income, p.region, s.bought FROM partner p JOIN seed s "
        "USING (link_email) ORDER BY p.link_email"
    ).df()
    rest = con.execute(
        "SELECT age, income, region FROM partner WHERE link_email NOT IN "
        "(SELECT link_email FROM seed) ORDER BY link_email"
    ).df()
    labels = train.pop("bought").to_numpy(bool)
    return train, labels, rest


def plain(train: Any, labels: Any, rest: Any, model: str) -> tuple[float, float]:
    """Seconds for the bare pipeline on prepared frames: fit on two thirds, score, rank.

    The data preparation is left out of this side's time (a conservative baseline: the
    technique's time includes its joins, the coin and the audience)."""
    fit = np.random.default_rng(0).permutation(len(train))[len(train) // 3 :]
    start = _clock()
    pipeline = build_model(model, ["age", "income"], ["region"], seed=0)
    with single_threaded():
        pipeline.fit(train.iloc[fit], labels[fit])
        scores = pipeline.predict_proba(rest)[:, 1]
    np.argsort(-scores)[:1000]
    return _since(start)


def technique(partner: pa.Table, seed: pa.Table, model: str) -> tuple[float, float]:
    ctx = LocalContext(
        {"partner": ("partner", partner, PARTNER_COLUMNS), "seed": ("bank", seed, SEED_COLUMNS)},
        requester="bank",
        rules={"partner": {"min_audience": 100, "allowed_models": [model]}},
        key=b"b" * 32,
    )
    spec = {"seed": "seed", "label": "bought", "features": "partner", "model": model,
            "audience_size": 1000}  # fmt: skip
    start = _clock()
    run_local(ctx, spec)
    return _since(start)


def sandbox_startup(runs: int) -> float | None:
    from collabzone.techniques.sealed import Limits, isolation_mode, run_sealed

    if isolation_mode() is None:
        return None
    code = "def f(inputs):\n    return []\n"
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        run_sealed(code, "f", {"x": []}, {"token": "string"}, Limits())
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--overlap", type=int, default=100_000, help="overlap (training) rows")
    parser.add_argument("--scored", type=int, default=1_000_000, help="non-overlap rows scored")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--model", default="gradient_boosting")
    args = parser.parse_args()
    rows = args.overlap + args.scored
    data = generate(rows, overlap_share=args.overlap / rows, seed=1)
    print(f"partner rows {rows:,}, overlap {len(data.overlap):,}, model {args.model}")
    warm = generate(3000, overlap_share=0.3, seed=2)  # imports and caches, both sides
    plain(*frames(warm.partner, warm.seed), args.model)
    technique(warm.partner, warm.seed, args.model)
    prepared = frames(data.partner, data.seed)
    ratios = []
    for run in range(args.runs):
        base = plain(*prepared, args.model)
        ours = technique(data.partner, data.seed, args.model)
        ratios.append(ours[1] / base[1])
        print(
            f"run {run + 1}: plain scikit-learn CPU {base[1]:.2f} s (wall {base[0]:.2f}), "
            f"technique CPU {ours[1]:.2f} s (wall {ours[0]:.2f}); CPU ratio "
            f"{ours[1] / base[1]:.2f}, wall ratio {ours[0] / base[0]:.2f}"
        )
    print(f"median CPU ratio {statistics.median(ratios):.2f} (target <= 1.3)")
    startup = sandbox_startup(5)
    print(
        "sealed sandbox start-up: "
        + ("unavailable here" if startup is None else f"{startup * 1000:.0f} ms (median of 5)")
    )


if __name__ == "__main__":
    main()
