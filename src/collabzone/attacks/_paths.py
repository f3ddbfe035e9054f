"""Rules that held on one path but not on its neighbour (issue 20): ``rule_paths``.

Each attack here sends the exact requests that broke a list or template rule before the
fixes of issue 20, so the fixes stay tested as attacks, not only as unit tests:

* :func:`list_self_join`: a list of the partner's dataset joined *with itself* counted as
  an overlap, and listed the partner's people without any match in the requester's data;
* :func:`list_unlisted_key`: a list joined on a ``join_key`` column the agreement's
  ``join_keys`` does not name (``link_phone`` when only ``link_email`` was listed);
* :func:`template_cross_owner`: a template of one owner's agreement reading another
  owner's columns (the MAX or MIN of a measure no rule of that owner allows), released
  because only the defining owner's approval was checked.

Every listed row, and every released MAX or MIN, is one person's value: each becomes a
:class:`Claim` "at least one row of the partner's dataset has this value", which
:func:`collabzone.attacks.judge` finds right and isolating against the partner's table. A
safe zone refuses every question; the result's notes say which were released.

Templates and explicit analysis modes are keys of the request spec that
:class:`~collabzone.attacks.Question` does not carry: :class:`SpecQuestion` adds them, and
any target that calls ``question.spec()`` (``ZoneTarget`` does) sends them unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from collabzone.attacks._result import AttackResult, Claim, Log
from collabzone.attacks._scenario import literal
from collabzone.attacks._target import Answer, Question
from collabzone.attacks._target import Target as Asked

CHANNEL = "rule paths: a rule checked on one path but not its neighbour (issue 20)"


@dataclass(frozen=True)
class SpecQuestion(Question):
    """A :class:`Question` with the ``sql`` technique's other request keys.

    ``analysis`` asks for a mode explicitly (``"list"``); ``template`` names a template
    bound to ``params`` (name, value pairs, so the question stays hashable), and then
    ``sql`` only describes the request: the zone runs the template's own body.
    """

    analysis: str | None = None
    template: str | None = None
    params: tuple[tuple[str, Any], ...] = ()

    def spec(self) -> dict[str, Any]:
        """The request spec: a template by name with its parameters, or the SQL."""
        if self.template is not None:
            spec: dict[str, Any] = {"template": self.template, "params": dict(self.params)}
            if self.epsilon is not None:
                spec["epsilon"] = self.epsilon
            if self.rho is not None:
                spec["rho"] = self.rho
        else:
            spec = super().spec()
        if self.analysis is not None:
            spec["analysis"] = self.analysis
        return spec


def _value_claim(column: str, value: Any, how: str) -> Claim | None:
    """A claim that some row of the partner's dataset has ``column`` = ``value`` (None
    when the value has no literal: NULL, NaN)."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    where = (
        f"{column} = CAST({value!r} AS DOUBLE)"
        if isinstance(value, float)
        else f"{column} = {literal(value)}"
    )
    return Claim(f"{column}={value!r}", "COUNT(*)", where, 1.0, math.inf, how)


def _ask_all(
    log: Log, questions: Sequence[Question], outputs: Mapping[str, str], how: str
) -> tuple[list[Claim], list[str]]:
    """Ask every question; a claim for each released value of an output in ``outputs``
    (output column name, or ``"0"`` for the first, to the partner's column it shows)."""
    claims: dict[str, Claim] = {}
    notes: list[str] = []
    for question in questions:
        answer = log.ask(question)
        if answer is None:
            notes.append(f"not asked (budget): {question.sql}")
            continue
        notes.append(_outcome(answer, question))
        if not answer.released:
            continue
        for output, column in outputs.items():
            index = _index(answer, output)
            if index is None:
                notes.append(f"released without an output {output!r}: no claim on {column}")
                continue
            for row in answer.rows:
                claim = _value_claim(column, row[index], how)
                if claim is not None:
                    claims.setdefault(claim.where, claim)
    return list(claims.values()), notes


def _index(answer: Answer, output: str) -> int | None:
    if output.isdigit():
        return int(output)
    return answer.columns.index(output) if output in answer.columns else None


