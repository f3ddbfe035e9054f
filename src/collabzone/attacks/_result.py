"""What an attack asked, what came back, and what it inferred.

Every attack asks through a :class:`Log`, which counts answers by status and reason, keeps
the response times, stops at the query budget, and does not ask the same question twice
(an attacker would reuse the answer; timing and averaging attacks ask again on purpose).

An attack infers two kinds of things:

* a :class:`Claim` is a *certain* deduction from exact answers (set algebra, a verified
  amplification): "the aggregate over the rows matching ``where`` lies in [low, high]";
* a :class:`Guess` is a best guess about one subject (a refusal read as an oracle, a
  noisy reconstruction, a timing difference), judged by accuracy over many subjects.

Neither carries ground truth: :func:`collabzone.attacks.judge` compares them with it.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from collabzone.attacks._target import Answer, Question, Target


@dataclass(frozen=True)
class Claim:
    """A certain deduction: ``aggregate`` over the rows matching ``where`` is in
    [``low``, ``high``] (equal bounds: an exact value).

    ``where`` reads only the protected table's columns (unqualified), so the judge can
    evaluate it on the ground truth.
    """

    about: str
    aggregate: str
    where: str
    low: float
    high: float
    how: str = ""


@dataclass(frozen=True)
class Guess:
    """A best guess that ``aggregate`` over ``where`` (one subject's cell) is ``value``."""

    subject: str
    aggregate: str
    where: str
    value: float


@dataclass(frozen=True)
class AttackResult:
    """One attack's run: its queries by outcome, and what it inferred (no ground truth)."""

    attack: str
    channel: str
    queries: int
    released: int
    withheld: int
    refused: int
    reasons: Mapping[str, int]
    """Refusals by reason code."""
    spent: float
    """Privacy budget the answers said they cost (DP)."""
    seconds: float
    claims: tuple[Claim, ...] = ()
    guesses: tuple[Guess, ...] = ()
    measurements: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    """Raw figures worth keeping (response times per subject, LP accuracy...)."""
    notes: tuple[str, ...] = ()

    def summary(self) -> dict[str, object]:
        return {
            "attack": self.attack,
            "queries": self.queries,
            "released": self.released,
            "withheld": self.withheld,
            "refused": self.refused,
            "reasons": dict(self.reasons),
            "claims": len(self.claims),
            "guesses": len(self.guesses),
            "spent": round(self.spent, 6),
            "seconds": round(self.seconds, 2),
        }


class Log:
    """The attack's side of the conversation: asks, caches, counts, stops at the budget."""

    def __init__(self, target: Target, budget: int) -> None:
        self.target = target
        self.budget = budget
        self.answers: dict[Question, Answer] = {}
        self.statuses: Counter[str] = Counter()
        self.reasons: Counter[str] = Counter()
        self.spent = 0.0
        self.asked = 0
        self.started = time.perf_counter()

    @property
    def remaining(self) -> int:
        return self.budget - self.asked

    def ask(self, question: Question, *, again: bool = False) -> Answer | None:
        """The answer (``None`` once the budget is used up); asked anew only if ``again``."""
        if not again and question in self.answers:
            return self.answers[question]
        if self.asked >= self.budget:
            return None
        answer = self.target.ask(question)
        self.asked += 1
        self.statuses[answer.status] += 1
        self.reasons.update(answer.reasons)
        self.spent += answer.spent
        self.answers[question] = answer
        return answer

    def result(
        self,
        attack: str,
        channel: str,
        *,
        claims: tuple[Claim, ...] = (),
        guesses: tuple[Guess, ...] = (),
        measurements: Mapping[str, tuple[float, ...]] | None = None,
        notes: tuple[str, ...] = (),
    ) -> AttackResult:
        return AttackResult(
            attack=attack,
            channel=channel,
            queries=self.asked,
            released=self.statuses["released"],
            withheld=self.statuses["withheld"],
            refused=self.statuses["refused"],
            reasons=dict(self.reasons),
            spent=self.spent,
            seconds=time.perf_counter() - self.started,
            claims=claims,
            guesses=guesses,
            measurements=dict(measurements or {}),
            notes=notes,
        )


__all__ = ["AttackResult", "Claim", "Guess", "Log"]
