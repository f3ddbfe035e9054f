"""Operating characteristics of the timing-channel test's sequential design, by simulation.

    .venv/bin/python benchmarks/timing_sequential.py            # 2000 repetitions
    .venv/bin/python benchmarks/timing_sequential.py --reps 500

tests/system/test_timing_channel.py used to ask 500 lockstep rounds and fail when the
two-sample Kolmogorov-Smirnov p-value was <= 0.01. It now looks after 200 and 350 rounds
and stops (passing) when p is above a futility bound, and otherwise tests at 550 rounds.
This script prints, for the fixed and the sequential design, the probability that the test
fails and the mean number of rounds asked, when nothing leaks (the KS test is
distribution-free under that hypothesis, so uniform times stand for any) and under two
kinds of leak:

* ``step``: a fraction of the victim zone's answers land on a later ladder step (what a
  query slower than the first step does);
* ``shift``: the victim zone's times are shifted by a fraction of their spread (work done
  after the step that depends on the data).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from scipy.stats import _stats_py  # type: ignore[import-untyped]

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.system.test_timing_channel import LAST_LOOK, LOOKS, SIGNIFICANCE

FIXED = ((), 500)


def p_value(n: int, h: int) -> float:
    """Exact P(D >= h / n) for two samples of n under the null (scipy's exact method)."""
    return float(min(1.0, _stats_py._compute_prob_outside_square(n, h)))


def statistic_counts(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """n * D of the two-sample KS test of each row of ``x`` against the row of ``y``."""
    n = x.shape[1]
    order = np.argsort(np.concatenate([x, y], axis=1), axis=1, kind="stable")
    return np.abs(np.cumsum(np.where(order < n, 1, -1), axis=1)).max(axis=1)


def samples(rng: np.random.Generator, reps: int, n: int, leak: str, size: float):
    """Response times of the victim's zone and of the other, ``reps`` experiments."""
    if leak == "shift":
        return rng.normal(size, 1.0, (reps, n)), rng.normal(0.0, 1.0, (reps, n))
    present, absent = rng.random((reps, n)), rng.random((reps, n))
    if leak == "step":
        present[rng.random((reps, n)) < size] += 10.0  # far above every first-step time
    return present, absent


def run(design, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """P(the test fails) and the mean rounds asked, for one design."""
    looks, last = design
    reps = x.shape[0]
    stopped = np.zeros(reps, bool)
    rounds = np.full(reps, last)
    for n, futility in looks:
        p = np.array([p_value(n, int(h)) for h in statistic_counts(x[:, :n], y[:, :n])])
        stop = ~stopped & (p > futility)
        rounds[stop] = n
        stopped |= stop
    p = np.array([p_value(last, int(h)) for h in statistic_counts(x[:, :last], y[:, :last])])
    fails = ~stopped & (p <= SIGNIFICANCE)
    return float(fails.mean()), float(rounds.mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=2000)
    args = parser.parse_args()
    rng = np.random.default_rng(1)
    sequential = (LOOKS, LAST_LOOK)
    cases = [("none", 0.0)] + [("step", s) for s in (0.06, 0.08, 0.10, 0.12)]
    cases += [("shift", s) for s in (0.15, 0.20, 0.25, 0.30)]
    print(f"{'leak':>6} {'size':>5} | fixed 500: P(fail)  rounds | sequential: P(fail)  rounds")
    for leak, size in cases:
        x, y = samples(rng, args.reps, max(LAST_LOOK, FIXED[1]), leak, size)
        fixed = run(FIXED, x, y)
        seq = run(sequential, x, y)
        print(f"{leak:>6} {size:5.2f} | {fixed[0]:17.3f} {fixed[1]:7.0f} |"
              f" {seq[0]:18.3f} {seq[1]:7.0f}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
