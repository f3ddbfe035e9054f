"""The attack campaign of issue 10 on UCI Adult (figures printed; nothing asserted).

    .venv/bin/python benchmarks/attacks.py                    # aggregation + DP, 500 each
    .venv/bin/python benchmarks/attacks.py --part aggregation --queries 500
    .venv/bin/python benchmarks/attacks.py --part aggregation --one-attacker
    .venv/bin/python benchmarks/attacks.py --part dp          # reconstruction and join in DP
    .venv/bin/python benchmarks/attacks.py --part timing --queries 192  # channel 5
    .venv/bin/python benchmarks/attacks.py --part zone --queries 20   # a real embedded zone

``aggregation`` runs every attack family against the governed SQL technique in memory (as
tests/attacks does), each family against a fresh zone (``--one-attacker``: one zone for
all, so the audit remembers every family's answers), and judges the inferences against
the data: *isolated* counts right inferences about fewer than min_group_size people.
``dp`` measures the reconstruction's and the join's accuracy on 100 victims' income bit
(half 1s) against the bound e^eps / (1 + e^eps) of the agreement's whole budget.
``timing`` compares victims' and outsiders' response times (KS test), for the technique
alone and through a real zone with its response-time ladder. ``zone``
runs the campaign through ZoneTarget against a real embedded zone in a temporary
directory (response-time ladder on, as shipped).
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the Adult harness is shared with tests/attacks

import pyarrow.parquet as pq  # noqa: E402

from collabzone.attacks import (  # noqa: E402
    CampaignReport,
    Scenario,
    TableTruth,
    ZoneTarget,
    dp_accuracy_bound,
    join_amplification,
    judge,
    reconstruct,
    run_campaign,
    timing,
    worlds,
)
from collabzone.keys import MASTER_KEY_ENV, new_master_key  # noqa: E402
from collabzone.zone import init  # noqa: E402
from tests.attacks.attack_support import (  # noqa: E402
    ADULT_COLUMNS,
    AGGREGATION_RULES,
    DP_EPSILON_BUDGET,
    DP_RULES,
    MIN_GROUP_SIZE,
    MemoryTarget,
    adult_scenario,
    adult_zone,
    campaign_in_parallel,
    load_adult,
)


def _print_report(title: str, report: CampaignReport, truth: TableTruth, seconds: float) -> None:
    print(f"# {title}: {report.queries} questions in {seconds:.1f} s")
    for row in report.table(truth):
        print(json.dumps(row))


def aggregation(
    scenario: Scenario, truth: TableTruth, queries: int, one: bool, workers: int
) -> None:
    adult = load_adult()
    started = time.perf_counter()
    if one:
        report = run_campaign(MemoryTarget(adult_zone(AGGREGATION_RULES, adult)), scenario, queries)
        title = "aggregation, one attacker (one zone for every family)"
    else:
        report = campaign_in_parallel(queries, workers=workers)
        title = f"aggregation, a fresh zone per family, {workers} processes"
    _print_report(title, report, truth, time.perf_counter() - started)


def dp(scenario: Scenario, truth: TableTruth, queries: int) -> None:
    adult = load_adult()
    bound = dp_accuracy_bound(DP_EPSILON_BUDGET)
    dp_scenario = scenario.with_epsilon(DP_EPSILON_BUDGET)
    for name, attack in (("reconstruction", reconstruct), ("join", join_amplification)):
        zone = adult_zone(DP_RULES, adult)
        started = time.perf_counter()
        result = attack(MemoryTarget(zone), dp_scenario, queries=queries)
        verdict = judge(result, truth, min_group_size=MIN_GROUP_SIZE)
        row: dict[str, Any] = {
            "dp": name,
            "epsilon_budget": DP_EPSILON_BUDGET,
            "spent": round(zone.spent("analyst"), 6),
            "queries": result.queries,
            "released": result.released,
            "victims": verdict.guesses,
            "accuracy": verdict.accuracy,
            "bound": round(bound, 4),
            "seconds": round(time.perf_counter() - started, 1),
        }
        print(json.dumps(row))


def _real_zone(tmp: str) -> Any:
    """A zone in ``tmp`` sharing Adult with the analyst (aggregation); the analyst's handle."""
    os.environ.setdefault(MASTER_KEY_ENV, new_master_key())
    operator, _ = init(Path(tmp) / "zone")
    _, census_token = operator.add_party("census", ["provider"])
    _, analyst_token = operator.add_party("analyst", ["provider", "analyst"])
    census = operator.as_party(census_token)
    path = Path(tmp) / "adult.parquet"
    pq.write_table(load_adult(), path)
    spec = {"columns": [c.model_dump(by_alias=True, mode="json") for c in ADULT_COLUMNS]}
    census.add_dataset("adult", path, spec)
    census.add_agreement("adult", grantees=["analyst"], technique="sql",
                         purposes=["research"], rules=AGGREGATION_RULES)  # fmt: skip
    return operator.as_party(analyst_token)


