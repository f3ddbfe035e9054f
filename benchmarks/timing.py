"""The timing channel of a suppressed answer, with and without response-time quantisation.

    .venv/bin/python benchmarks/timing.py                        # 500 runs, quantum 0.5 s
    .venv/bin/python benchmarks/timing.py --runs 200 --quantum 0.25

Two embedded zones differ by one person (see tests/system/timing_support.py): the victim,
alone in her segment, with 200,000 accounts. The analyst asks the same query of both in
lockstep rounds; the answer is identical (her group is suppressed). For each
setting (quantisation off, ``quantum = 0``; and on) the script prints, as JSON, the
response-time distribution per zone, the two-sample Kolmogorov-Smirnov statistic and
p-value (scipy) between the zones, and the mean overhead of the ladder over no ladder.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from collabzone.keys import MASTER_KEY_ENV, new_master_key

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the zones come from tests/
from tests.system.timing_support import attack


def _summary(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    return {
        "median_ms": round(statistics.median(ordered) * 1000, 1),
        "p90_ms": round(ordered[int(0.9 * (len(ordered) - 1))] * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
        "mean_ms": round(statistics.fmean(ordered) * 1000, 1),
    }


def measure(root: Path, quantum: float, runs: int) -> dict[str, Any]:
    """The attacker's experiment (lockstep rounds over the two zones) at one quantum."""
    started = time.perf_counter()
    result = attack(root, runs, {"quantum": quantum})
    times = result["times"]
    return {
        "quantum_s": quantum,
        "runs_per_zone": runs,
        "identical_answers": len(result["answers"]) == 1,
        "present": _summary(times[True]),
        "absent": _summary(times[False]),
        "ks_statistic": round(result["statistic"], 4),
        "ks_p_value": result["p_value"],
        "wall_s": round(time.perf_counter() - started, 1),
        "mean_s": statistics.fmean(times[True] + times[False]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=500, help="requests per zone and setting")
    parser.add_argument("--quantum", type=float, default=0.5, help="first ladder step (s)")
    args = parser.parse_args()
    os.environ.setdefault(MASTER_KEY_ENV, new_master_key())
    with tempfile.TemporaryDirectory() as tmp:
        off = measure(Path(tmp) / "off", 0.0, args.runs)
        on = measure(Path(tmp) / "on", args.quantum, args.runs)
    print(
        json.dumps(
            {
                "without_quantisation": off,
                "with_quantisation": on,
                "mean_overhead_ms": round((on["mean_s"] - off["mean_s"]) * 1000, 1),
                "load_average": os.getloadavg(),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
