"""Start-up of a compute-server process, and the cost of DP noise on an he_sum total.

    .venv/bin/python benchmarks/mpc_startup.py [--repeat 5] [--values 100000]

1. CPU (user + system, of the child) to import what a server process imports
   (``collabzone.techniques.mpc._process``), against the raw-MPyC baseline's imports
   (``mpyc.runtime`` and numpy, as benchmarks/_mpc_raw.py): median of ``--repeat`` runs.
2. CPU of adding encrypted Laplace noise (OpenDP sampler, CKKS encryption and addition) to
   an encrypted total of ``--values`` values, against the homomorphic sum of 10 providers'
   vectors it is added to (both in this process).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def _child_cpu(code: str) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    subprocess.run([sys.executable, "-c", code], env=env, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def startup(repeat: int) -> None:
    ours = "import sys; sys.argv = ['x']; import collabzone.techniques.mpc._process"
    raw = "import sys; sys.argv = ['x']; import numpy, mpyc.runtime"
    runs: dict[str, list[float]] = {"ours": [], "raw": []}
    for _ in range(repeat):
        runs["ours"].append(_child_cpu(ours))
        runs["raw"].append(_child_cpu(raw))
    a, b = statistics.median(runs["ours"]), statistics.median(runs["raw"])
    print(f"Server process imports (median of {repeat}, CPU of the child):")
    print(f"  collabzone.techniques.mpc._process {a:5.2f} s | numpy + mpyc.runtime {b:5.2f} s "
          f"| ratio {a / b:.2f}x")  # fmt: skip


def noise(values: int) -> None:
    from collabzone.techniques.mpc._he import RecipientKeys, aggregate, encrypt
    from collabzone.techniques.mpc._he_noise import noisy_total

    keys = RecipientKeys.generate()
    public = keys.public_context()
    vectors = [encrypt(public, [float(i % 97)] * values) for i in range(10)]
    c0 = time.process_time()
    total = aggregate(public, vectors, min_providers=2)
    c_sum = time.process_time() - c0
    c0 = time.process_time()
    noisy, scale = noisy_total(public, total, l1=10.0, epsilon=1.0)
    c_noise = time.process_time() - c0
    print(f"he_sum of 10 providers x {values:,} values: sum {c_sum:.2f} s CPU; "
          f"Laplace noise (scale {scale:g}) drawn, encrypted and added {c_noise:.2f} s CPU "
          f"({c_noise / c_sum:.2f}x the sum); {len(noisy) / 2**20:.1f} MiB released")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--values", type=int, default=100_000)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    startup(args.repeat)
    noise(args.values)


if __name__ == "__main__":
    main()
