"""Reconstruction by linear programming over released cells (Dinur and Nissim, 2003).

The attacker knows a small population (the victims: each alone in its quasi-identifier
cell) and wants every person's secret bit. It asks many random subset sums, "the secret
summed over these people", each a union of the victims' cells, and solves a linear
program over the bits x in [0, 1]^n:

* every guess: minimise the total error sum |A x - b| (an LP with one slack per answer;
  zero for exact answers) and round;
* exact answers: a bit is *certain* when the equations fix it (:func:`certain_bits`:
  linear algebra and interval propagation), or when no other 0/1 solution of them
  changes it (:func:`unique_bits`: one integer program per bit). Auditing which
  combinations of answers are *linearly* derivable does not stop this: the bits are
  0 or 1, and that is enough to pin down every one of them from fewer answers than
  people, once the answers are random subsets.

With o(sqrt(n)) noise per answer and about n log n answers the LP recovers almost every
bit; DP noise calibrated to the whole budget must not let it.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence

import numpy as np
from scipy.optimize import (  # type: ignore[import-untyped]
    Bounds,
    LinearConstraint,
    linprog,
    milp,
)

from collabzone.attacks._result import AttackResult, Claim, Guess, Log
from collabzone.attacks._scenario import Person, Scenario, any_of, conjunction, literal
from collabzone.attacks._target import Question
from collabzone.attacks._target import Target as Asked

CHANNEL = "1: reconstruction from many subset sums (LP)"
_INFEASIBLE = 2
"""scipy's ``milp`` status for a proven infeasible program."""
MAX_POPULATION = 100
"""Victims in one reconstruction: one OR term per shared prefix keeps the SQL within the
front end's depth limit."""


def subset_where(people: Sequence[Person]) -> str:
    """The union of the people's cells, compactly: one term per shared prefix of values,
    with the most varied column as an IN list (``race = 'x' AND ... AND age IN (..)``)."""
    columns = list(people[0].quasi)
    fine = max(columns, key=lambda c: len({p.quasi[c] for p in people}))
    terms: dict[tuple[object, ...], list[object]] = defaultdict(list)
    for person in people:
        prefix = tuple(person.quasi[c] for c in columns if c != fine)
        terms[prefix].append(person.quasi[fine])
    parts = []
    for prefix, values in terms.items():
        rest = dict(zip([c for c in columns if c != fine], prefix, strict=True))
        listed = ", ".join(literal(v) for v in sorted(set(values), key=str))
        head = conjunction(rest)
        parts.append(f"{head} AND {fine} IN ({listed})" if head else f"{fine} IN ({listed})")
    return any_of(parts)


def certain_bits(a: np.ndarray, b: np.ndarray, rounds: int = 50) -> dict[int, float]:
    """The bits that exact equations A x = b over x in {0, 1}^n fix, found two sound ways:

    * linear algebra: x_i is fixed when e_i lies in the row space of A (orthogonal to its
      null space); its value is then the same in every solution, e.g. the least-norm one;
    * interval propagation: with every other bit of an equation at its bounds, the sum
      forces x_i (a subset summing to 0, or to its size, fixes all its members).

    Sound but not complete (an LP per bit would find a few more): a claimed bit is never
    wrong when the answers are exact.
    """
    fixed: dict[int, float] = {}
    _, singular, vt = np.linalg.svd(a, full_matrices=True)
    rank = int((singular > 1e-9 * max(1.0, float(singular[0]) if singular.size else 1.0)).sum())
    null = vt[rank:]
    least, *_ = np.linalg.lstsq(a, b, rcond=None)
    for i in range(a.shape[1]):
        if null.shape[0] == 0 or np.max(np.abs(null[:, i])) < 1e-9:
            fixed[i] = float(min(1, max(0, round(float(least[i])))))
    low, high = np.zeros(a.shape[1]), np.ones(a.shape[1])
    for i, bit in fixed.items():
        low[i] = high[i] = bit
    for _ in range(rounds):
        changed = False
        for row, total in zip(a, b, strict=True):
            members = np.flatnonzero(row)
            top, bottom = high[members].sum(), low[members].sum()
            for j in members.tolist():  # sums taken before the updates: looser, still sound
                at_least = total - (top - high[j])
                at_most = total - (bottom - low[j])
                if at_least > low[j] + 1e-9:
                    low[j], changed = min(1.0, float(np.ceil(at_least - 1e-9))), True
                if at_most < high[j] - 1e-9:
                    high[j], changed = max(0.0, float(np.floor(at_most + 1e-9))), True
        if not changed:
            break
    for k in np.flatnonzero(low == high).tolist():
        fixed[k] = float(low[k])
    return fixed


