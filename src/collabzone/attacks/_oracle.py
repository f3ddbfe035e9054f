"""The refusal (or the withheld answer) as an oracle (channel 2).

After a large set B is released, the attacker asks "B minus the victim's cell". A monitor
that refuses when the two differ by fewer than the minimum answers the question "is the
victim in B?" by refusing: released means "not in B" (the same set again), refused or
withheld means "in B". With B = "secret = 1" and B' = "secret = 0" this reads a victim's
secret; with B = one sex, the victim's presence in the data.

Each answer pattern becomes a guess; a pattern that says nothing (both released, both
withheld) gives the uninformed guess (secret 0, absent), so the judge's accuracy shows
whether the decisions depended on the victim.
"""

from __future__ import annotations

from collabzone.attacks._result import AttackResult, Guess, Log
from collabzone.attacks._scenario import Person, Scenario, equals
from collabzone.attacks._target import Answer, Question
from collabzone.attacks._target import Target as Asked

CHANNEL = "2: refusals and withheld answers as an oracle"


def _count(scenario: Scenario, where: str, epsilon: float | None) -> Question:
    return Question(f"SELECT COUNT(*) FROM {scenario.table} WHERE {where}", epsilon=epsilon)


def _blocked(answer: Answer | None) -> bool | None:
    """Whether the zone held the answer back (None: not asked, budget used up)."""
    if answer is None:
        return None
    return not answer.released


def _narrowing(scenario: Scenario, p: Person, round_: int) -> str | None:
    """Round 0: no narrowing; round k: the person's value of its k-th splitter column
    (other base sets, so a later round asks new questions); None: no such column."""
    columns = [c for c in p.quasi if c in scenario.splitters]
    if round_ == 0:
        return ""
    if round_ > len(columns):
        return None
    column = columns[round_ - 1]
    return f" AND {equals(column, p.quasi[column])}"


def _secret_guess(
    log: Log, scenario: Scenario, v: Person, narrowing: str, eps: float | None
) -> Guess | None:
    ones = f"{scenario.secret} = 1{narrowing}"
    zeros = f"{scenario.secret} = 0{narrowing}"
    if (
        log.ask(_count(scenario, ones, eps)) is None
        or log.ask(_count(scenario, zeros, eps)) is None
    ):
        return None
    without_one = _blocked(log.ask(_count(scenario, f"{ones} AND NOT ({v.where()})", eps)))
    without_zero = _blocked(log.ask(_count(scenario, f"{zeros} AND NOT ({v.where()})", eps)))
    if without_one is None or without_zero is None:
        return None
    bit = 1.0 if without_one and not without_zero else 0.0
    return Guess(v.name, f"SUM({scenario.secret})", v.where(), bit)


def _presence_guess(
    log: Log, scenario: Scenario, p: Person, round_: int, eps: float | None
) -> Guess | None:
    columns = [c for c in p.quasi if c in scenario.splitters]
    if not columns:
        return None
    column = columns[round_ % len(columns)]
    base = equals(column, p.quasi[column])
    if round_ >= len(columns):  # later rounds: the first column within the next one
        base += f" AND {equals(columns[0], p.quasi[columns[0]])}"
    if log.ask(_count(scenario, base, eps)) is None:
        return None
    blocked = _blocked(log.ask(_count(scenario, f"{base} AND NOT ({p.where()})", eps)))
    if blocked is None:
        return None
    return Guess(p.name, "COUNT(*)", p.where(), 1.0 if blocked else 0.0)


def interleaved(scenario: Scenario) -> list[tuple[Person, bool]]:
    """Victims (present) and outsiders alternately, so a short budget asks about both."""
    out: list[tuple[Person, bool]] = []
    for n in range(max(len(scenario.victims), len(scenario.outsiders))):
        if n < len(scenario.victims):
            out.append((scenario.victims[n], True))
        if n < len(scenario.outsiders):
            out.append((scenario.outsiders[n], False))
    return out


def oracle(target: Asked, scenario: Scenario, *, queries: int = 500) -> AttackResult:
    """Read refusals as answers: each victim's secret, and who of victims and outsiders is
    in the data, round after round with other base sets, until ``queries`` questions."""
    log = Log(target, queries)
    eps = scenario.epsilon / queries if scenario.epsilon is not None else None
    guesses: list[Guess] = []
    for round_ in range(1 + len(scenario.splitters)):
        for person, victim in interleaved(scenario):
            if log.remaining <= 0:
                break
            found = _presence_guess(log, scenario, person, round_, eps)
            if found is not None:
                guesses.append(found)
            narrowing = _narrowing(scenario, person, round_)
            if victim and narrowing is not None:
                secret = _secret_guess(log, scenario, person, narrowing, eps)
                if secret is not None:
                    guesses.append(secret)
    return log.result("oracle", CHANNEL, guesses=tuple(guesses))


__all__ = ["interleaved", "oracle"]
