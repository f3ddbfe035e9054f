"""The threshold itself as an oracle, padded with people the attacker knows (channel 2).

The attacker knows some people are in the data and which cells single them out (its own
customers who also answered the census, say): the scenario's ``known`` people. It asks
the count of ``min_group_size - 1`` of their cells plus one candidate's cell. With the
candidate there, the group has exactly the minimum; without, one less, and nothing below
the minimum is ever released. A released answer of exactly the minimum is therefore proof
that the candidate is there (or, padding with known ``secret = 1`` people under the
condition ``secret = 1``, that the victim's secret is 1). A jittered threshold releases a
group at the minimum only sometimes; a new padding set draws a new jitter, and a padding
set that was never released can be used again.

This is the textbook limit of any minimum group size against background knowledge of
k - 1 members; the attack measures how often it fires.
"""

from __future__ import annotations

from collections.abc import Sequence

from collabzone.attacks._oracle import interleaved
from collabzone.attacks._result import AttackResult, Claim, Guess, Log
from collabzone.attacks._scenario import Person, Scenario, any_of
from collabzone.attacks._target import Question
from collabzone.attacks._target import Target as Asked

CHANNEL = "2: the threshold as an oracle, padded with known people"
TRIES = 8
"""Padding sets tried per candidate before giving up (each a fresh jitter)."""


def _paddings(people: Sequence[Person], size: int) -> list[tuple[Person, ...]]:
    return [tuple(people[i : i + size]) for i in range(0, len(people) - size + 1, size)]


def _probe(
    log: Log,
    scenario: Scenario,
    candidate: Person,
    pads: list[tuple[Person, ...]],
    condition: str,
    eps: float | None,
) -> bool | None:
    """Whether some padding set plus the candidate was released at exactly the minimum
    (None: the budget ran out first). A released padding set is used up."""
    for _ in range(TRIES):
        if not pads:
            return False
        pad = pads[0]
        where = any_of([p.where() for p in (candidate, *pad)])
        sql = f"SELECT COUNT(*) FROM {scenario.table} WHERE ({where}){condition}"
        answer = log.ask(Question(sql, epsilon=eps))
        if answer is None:
            return None
        if answer.released:
            pads.pop(0)  # its people are now in a released cell: never again
            if answer.value() == len(pad) + 1:
                return True
            continue
        pads.append(pads.pop(0))  # unreleased: still fresh, try the next one first
    return False


def threshold(target: Asked, scenario: Scenario, *, queries: int = 500) -> AttackResult:
    """Pad each candidate's cell with known people up to the minimum; a release tells."""
    log = Log(target, queries)
    eps = scenario.epsilon / queries if scenario.epsilon is not None else None
    size = scenario.min_group_size - 1
    anyone = _paddings(list(scenario.known), size)
    ones = _paddings([p for p in scenario.known if p.secret == 1], size)
    claims: list[Claim] = []
    guesses: list[Guess] = []
    secret = f"SUM({scenario.secret})"
    for person, victim in interleaved(scenario):
        # the secret first: once a person is in a released cell, no later cell may hold
        # it with fewer than the minimum others, and a secret of 1 implies presence
        high: bool | None = False
        if victim and ones:
            high = _probe(log, scenario, person, ones, f" AND {scenario.secret} = 1", eps)
            if high is None:
                break
            guesses.append(Guess(person.name, secret, person.where(), float(high)))
            if high and eps is None:
                claims.append(Claim(person.name, secret, person.where(), 1, 1, "k-1 known ones"))
        found = True if high else _probe(log, scenario, person, anyone, "", eps)
        if found is None:
            break
        guesses.append(Guess(person.name, "COUNT(*)", person.where(), float(found)))
        if found and eps is None:
            claims.append(Claim(person.name, "COUNT(*)", person.where(), 1, float("inf"), "k-1"))
    return log.result("threshold", CHANNEL, claims=tuple(claims), guesses=tuple(guesses))


__all__ = ["threshold"]