def unique_bits(
    a: np.ndarray, b: np.ndarray, guess: np.ndarray, *, seconds: float = 30.0
) -> dict[int, float]:
    """The bits of an integer solution of A x = b that no other 0/1 solution changes.

    Starting from ``guess`` (rounded; checked to solve the equations, else an integer
    solution is searched for), each bit is flipped in turn and a mixed-integer program
    (HiGHS through scipy) looks for a 0/1 solution with the flip: none means the bit is
    certain. The search stops after ``seconds`` (bits not reached stay uncertain).
    """
    n = a.shape[1]
    started = time.perf_counter()
    equations = LinearConstraint(a, b, b)
    whole = np.ones(n)
    x = np.round(guess)
    if not np.allclose(a @ x, b, atol=1e-6):
        found = milp(np.zeros(n), constraints=equations, integrality=whole, bounds=Bounds(0, 1),
                     options={"time_limit": seconds / 4})  # fmt: skip
        if found.status != 0:
            return {}
        x = np.round(found.x)
    fixed: dict[int, float] = {}
    for i in range(n):
        left = seconds - (time.perf_counter() - started)
        if left <= 0:
            break
        low, high = np.zeros(n), np.ones(n)
        low[i] = high[i] = 1 - x[i]
        other = milp(np.zeros(n), constraints=equations, integrality=whole,
                     bounds=Bounds(low, high), options={"time_limit": min(left, 5.0)})  # fmt: skip
        if other.status == _INFEASIBLE:
            fixed[i] = float(x[i])
    return fixed


def _least_error(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The x in [0, 1]^n minimising sum |A x - b| (slacks e >= |A x - b|)."""
    m, n = a.shape
    cost = np.concatenate([np.zeros(n), np.ones(m)])
    upper = np.hstack([a, -np.eye(m)])  # A x - e <= b
    lower = np.hstack([-a, -np.eye(m)])  # -A x - e <= -b
    bounds = [(0.0, 1.0)] * n + [(0.0, None)] * m
    solved = linprog(
        cost,
        A_ub=np.vstack([upper, lower]),
        b_ub=np.concatenate([b, -b]),
        bounds=bounds,
        method="highs",
    )
    return np.asarray(solved.x[:n]) if solved.status == 0 else np.full(n, 0.5)


def reconstruct(target: Asked, scenario: Scenario, *, queries: int = 500) -> AttackResult:
    """Ask ``queries`` random subset sums of the victims' secret and solve for every bit."""
    people = list(scenario.victims[:MAX_POPULATION])
    log = Log(target, queries)
    if not people:
        return log.result("reconstruction", CHANNEL, notes=("no victims",))
    eps = scenario.epsilon / queries if scenario.epsilon is not None else None
    rng = np.random.default_rng(scenario.seed)
    rows: list[np.ndarray] = []
    values: list[float] = []
    while log.remaining > 0:
        chosen = rng.random(len(people)) < 0.5
        if not chosen.any():
            continue
        where = subset_where([p for p, c in zip(people, chosen, strict=True) if c])
        sql = f"SELECT SUM({scenario.secret}) FROM {scenario.table} WHERE {where}"
        answer = log.ask(Question(sql, epsilon=eps))
        value = answer.value() if answer is not None else None
        if value is not None:
            rows.append(chosen.astype(float))
            values.append(value)
    claims: list[Claim] = []
    guesses: list[Guess] = []
    secret = f"SUM({scenario.secret})"
    if rows:
        a, b = np.vstack(rows), np.asarray(values)
        x = _least_error(a, b)
        fixed = {}
        if eps is None:
            fixed = certain_bits(a, b)
            if len(fixed) < len(people):
                fixed.update(unique_bits(a, b, x))
        for i, person in enumerate(people):
            bit = fixed.get(i, float(x[i] > 0.5))
            guesses.append(Guess(person.name, secret, person.where(), bit))
            if i in fixed:
                claims.append(Claim(person.name, secret, person.where(), bit, bit, "LP"))
    if not guesses:  # nothing released: the uninformed guess for everyone
        guesses = [Guess(p.name, secret, p.where(), 0.0) for p in people]
    return log.result(
        "reconstruction",
        CHANNEL,
        claims=tuple(claims),
        guesses=tuple(guesses),
        measurements={"answers_used": (float(len(rows)),)},
    )


__all__ = ["certain_bits", "reconstruct", "subset_where", "unique_bits"]
