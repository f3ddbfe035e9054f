"""Exact counts of suppressed cells (channel 3).

A payload or receipt that says "1 row suppressed" answers a question about a group below
the minimum. Grouping the victim's own cell (restricted to ``secret = 1``) yields one
group of one person or no group at all: a count of suppressed rows reads the secret, and
the same query without the restriction reads presence. A target that discloses no count
gives the uninformed guesses; every count seen is kept in ``measurements["disclosed"]``.
"""

from __future__ import annotations

from collabzone.attacks._oracle import interleaved
from collabzone.attacks._result import AttackResult, Claim, Guess, Log
from collabzone.attacks._scenario import Person, Scenario
from collabzone.attacks._target import Answer, Question
from collabzone.attacks._target import Target as Asked

CHANNEL = "3: exact counts of suppressed cells"


def _grouped(
    scenario: Scenario, p: Person, extra: str, round_: int, epsilon: float | None
) -> Question:
    column = list(p.quasi)[round_ % len(p.quasi)]
    where = p.where() + extra
    return Question(
        f"SELECT {column}, COUNT(*) FROM {scenario.table} WHERE {where} GROUP BY {column}",
        epsilon=epsilon,
    )


def _hidden(answer: Answer) -> int | None:
    """How many rows the answer says it left out, beyond the ones it shows."""
    return answer.suppressed


def suppressed(target: Asked, scenario: Scenario, *, queries: int = 500) -> AttackResult:
    """Ask for victims' and outsiders' own cells, grouped on each of their columns in turn,
    and read any disclosed count of suppressed rows."""
    log = Log(target, queries)
    eps = scenario.epsilon / queries if scenario.epsilon is not None else None
    claims: list[Claim] = []
    guesses: list[Guess] = []
    disclosed: list[float] = []
    rounds = max((len(p.quasi) for p, _ in interleaved(scenario)), default=0)
    asks = [
        (person, victim, round_)
        for round_ in range(rounds)
        for person, victim in interleaved(scenario)
    ]
    for person, victim, round_ in asks:
        if log.remaining <= 0:
            break
        checks = [("", "COUNT(*)")]
        if victim:
            checks.append((f" AND {scenario.secret} = 1", f"SUM({scenario.secret})"))
        for extra, aggregate in checks:
            answer = log.ask(_grouped(scenario, person, extra, round_, eps))
            if answer is None:
                break
            count = _hidden(answer)
            shown = len(answer.rows)
            if count is not None:
                disclosed.append(float(count))
            value = 1.0 if (count or 0) + shown > 0 else 0.0
            guesses.append(Guess(person.name, aggregate, person.where(), value))
            if count is not None and eps is None and shown == 0:
                # the cell is one group: a disclosed count says whether it is empty
                high = value if value == 0 else float("inf")
                claims.append(
                    Claim(person.name, aggregate, person.where(), value, high, "suppressed count")
                )
    return log.result(
        "suppressed",
        CHANNEL,
        claims=tuple(claims),
        guesses=tuple(guesses),
        measurements={"disclosed": tuple(disclosed)},
    )


__all__ = ["suppressed"]