def timing_worlds(scenario: Scenario, queries: int) -> None:
    """Channel 5: victims' vs outsiders' response times, the technique alone and the zone."""
    present = {v.name for v in scenario.victims}
    with tempfile.TemporaryDirectory(prefix="cz-attacks-") as tmp:
        targets = {
            "technique in memory (no response-time ladder)": MemoryTarget(
                adult_zone(AGGREGATION_RULES, load_adult())
            ),
            "real embedded zone (ladder as shipped)": ZoneTarget(_real_zone(tmp), "research"),
        }
        for name, target in targets.items():
            result = timing(target, scenario, queries=queries)
            statistic, p_value = worlds(result, present)
            inside = [t for n in present for t in result.measurements.get(n, ())]
            outside = [
                t
                for n, times in result.measurements.items()
                if n not in present and "(" not in n and n != "ks_statistics"
                for t in times
            ]
            print(json.dumps({
                "timing": name, "queries": result.queries,
                "median_ms_present": round(1000 * statistics.median(inside), 2),
                "median_ms_absent": round(1000 * statistics.median(outside), 2),
                "ks_statistic": round(statistic, 3), "p_value": float(f"{p_value:.3g}"),
            }))  # fmt: skip


def zone(scenario: Scenario, truth: TableTruth, queries: int) -> None:
    with tempfile.TemporaryDirectory(prefix="cz-attacks-") as tmp:
        target = ZoneTarget(_real_zone(tmp), purpose="research")
        started = time.perf_counter()
        report = run_campaign(target, scenario, queries)
        _print_report("real embedded zone, one attacker", report, truth,
                      time.perf_counter() - started)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--part", choices=["all", "aggregation", "dp", "timing", "zone"], default="all"
    )
    parser.add_argument("--queries", type=int, default=500, help="questions per attack family")
    parser.add_argument("--one-attacker", action="store_true", help="one zone for all families")
    parser.add_argument("--workers", type=int, default=2, help="processes (fresh zones only)")
    args = parser.parse_args()
    adult = load_adult()
    scenario = adult_scenario(adult)
    truth = TableTruth(adult, "adult", "token")
    print(f"# UCI Adult: {adult.num_rows} people, {len(scenario.victims)} victims, "
          f"{len(scenario.outsiders)} outsiders, min_group_size {MIN_GROUP_SIZE}")  # fmt: skip
    try:
        if args.part in ("all", "aggregation"):
            aggregation(scenario, truth, args.queries, args.one_attacker, args.workers)
        if args.part in ("all", "dp"):
            dp(scenario, truth, args.queries)
        if args.part == "timing":
            timing_worlds(scenario, args.queries)
        if args.part == "zone":
            zone(scenario, truth, args.queries)
    finally:
        truth.close()


if __name__ == "__main__":
    main()