def _outcome(answer: Answer, question: Question) -> str:
    spec = question.spec()
    what = f"template {spec['template']!r} {spec['params']}" if "template" in spec else spec["sql"]
    if "analysis" in spec:
        what += f" (analysis {spec['analysis']})"
    if answer.released:
        return f"released {len(answer.rows)} rows: {what}"
    if answer.status == "withheld":
        return f"withheld: {what}"
    return f"refused {', '.join(answer.reasons)}: {what}"


def _list_questions(sql: str) -> tuple[SpecQuestion, SpecQuestion]:
    """The list as the zone infers it (no aggregate) and as asked for explicitly."""
    return SpecQuestion(sql), SpecQuestion(sql, analysis="list")


def list_self_join(
    target: Asked, dataset: str, key_column: str, column: str, *, where: str | None = None
) -> AttackResult:
    """List ``column`` of the partner's ``dataset`` joined with itself on ``key_column``.

    Why: a join was taken for an overlap without asking whose datasets it matched, so
    ``shop p JOIN shop q`` listed the shop's people whether or not the requester holds
    them. Each listed value is claimed as a person of ``dataset`` listed outside any
    overlap with the requester's data. ``where`` (on alias ``p``) narrows the list, as the
    original request did (``p.shop_segment = 'kids'``). A safe zone refuses (SELF_JOIN,
    LIST_NEEDS_OVERLAP).
    """
    sql = f"SELECT p.{column} FROM {dataset} p JOIN {dataset} q ON p.{key_column} = q.{key_column}"
    how = f"listed by {dataset} joined with itself: matched against nobody else's data"
    return _list_attack(target, "list_self_join", sql, where, column, how)


def list_unlisted_key(
    target: Asked,
    dataset: str,
    other: str,
    key_column: str,
    column: str,
    *,
    where: str | None = None,
) -> AttackResult:
    """List ``column`` of ``dataset`` for the rows matching ``other`` on ``key_column``,
    a join key the agreement on ``dataset`` does not name in ``join_keys``.

    Why: the list path checked that a join used *a* join key, not one of the keys the
    owner agreed to match on (``join_keys: [email]`` let a join on ``phone`` through).
    ``other`` is a dataset of another owner (the requester's own, or a third party's).
    Each listed value is claimed as a person of ``dataset`` found through a key its owner
    never agreed to. A safe zone refuses (JOIN_NOT_ALLOWED).
    """
    sql = f"SELECT p.{column} FROM {dataset} p JOIN {other} o ON p.{key_column} = o.{key_column}"
    how = f"listed through {key_column}, a join key the agreement on {dataset} does not name"
    return _list_attack(target, "list_unlisted_key", sql, where, column, how)


def _list_attack(
    target: Asked, name: str, sql: str, where: str | None, column: str, how: str
) -> AttackResult:
    """Ask ``sql`` (narrowed by ``where``) as a list, both ways, and claim what it lists."""
    if where:
        sql += f" WHERE {where}"
    log = Log(target, 2)
    claims, notes = _ask_all(log, _list_questions(sql), {"0": column}, how)
    return log.result(name, CHANNEL, claims=tuple(claims), notes=tuple(notes))


def template_cross_owner(
    target: Asked,
    template: str,
    params: Mapping[str, Any],
    *,
    reads: Mapping[str, str],
) -> AttackResult:
    """Run ``template`` (defined in one owner's agreement) with ``params``, where the
    template reads columns of another owner that approved nothing.

    Why: a template waives the column rules because its owners approved that exact
    query; the approval of the defining owner alone let it read a partner's measure (the
    MAX or MIN of ``spend``) that no rule of the partner allows. ``reads`` maps each
    output column of the template to the partner's column it is a MAX or MIN of: every
    released value is one person's exact value, claimed as such. A safe zone refuses
    (TEMPLATE_NOT_APPROVED, or an invalid request when the owners' definitions differ or
    none is shared with the requester).
    """
    question = SpecQuestion(
        f"-- template {template}", template=template, params=tuple(sorted(params.items()))
    )
    log = Log(target, 1)
    how = f"MAX or MIN released by template {template!r}: one person's value"
    claims, notes = _ask_all(log, [question], reads, how)
    return log.result("template_cross_owner", CHANNEL, claims=tuple(claims), notes=tuple(notes))


__all__ = [
    "CHANNEL",
    "SpecQuestion",
    "list_self_join",
    "list_unlisted_key",
    "template_cross_owner",
]
