"""Synthetic data benchmark: MST and AIM on UCI Adult, MST on the NIST CRC excerpt.

Each part runs in its own process so its peak resident memory is its own:

* ``mst``: MST on the full Adult training file (32,561 rows x 15 columns) at ``--epsilon``:
  wall time, peak RSS, mean 3-way marginal TVD, next to a baseline run in the same process
  on the same kind of noisy 1-way marginals (independent columns): the TVD ratio shows
  what the tree buys.
* ``aim``: AIM on the same Adult table at epsilon 1 and 10: time, peak RSS, rounds,
  model size and the mean 1/2/3-way marginal TVD.
* ``privbayes``: PrivBayes (degree 2) on the same Adult table at pure epsilon 1 and 10:
  time, CPU time, peak RSS, TVDs, next to independent columns at the same epsilon.
* ``nist``: the fidelity report on the NIST CRC "Diverse Communities" national2019 excerpt
  (27,253 rows) as the NIST CRC scored it: MST at epsilon 1 and 10, the k-marginal score
  ``1000 * (1 - mean TVD)`` of 2- and 3-way marginals (SDNist's scale: 1000 is identical),
  and the mean TVDs.

* ``smartnoise``: smartnoise-synth's MST on the same binned Adult codes (every column
  categorical, so no budget goes to inferring bounds), scored here with the same TVDs. It
  pins opendp<0.15, pandas<3 and mbi<2, and its GAN synthesizers pull torch through opacus,
  which its MST does not import; so it runs in its own venv, made once without opacus:

    python3.11 -m venv /tmp/snsynth-venv
    /tmp/snsynth-venv/bin/pip install smartnoise-sql==1.0.10 Faker "disjoint-set>=0.9,<0.10" \
        "mbi>=1.1,<2" "pac-synth>=0.0.8,<0.0.9"
    /tmp/snsynth-venv/bin/pip install --no-deps smartnoise-synth==1.0.8

  (``SNSYNTH_PYTHON`` points elsewhere.)

    PYTHONPATH=src .venv/bin/python benchmarks/synthetic.py [--part mst|aim|privbayes|nist|smartnoise] [--epsilon 1]

Domains are read off the published data (public data sets), never done in a release.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from collabzone.techniques.synthetic.encode import TableCodec, public_domains_of, table_codec
from collabzone.techniques.synthetic.fidelity import marginal_tvd
from collabzone.techniques.synthetic.technique import rho_for

ADULT = Path("/work/shared/data/uci_adult_full/adult.data")
NIST = Path("/work/shared/data/nist_crc_diverse_communities/national2019.csv")
NAMES = [
    "age",
    "workclass",
    "fnlwgt",
    "education",
    "education_num",
    "marital",
    "occupation",
    "relationship",
    "race",
    "sex",
    "capital_gain",
    "capital_loss",
    "hours",
    "country",
    "income",
]
NIST_DROPPED = ("PINCP", "POVPIP", "INDP", "PWGTP", "WGTP")
"""Raw income, poverty ratio and industry code (their binned versions PINCP_DECILE and
INDP_CAT stay) and the two survey weights, which are not person attributes."""
DELTA = 1e-6


def _peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def _adult(bins: int) -> tuple[TableCodec, dict[str, np.ndarray]]:
    frame = pd.read_csv(ADULT, names=NAMES, skipinitialspace=True)
    codec = table_codec(public_domains_of(frame), bins=bins)
    return codec, codec.encode(frame)


def _tvds(
    codes: dict[str, np.ndarray], synthetic: dict[str, np.ndarray], codec: TableCodec
) -> dict[str, float]:
    return {f"tvd_{k}way": marginal_tvd(codes, synthetic, codec.shape, k) for k in (1, 2, 3)}


def part_mst(epsilon: float, iters: int, bins: int) -> dict[str, Any]:
    from collabzone.techniques.synthetic.mst import Spend, gaussian_measure, mst

    codec, codes = _adult(bins)
    rows = len(next(iter(codes.values())))
    rho = rho_for(epsilon, DELTA)
    start = time.perf_counter()
    spend = Spend(rho)
    independent = {}
    rng = np.random.default_rng(0)
    for name, size in codec.shape.items():
        counts = np.bincount(codes[name], minlength=size)
        noisy, _ = gaussian_measure(counts, rho / len(codec.shape), spend, name)
        p = np.clip(noisy, 0, None)
        independent[name] = rng.choice(size, rows, p=p / p.sum())
    base_time = time.perf_counter() - start
    base_tvd = marginal_tvd(codes, independent, codec.shape, 3)
    start, cpu = time.perf_counter(), time.process_time()
    result = mst(codes, codec.shape, rho, iters=iters, seed=0)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    tvds = _tvds(codes, result.codes, codec)
    return {
        "part": "mst",
        "epsilon": epsilon,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "peak_gb": _peak_gb(),
        "rho_spent": result.spend.rho,
        **tvds,
        "independent_seconds": base_time,
        "independent_tvd_3way": base_tvd,
        "ratio_tvd_3way_vs_independent": tvds["tvd_3way"] / base_tvd,
    }


def part_aim(epsilon: float, iters: int, bins: int) -> dict[str, Any]:
    from collabzone.techniques.synthetic.aim import aim

    codec, codes = _adult(bins)
    rho = rho_for(epsilon, DELTA)
    start = time.perf_counter()
    result = aim(codes, codec.shape, rho, iters=iters, seed=0)
    seconds = time.perf_counter() - start
    return {
        "part": "aim",
        "epsilon": epsilon,
        "seconds": seconds,
        "peak_gb": _peak_gb(),
        "rounds": len(result.measured),
        "model_mb": result.model_mb,
        "rho_spent": result.spend.rho,
        **_tvds(codes, result.codes, codec),
    }


def part_privbayes(epsilon: float, iters: int, bins: int) -> dict[str, Any]:
    """PrivBayes (degree 2) at pure ``epsilon``, next to independent columns from noisy
    1-way marginals at the same pure epsilon (discrete Laplace, epsilon / d each)."""
    from collabzone._opendp import dp
    from collabzone.techniques.synthetic.privbayes import privbayes

    codec, codes = _adult(bins)
    rows = len(next(iter(codes.values())))
    rng = np.random.default_rng(0)
    laplace = dp.m.make_laplace(
        dp.vector_domain(dp.atom_domain(T=int)), dp.l1_distance(T=int),
        scale=len(codec.shape) / epsilon,
    )  # fmt: skip
    independent = {}
    for name, size in codec.shape.items():
        p = np.clip(np.asarray(laplace(np.bincount(codes[name], minlength=size).tolist())), 0, None)
        independent[name] = rng.choice(size, rows, p=p / p.sum())
    base_tvd = marginal_tvd(codes, independent, codec.shape, 3)
    start, cpu = time.perf_counter(), time.process_time()
    result = privbayes(codes, codec.shape, epsilon, max_rows=rows, seed=0)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    tvds = _tvds(codes, result.codes, codec)
    return {
        "part": "privbayes",
        "epsilon": epsilon,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "peak_gb": _peak_gb(),
        "epsilon_spent": result.spend.rho,
        **tvds,
        "independent_tvd_3way": base_tvd,
        "ratio_tvd_3way_vs_independent": tvds["tvd_3way"] / base_tvd,
    }


def part_nist(epsilon: float, iters: int, bins: int) -> dict[str, Any]:
    from collabzone.techniques.synthetic.fidelity import fidelity_report
    from collabzone.techniques.synthetic.mst import mst

    frame = pd.read_csv(NIST, dtype=str).drop(columns=list(NIST_DROPPED))
    domains = public_domains_of(frame, bins_numeric=False)
    domains["AGEP"] = {"min": 0.0, "max": 99.0}  # the only numeric column left: binned
    codec = table_codec(domains, bins=bins)
    codes = codec.encode(frame)
    start = time.perf_counter()
    result = mst(codes, codec.shape, rho_for(epsilon, DELTA), iters=iters, seed=0)
    seconds = time.perf_counter() - start
    report = fidelity_report(codes, result.codes, codec.shape)
    return {
        "part": "nist",
        "epsilon": epsilon,
        "rows": len(frame),
        "columns": len(codec.shape),
        "seconds": seconds,
        "peak_gb": _peak_gb(),
        **report,
        "k_marginal_score_2way": 1000 * (1 - report["tvd_2way"]),
        "k_marginal_score_3way": 1000 * (1 - report["tvd_3way"]),
    }


SMARTNOISE = """
import resource, sys, time
import pandas as pd
from snsynth import Synthesizer
codes = pd.read_csv(sys.argv[1])
start = time.perf_counter()
synth = Synthesizer.create("mst", epsilon=float(sys.argv[3]), delta=float(sys.argv[4]))
out = synth.fit_sample(codes, categorical_columns=list(codes.columns), preprocessor_eps=0.0)
seconds = time.perf_counter() - start
out.to_csv(sys.argv[2], index=False)
print(seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2)
"""


def part_smartnoise(epsilon: float, iters: int, bins: int) -> dict[str, Any]:
    """smartnoise-synth MST in its own venv on the same binned Adult codes (all columns
    categorical: no budget spent on inferring bounds), scored here on the same TVDs."""
    import os
    import tempfile

    python = os.environ.get("SNSYNTH_PYTHON", "/tmp/snsynth-venv/bin/python")
    codec, codes = _adult(bins)
    with tempfile.TemporaryDirectory() as tmp:
        source, target = Path(tmp) / "codes.csv", Path(tmp) / "synthetic.csv"
        pd.DataFrame(codes).to_csv(source, index=False)
        done = subprocess.run(
            [python, "-c", SMARTNOISE, str(source), str(target), str(epsilon), str(DELTA)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if done.returncode:
            raise RuntimeError(done.stderr.strip()[-800:])
        seconds, peak = (float(v) for v in done.stdout.split()[-2:])
        synthetic = pd.read_csv(target)
    decoded = {c: synthetic[c].to_numpy(dtype=np.int64) for c in codes}
    return {
        "part": "smartnoise",
        "epsilon": epsilon,
        "seconds": seconds,
        "peak_gb": peak,
        **_tvds(codes, decoded, codec),
    }


PARTS = {
    "mst": part_mst,
    "aim": part_aim,
    "privbayes": part_privbayes,
    "nist": part_nist,
    "smartnoise": part_smartnoise,
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--part", choices=sorted(PARTS))
    parser.add_argument("--epsilon", type=float, action="append")
    parser.add_argument("--iters", type=int, default=500)
    parser.add_argument("--bins", type=int, default=16)
    args = parser.parse_args()
    if args.part and args.epsilon and len(args.epsilon) == 1:
        print(json.dumps(PARTS[args.part](args.epsilon[0], args.iters, args.bins)), flush=True)
        return
    plan = [
        ("mst", 1.0),
        ("smartnoise", 1.0),
        ("aim", 1.0),
        ("aim", 10.0),
        ("privbayes", 1.0),
        ("privbayes", 10.0),
        ("nist", 1.0),
        ("nist", 10.0),
    ]
    if args.part:
        plan = [(p, e) for p, e in plan if p == args.part]
    if args.epsilon:
        plan = sorted({(p, e) for p, _ in plan for e in args.epsilon})
    for part, epsilon in plan:
        done = subprocess.run(
            [sys.executable, __file__, "--part", part, "--epsilon", str(epsilon),
             "--iters", str(args.iters), "--bins", str(args.bins)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        lines = done.stdout.strip().splitlines()
        if done.returncode or not lines:
            print(f"{part} at epsilon {epsilon} failed: {done.stderr.strip()[-500:]}")
            continue
        figures = json.loads(lines[-1])
        print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                       for k, v in figures.items()), flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
