"""Set algebra over released answers: which unions of cells the answers pin down.

An attack plan cuts the table into a few disjoint *cells* (predicates it writes itself:
the victim's cell, the rest of a base set, a tracker and its complement...) and asks
questions that are unions of cells. Each released answer is then a linear equation over
the cells' unknown aggregates; a union of cells is *determined* when its indicator vector
lies in the row space of the released equations, and its value follows (exactly for exact
answers; a least-squares estimate for noisy ones). Differencing pairs, inclusion-exclusion
over three releases, trackers and "a GROUP BY plus the total" are all this one computation.

Example:
    >>> s = System(2, aggregates=1)
    >>> s.add([0, 1], [12.0]); s.add([1], [11.0])  # B, then B minus the victim
    >>> s.solve([0])
    (1.0,)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from collabzone.attacks._result import AttackResult, Claim, Guess, Log
from collabzone.attacks._scenario import Scenario, any_of
from collabzone.attacks._target import Answer, Question
from collabzone.attacks._target import Target as Asked

_TOLERANCE = 1e-6


@dataclass
class System:
    """Released answers as equations over ``cells`` unknowns, one value per aggregate."""

    cells: int
    aggregates: int
    rows: list[np.ndarray] = field(default_factory=list)
    values: list[tuple[float, ...]] = field(default_factory=list)

    def add(self, cells: Iterable[int], values: Sequence[float]) -> None:
        row = np.zeros(self.cells)
        row[list(cells)] = 1.0
        self.rows.append(row)
        self.values.append(tuple(float(v) for v in values))

    def solve(self, target: Iterable[int]) -> tuple[float, ...] | None:
        """The aggregates of the union ``target``, or ``None`` if the answers leave it open."""
        if not self.rows:
            return None
        wanted = np.zeros(self.cells)
        wanted[list(target)] = 1.0
        matrix = np.vstack(self.rows)
        weights, *_ = np.linalg.lstsq(matrix.T, wanted, rcond=None)
        if np.max(np.abs(matrix.T @ weights - wanted)) > _TOLERANCE:
            return None
        values = np.asarray(self.values)
        return tuple(float(x) for x in weights @ values)

    def unshown(self) -> tuple[int, ...]:
        """The cells that no released answer showed on their own."""
        alone = {int(np.flatnonzero(row)[0]) for row in self.rows if row.sum() == 1}
        return tuple(c for c in range(self.cells) if c not in alone)

    def released(self, target: Iterable[int]) -> bool:
        """Whether exactly this union was itself an answer (nothing to infer)."""
        wanted = np.zeros(self.cells)
        wanted[list(target)] = 1.0
        return any(np.array_equal(row, wanted) for row in self.rows)


@dataclass(frozen=True)
class Cell:
    """One disjoint cell of a plan: its predicate over the protected table."""

    name: str
    where: str


@dataclass(frozen=True)
class Ask:
    """One question of a plan: its WHERE, and the cells it is the union of."""

    where: str
    cells: tuple[int, ...]
    group_by: str | None = None
    """Grouped on this column: each released row is the cell ``group_cells[value]``."""
    group_cells: tuple[tuple[object, int], ...] = ()


@dataclass(frozen=True)
class Target:
    """A union of cells the plan wants to learn, and whom it concerns."""

    about: str
    cells: tuple[int, ...]
    victim: bool = True
    """Whether the union is the victim's own cell (its secret becomes a guess in DP)."""
    unshown: bool = False
    """The target is every cell that no released row showed alone (``cells`` ignored):
    what a total minus the shown groups gives."""


@dataclass(frozen=True)
class Plan:
    """Cells, the questions over them, and the unions to infer (one attack step)."""

    how: str
    cells: tuple[Cell, ...]
    asks: tuple[Ask, ...]
    targets: tuple[Target, ...]


def aggregates(scenario: Scenario) -> str:
    """What every set-algebra question selects: the cell's size and its secret sum."""
    return f"COUNT(*), SUM({scenario.secret})"


def question(scenario: Scenario, ask: Ask, epsilon: float | None) -> Question:
    select = aggregates(scenario)
    if ask.group_by is not None:
        sql = (
            f"SELECT {ask.group_by}, {select} FROM {scenario.table} WHERE {ask.where} "
            f"GROUP BY {ask.group_by}"
        )
    else:
        sql = f"SELECT {select} FROM {scenario.table} WHERE {ask.where}"
    return Question(sql, epsilon=epsilon)


def _record(system: System, ask: Ask, answer: Answer) -> None:
    if not answer.released:
        return
    if ask.group_by is None:
        count, total = answer.value(0), answer.value(1)
        if count is not None:
            system.add(ask.cells, [count, total or 0.0])
        return
    by_value = dict(ask.group_cells)
    for row in answer.rows:
        cell = by_value.get(row[0])
        count, total = row[1], row[2]
        if cell is not None and isinstance(count, int | float):
            system.add([cell], [float(count), float(total or 0.0)])


def _exact(value: float) -> float:
    """Exact answers are integers: drop the float residue of the least-squares weights."""
    rounded = round(value)
    return float(rounded) if abs(value - rounded) < 1e-6 else value


def run_plan(
    log: Log, scenario: Scenario, plan: Plan, epsilon: float | None
) -> tuple[list[Claim], list[Guess], bool]:
    """Ask the plan's questions and infer what the released ones determine.

    Returns the claims (exact answers), the guesses (noisy answers: the victim's secret
    rounded to 0 / 1) and whether every question could be asked within the budget.
    """
    system = System(len(plan.cells), aggregates=2)
    for ask in plan.asks:
        answer = log.ask(question(scenario, ask, epsilon))
        if answer is None:
            return [], [], False
        _record(system, ask, answer)
    claims: list[Claim] = []
    guesses: list[Guess] = []
    for target in plan.targets:
        cells = system.unshown() if target.unshown else target.cells
        if not cells or system.released(cells):
            continue
        solved = system.solve(cells)
        if solved is None:
            continue
        where = any_of([plan.cells[c].where for c in cells])
        count, total = (_exact(x) for x in solved)
        if epsilon is None:
            claims.append(Claim(target.about, "COUNT(*)", where, count, count, plan.how))
            secret = f"SUM({scenario.secret})"
            claims.append(Claim(target.about, secret, where, total, total, plan.how))
        elif target.victim:
            bit = float(min(1, max(0, round(total))))
            guesses.append(Guess(target.about, f"SUM({scenario.secret})", where, bit))
    return claims, guesses, True


def run_plans(
    target: Asked, scenario: Scenario, plans: Iterable[Plan], *, name: str, channel: str,
    queries: int,
) -> AttackResult:  # fmt: skip
    """Run ``plans`` one after the other until ``queries`` questions were asked (a DP
    scenario's budget is spread evenly over them) and collect what they inferred."""
    log = Log(target, queries)
    epsilon = scenario.epsilon / queries if scenario.epsilon is not None else None
    claims: list[Claim] = []
    guesses: list[Guess] = []
    for plan in plans:
        found, guessed, complete = run_plan(log, scenario, plan, epsilon)
        claims += found
        guesses += guessed
        if not complete:
            break
    return log.result(name, channel, claims=tuple(claims), guesses=tuple(guesses))


__all__ = [
    "Ask", "Cell", "Plan", "System", "Target", "aggregates", "question", "run_plan", "run_plans",
]  # fmt: skip
