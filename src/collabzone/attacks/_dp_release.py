"""DP releases asked again and again: order statistics and SELECT DISTINCT (issue 11).

Two families an analyst with a DP budget tries once MIN / MAX / MEDIAN and SELECT
DISTINCT are answered in dp mode. Each asks the same question many times, at a slightly
different epsilon every time (a different budget is a different question to the zone's
DP cache, so every answer carries fresh noise), and pools what comes back:

=================== ======================================================================
order_statistic     ``MAX(measure)`` (or MIN / MEDIAN) of a group holding a planted
                    outlier: does any answer equal the outlier's value, or do the answers
                    concentrate near it? (a private quantile releases grid points, spread
                    by the exponential mechanism)
distinct_segment    ``SELECT DISTINCT column``: does a value that one person alone holds
                    ever appear? (private partition selection keeps it out except with
                    probability delta per answer)
=================== ======================================================================

Both are pure: they never see the data. The caller plants the outlier or the one-person
segment and judges the answers with :func:`outlier_revealed` / the ``appearances`` count.
"""

from __future__ import annotations

from collections import Counter

from collabzone.attacks._result import AttackResult, Guess, Log
from collabzone.attacks._scenario import literal
from collabzone.attacks._target import Question, Target

CHANNEL = "7: repeated DP releases (order statistics, partition selection)"
_STEP = 1e-6
"""Relative change of epsilon between two asks (each a fresh question, fresh noise)."""


def order_statistic(
    target: Target,
    *,
    table: str,
    measure: str,
    group_column: str,
    group_value: object,
    func: str = "MAX",
    epsilon: float = 1.0,
    queries: int = 20,
) -> AttackResult:
    """Ask ``func(measure)`` per ``group_column`` ``queries`` times; the guess for the
    outlier's value is the most frequent answer for ``group_value`` (measurements
    ``values``: every answer for that group, in order)."""
    log = Log(target, queries)
    sql = f"SELECT {group_column}, {func}({measure}) AS v FROM {table} GROUP BY {group_column}"
    seen: list[float] = []
    for i in range(queries):
        answer = log.ask(Question(sql, epsilon=epsilon * (1 - i * _STEP)))
        if answer is None or not answer.released:
            continue
        for row in answer.rows:
            if row[0] == group_value and isinstance(row[1], int | float):
                seen.append(float(row[1]))
    guesses: tuple[Guess, ...] = ()
    if seen:
        value = Counter(seen).most_common(1)[0][0]
        where = f"{group_column} = {literal(group_value)}"
        guesses = (Guess("outlier", f"{func}({measure})", where, value),)
    return log.result(
        "order_statistic", CHANNEL, guesses=guesses, measurements={"values": tuple(seen)}
    )


def outlier_revealed(result: AttackResult, secret: float, *, tolerance: float) -> dict[str, float]:
    """How much the answers gave the outlier away: exact hits, answers within
    ``tolerance`` of it (their share), and the spread of the answers."""
    values = result.measurements.get("values", ())
    near = sum(abs(v - secret) <= tolerance for v in values)
    return {
        "answers": float(len(values)),
        "exact": float(sum(v == secret for v in values)),
        "near": float(near),
        "near_share": near / len(values) if values else 0.0,
        "spread": (max(values) - min(values)) if values else 0.0,
    }


def distinct_segment(
    target: Target,
    *,
    table: str,
    column: str,
    value: object,
    epsilon: float = 1.0,
    queries: int = 20,
) -> AttackResult:
    """Ask ``SELECT DISTINCT column`` ``queries`` times; measurements ``appearances``
    (answers listing ``value``) and ``answers`` (answers released)."""
    log = Log(target, queries)
    sql = f"SELECT DISTINCT {column} FROM {table}"
    appearances = answers = 0
    for i in range(queries):
        answer = log.ask(Question(sql, epsilon=epsilon * (1 - i * _STEP)))
        if answer is None or not answer.released:
            continue
        answers += 1
        appearances += any(row[0] == value for row in answer.rows)
    return log.result(
        "distinct_segment",
        CHANNEL,
        measurements={"appearances": (float(appearances),), "answers": (float(answers),)},
    )


__all__ = ["distinct_segment", "order_statistic", "outlier_revealed"]
