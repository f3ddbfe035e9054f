"""Look-alike benchmark: the technique's train + score + audience vs plain scikit-learn.

Both sides fit the same allowlisted pipeline on the same overlap rows and score the same
non-overlap partner customers, single-threaded, in the same process; the ratio is
technique time / plain time (issue 17's target: <= 1.3). The technique side is the real
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

import numpy as np
import pyarrow as pa

from collabzone.techniques.lookalike import build_model, single_threaded
from collabzone.techniques.lookalike._local import LocalContext, run_local
from collabzone.techniques.lookalike._synthetic import PARTNER_COLUMNS, SEED_COLUMNS, generate


def plain(partner: pa.Table, seed: pa.Table, model: str) -> float:
    """Seconds for the same pipeline without the technique: pandas merge, fit, score."""
    start = time.perf_counter()
    frame = partner.to_pandas()
    labels = seed.to_pandas()
    train = frame.merge(labels, on="link_email")
    rest = frame[~frame["link_email"].isin(labels["link_email"])]
    cut = len(train) // 3
    fit = train.sample(frac=1.0, random_state=0).iloc[cut:]
    pipeline = build_model(model, ["age", "income"], ["region"], seed=0)
    with single_threaded():
        pipeline.fit(fit[["age", "income", "region"]], fit["bought"].to_numpy(bool))
        scores = pipeline.predict_proba(rest[["age", "income", "region"]])[:, 1]
    np.argsort(-scores)[:1000]
    return time.perf_counter() - start


def technique(partner: pa.Table, seed: pa.Table, model: str) -> float:
    ctx = LocalContext(
        {"partner": ("partner", partner, PARTNER_COLUMNS), "seed": ("bank", seed, SEED_COLUMNS)},
        requester="bank",
        rules={"partner": {"min_audience": 100, "allowed_models": [model]}},
        key=b"b" * 32,
    )
    spec = {"seed": "seed", "label": "bought", "features": "partner", "model": model,
            "audience_size": 1000}  # fmt: skip
    start = time.perf_counter()
    run_local(ctx, spec)
    return time.perf_counter() - start


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
    plain(warm.partner, warm.seed, args.model)
    technique(warm.partner, warm.seed, args.model)
    ratios = []
    for run in range(args.runs):
        base = plain(data.partner, data.seed, args.model)
        ours = technique(data.partner, data.seed, args.model)
        ratios.append(ours / base)
        print(f"run {run + 1}: plain scikit-learn {base:.2f} s, technique {ours:.2f} s, "
              f"ratio {ours / base:.2f}")  # fmt: skip
    print(f"median ratio {statistics.median(ratios):.2f} (target <= 1.3)")
    startup = sandbox_startup(5)
    print(
        "sealed sandbox start-up: "
        + ("unavailable here" if startup is None else f"{startup * 1000:.0f} ms (median of 5)")
    )


if __name__ == "__main__":
    main()
