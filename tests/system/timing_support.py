"""Two zones that differ by one person, for the timing-channel test and benchmark.

The victim is a bank customer alone in segment ``new`` with many accounts (rows), so
whether she is present changes how long the zone works on a query; the analyst (the
partner, who knows her token) gets the same answer from both zones (her group is
suppressed). Used by tests/system/test_timing_channel.py and benchmarks/timing.py.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from scipy import stats

from collabzone.model import Request, RequestStatus
from collabzone.zone import Zone, init

BANK_SPEC = {
    "columns": [
        {"name": "token", "type": "string", "class": "join_key"},
        {"name": "segment", "type": "string", "class": "dimension",
         "domain": ["gold", "silver", "bronze", "new"]},
    ]
}  # fmt: skip
PARTNER_SPEC = {
    "columns": [
        {"name": "token", "type": "string", "class": "join_key"},
        {"name": "shop", "type": "string", "class": "dimension", "domain": ["a", "b", "c"]},
    ]
}  # fmt: skip
QUERY = (
    "SELECT b.segment, COUNT(*) AS purchases FROM bank b JOIN partner p ON b.token = p.token "
    "GROUP BY b.segment"
)
VICTIM = "t_victim"


def build_world(
    root: Path,
    *,
    victim: bool,
    timing: Mapping[str, Any] | None,
    customers: int = 2_000,
    victim_rows: int = 200_000,
) -> Zone:
    """A zone whose bank holds ``customers`` people (plus the victim if ``victim``);
    returns the analyst's (the partner's) handle."""
    operator, _ = init(root, timing=timing)
    _, bank_token = operator.add_party("bank", ["provider"])
    _, partner_token = operator.add_party("partner", ["provider", "analyst"])
    bank, partner = operator.as_party(bank_token), operator.as_party(partner_token)
    rng = random.Random(5)
    people = [(f"t{i}", rng.choice(["gold", "silver", "bronze"])) for i in range(customers)]
    if victim:  # one person, many accounts: the engine has more rows to read when she is in
        people += [(VICTIM, "new")] * victim_rows
    bank_csv = root.parent / f"{root.name}-bank.csv"
    bank_csv.write_text(
        "token,segment\n" + "".join(f"{t},{s}\n" for t, s in people), encoding="utf-8"
    )
    rows = [(f"t{i}", rng.choice("abc")) for i in range(customers)] + [(VICTIM, "a")]
    partner_csv = root.parent / f"{root.name}-partner.csv"
    partner_csv.write_text(
        "token,shop\n" + "".join(f"{t},{s}\n" for t, s in rows), encoding="utf-8"
    )
    bank.add_dataset("bank", bank_csv, BANK_SPEC)
    partner.add_dataset("partner", partner_csv, PARTNER_SPEC)
    bank.add_agreement("bank", grantees=["partner"], technique="sql", purposes=["*"],
                       rules={"analysis": ["aggregation"], "min_group_size": 10})  # fmt: skip
    return partner


def ask(analyst: Zone) -> tuple[float, Request]:
    """Submit the query once; the seconds until the answer, and the request."""
    start = time.perf_counter()
    request = analyst.submit("sql", {"sql": QUERY}, "timing")
    elapsed = time.perf_counter() - start
    assert isinstance(request, Request)
    return elapsed, request


def answer(analyst: Zone, request: Request) -> Any:
    """What the analyst learns: the released rows, in any order (or the refusal)."""
    if request.status is RequestStatus.RELEASED:
        return sorted(analyst.result(request.id).payload["rows"])
    return request.reasons


class Lockstep:
    """The attacker's experiment, extendable: rounds asking both zones at once (one thread
    each, who goes first alternating, both answers awaited), so whatever else loads the
    machine falls on both alike. ``times[True]`` are the response times of the zone with
    the victim, ``times[False]`` of the zone without; ``answers`` the distinct answers."""

    def __init__(self, root: Path, timing: Mapping[str, Any] | None = None) -> None:
        self.zones = {
            True: build_world(root / "present", victim=True, timing=timing),
            False: build_world(root / "absent", victim=False, timing=timing),
        }
        self.times: dict[bool, list[float]] = {True: [], False: []}
        self.answers: set[str] = set()
        self._warm = False

    @property
    def rounds(self) -> int:
        return len(self.times[True])

    def run(self, until: int) -> Lockstep:
        """Ask more rounds until ``until`` have been asked in all."""
        with ThreadPoolExecutor(2) as pool:
            if not self._warm:  # the first query warms caches in both
                list(pool.map(ask, self.zones.values()))
                self._warm = True
            for run in range(self.rounds, until):
                order = (True, False) if run % 2 == 0 else (False, True)
                for victim, (elapsed, request) in zip(
                    order, pool.map(ask, (self.zones[v] for v in order)), strict=True
                ):
                    assert request.status is RequestStatus.RELEASED, request.reasons
                    self.times[victim].append(elapsed)
                    self.answers.add(repr(answer(self.zones[victim], request)))
        return self

    def ks(self) -> tuple[float, float]:
        """The two-sample Kolmogorov-Smirnov statistic and p-value between the zones."""
        test = stats.ks_2samp(self.times[True], self.times[False])
        return float(test.statistic), float(test.pvalue)


def attack(root: Path, runs: int, timing: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The attacker's experiment of ``runs`` rounds (see :class:`Lockstep`). Returns the
    response times per zone (``True``: victim present), the distinct answers seen, and the
    two-sample Kolmogorov-Smirnov test."""
    experiment = Lockstep(root, timing).run(runs)
    statistic, p_value = experiment.ks()
    return {"times": experiment.times, "answers": experiment.answers,
            "statistic": statistic, "p_value": p_value}  # fmt: skip
