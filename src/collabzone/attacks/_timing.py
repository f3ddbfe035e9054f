"""Timing: does the response time depend on whether someone is in the data (channel 5)?

For each candidate (victims, who are in the data, and outsiders, who may not be) the
attacker asks the count of the candidate's cell and, alternately, the count of a cell it
is sure is empty (the reference), ``rounds`` times each. Both answers are withheld either
way; only the time can differ. A two-sample Kolmogorov-Smirnov test between the
candidate's and the reference's times says "present" when its p-value is below
``ALPHA``. Alternating the two questions keeps machine load from looking like a signal.
"""

from __future__ import annotations

import warnings

from scipy.stats import ks_2samp  # type: ignore[import-untyped]

from collabzone.attacks._oracle import interleaved
from collabzone.attacks._result import AttackResult, Guess, Log
from collabzone.attacks._scenario import Person, Scenario
from collabzone.attacks._target import Question
from collabzone.attacks._target import Target as Asked

CHANNEL = "5: response time"
ALPHA = 0.01
MAX_CANDIDATES = 16
MIN_ROUNDS = 12
"""Times per candidate and per reference: fewer candidates rather than fewer rounds."""


def _count(scenario: Scenario, person: Person, epsilon: float | None) -> Question:
    sql = f"SELECT COUNT(*) FROM {scenario.table} WHERE {person.where()}"
    return Question(sql, epsilon=epsilon)


def ks_test(first: list[float], second: list[float]) -> tuple[float, float]:
    """The KS statistic and p-value of two samples of response times."""
    with warnings.catch_warnings():  # tied times: scipy falls back to the asymptotic p
        warnings.simplefilter("ignore", RuntimeWarning)
        result = ks_2samp(first, second)
    return float(result.statistic), float(result.pvalue)


def timing(target: Asked, scenario: Scenario, *, queries: int = 500) -> AttackResult:
    """Time each candidate's cell against an empty reference cell; guess presence."""
    log = Log(target, queries)
    reference = scenario.empty_cell
    wanted = max(2, min(MAX_CANDIDATES, queries // (2 * MIN_ROUNDS)))
    candidates = interleaved(scenario)[:wanted]
    if reference is None or not candidates:
        return log.result("timing", CHANNEL, notes=("no reference cell or no candidates",))
    rounds = max(2, queries // (2 * len(candidates)))
    eps = scenario.epsilon / queries if scenario.epsilon is not None else None
    guesses: list[Guess] = []
    measurements: dict[str, tuple[float, ...]] = {}
    statistics: list[float] = []
    for person, _ in candidates:
        mine: list[float] = []
        theirs: list[float] = []
        for _round in range(rounds):
            first = log.ask(_count(scenario, person, eps), again=True)
            second = log.ask(_count(scenario, reference, eps), again=True)
            if first is None or second is None:
                break
            mine.append(first.seconds)
            theirs.append(second.seconds)
        if len(mine) < 2:
            break
        statistic, p_value = ks_test(mine, theirs)
        statistics.append(statistic)
        measurements[person.name] = tuple(mine)
        measurements[f"{person.name} (reference)"] = tuple(theirs)
        present = 1.0 if p_value < ALPHA else 0.0
        guesses.append(Guess(person.name, "COUNT(*)", person.where(), present))
    measurements["ks_statistics"] = tuple(statistics)
    return log.result("timing", CHANNEL, guesses=tuple(guesses), measurements=measurements)


def worlds(result: AttackResult, present: set[str]) -> tuple[float, float]:
    """The KS statistic and p-value between the times of candidates who are in the data
    and of those who are not (the caller knows which): the channel itself, pooled."""
    inside = [t for name in present for t in result.measurements.get(name, ())]
    outside = [
        t
        for name, times in result.measurements.items()
        if name not in present and "(reference)" not in name and name != "ks_statistics"
        for t in times
    ]
    return ks_test(inside, outside)


__all__ = ["ALPHA", "ks_test", "timing", "worlds"]
