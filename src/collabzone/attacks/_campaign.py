"""The registry of attack families and a campaign that runs them all against one target.

Given one target, the campaign is one attacker: every family asks it in turn, so whatever
the zone remembers (the audited releases, the spent budget, the DP cache) carries from
one family to the next, as for an analyst who tries everything. Given a factory of
targets, each family starts from a fresh zone (no earlier answer makes the zone cautious
before the family's own questions: the harder test of each family). In DP the scenario's
epsilon is the attacker's whole budget, shared equally by the families.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from collabzone.attacks._differencing import differencing
from collabzone.attacks._join import join_amplification
from collabzone.attacks._judge import Truth, Verdict, judge
from collabzone.attacks._oracle import oracle
from collabzone.attacks._reconstruct import reconstruct
from collabzone.attacks._result import AttackResult
from collabzone.attacks._scenario import Scenario
from collabzone.attacks._suppressed import suppressed
from collabzone.attacks._target import Target
from collabzone.attacks._threshold import threshold
from collabzone.attacks._timing import timing
from collabzone.attacks._tracker import tracker
from collabzone.attacks._values import values


class Attack(Protocol):
    """One attack family: asks ``target`` at most ``queries`` questions, reports back."""

    def __call__(
        self, target: Target, scenario: Scenario, *, queries: int = 500
    ) -> AttackResult: ...


ATTACKS: Mapping[str, Attack] = {
    "differencing": differencing,
    "tracker": tracker,
    "oracle": oracle,
    "threshold": threshold,
    "suppressed": suppressed,
    "reconstruction": reconstruct,
    "join": join_amplification,
    "timing": timing,
    "values": values,
}
"""Every attack family by name, in the order a campaign runs them."""


@dataclass(frozen=True)
class CampaignReport:
    """Every family's result against one target (judge it with the ground truth)."""

    scenario: Scenario
    results: tuple[AttackResult, ...]

    def judge(self, truth: Truth, *, alpha: float = 1e-3) -> tuple[Verdict, ...]:
        return tuple(
            judge(r, truth, min_group_size=self.scenario.min_group_size, alpha=alpha)
            for r in self.results
        )

    @property
    def queries(self) -> int:
        return sum(r.queries for r in self.results)

    def table(self, truth: Truth | None = None) -> list[dict[str, object]]:
        """One row per family: its counts, and (given the truth) what it isolated."""
        verdicts = self.judge(truth) if truth is not None else (None,) * len(self.results)
        rows = []
        for result, verdict in zip(self.results, verdicts, strict=True):
            row = result.summary()
            if verdict is not None:
                row.update({k: v for k, v in verdict.summary().items() if k != "attack"})
            rows.append(row)
        return rows


def run_campaign(
    target: Target | Callable[[], Target],
    scenario: Scenario,
    queries_per_attack: int = 500,
    *,
    attacks: Sequence[str] | None = None,
) -> CampaignReport:
    """Run every attack family (or those named) against ``target``, one after another
    (``target`` a factory: each family against a fresh target of its own).

    Example:
        >>> report = run_campaign(target, scenario, queries_per_attack=500)  # doctest: +SKIP
        >>> [v.isolated for v in report.judge(truth)]  # doctest: +SKIP
        [0, 0, 0, 0, 0, 0, 0, 0]
    """
    names = list(attacks) if attacks is not None else list(ATTACKS)
    unknown = [n for n in names if n not in ATTACKS]
    if unknown:
        raise ValueError(f"unknown attacks: {', '.join(unknown)}; known: {', '.join(ATTACKS)}")
    share = scenario
    if scenario.epsilon is not None:
        share = replace(scenario, epsilon=scenario.epsilon / len(names))
    results = []
    for name in names:
        attacked = target if isinstance(target, Target) else target()
        results.append(ATTACKS[name](attacked, share, queries=queries_per_attack))
    return CampaignReport(scenario, tuple(results))


__all__ = ["ATTACKS", "Attack", "CampaignReport", "run_campaign"]
