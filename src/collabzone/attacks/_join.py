"""Join amplification: an attacker-owned join side multiplies one person (channel 4).

The attacker, also a provider, uploads a table of its own: for each victim, ``copies``
rows carrying the victim's token, plus ``padding`` rows for other people it holds (so
the joined group is large enough to be released), all tagged with the victim's number.
Joined with the protected table and filtered on the tag, COUNT(*) is ``copies`` plus the
padding when rows multiply, and SUM(secret) is ``copies * secret + (padding's sum)``: the
victim's bit, to within ``padding / copies``. The attack first checks the multiplication
(COUNT(*) far above the padding); without it, it claims nothing. In DP the same query
shows the victim's bit through noise calibrated to one row, unless contributions are
bounded per person after the join.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa

from collabzone.attacks._result import AttackResult, Claim, Guess, Log
from collabzone.attacks._scenario import Person, Scenario
from collabzone.attacks._target import Question, Uploader
from collabzone.attacks._target import Target as Asked
from collabzone.errors import CollabzoneError

CHANNEL = "4: an attacker-owned join side"
COPIES = (1000, 500, 200, 100, 50)
"""Rows per victim in each probe table (one table per multiplication, its own tags); every
multiplication exceeds the padding, so an exact, multiplied sum gives the bit for sure."""
TAG_STRIDE = 100_000


def probe_table(victims: Sequence[Person], helpers: Sequence[str], copies: int, padding: int,
                offset: int = 0) -> pa.Table:  # fmt: skip
    """The attacker's rows: per victim, ``copies`` of its token and ``padding`` helpers,
    under tag ``offset + victim number``; helpers are used once each (disjoint groups)."""
    tokens: list[str] = []
    tags: list[int] = []
    for n, victim in enumerate(victims):
        assert victim.token is not None
        own = list(helpers[n * padding : (n + 1) * padding])
        tokens += [victim.token] * copies + own
        tags += [offset + n] * (copies + len(own))
    return pa.table({"token": tokens, "tag": tags})


PROBE_COLUMNS = (
    {"name": "token", "type": "string", "class": "join_key"},
    {"name": "tag", "type": "integer", "class": "dimension"},
)


def _bit(scenario: Scenario, evidence: list[tuple[int, float, float | None]], padding: int,
         dp: bool) -> tuple[float, int | None]:  # fmt: skip
    """The victim's bit from its answers, and the multiplication that made it certain."""
    if dp:  # noisy sums: take off the padding's expected share (a quarter), divide
        copies = sum(c for c, _, _ in evidence)
        total = sum(t for _, t, _ in evidence) - len(evidence) * padding / 4
        return float(min(1, max(0, round(total / copies)))) if copies else 0.0, None
    for copies, total, count in evidence:
        if count is not None and count > copies / 2:  # rows multiplied: padding < copies
            return float(min(1, max(0, total // copies))), copies
    return 0.0, None


def join_amplification(target: Asked, scenario: Scenario, *, queries: int = 500) -> AttackResult:
    """Upload probe tables, then ask the joined COUNT and SUM for each victim.

    Exact answers: one probe table per multiplication in :data:`COPIES`, a claim when the
    count shows multiplied rows. DP: only the largest multiplication, SUM alone (the
    whole budget on the most amplified question), one guess per victim.
    """
    log = Log(target, queries)
    padding = 2 * scenario.min_group_size
    victims = [v for v in scenario.victims if v.token is not None]
    victims = victims[: len(scenario.helpers) // padding]
    if not isinstance(target, Uploader) or not victims:
        return log.result("join", CHANNEL, notes=("the target takes no uploads, or no tokens",))
    dp = scenario.epsilon is not None
    multiplications = COPIES[:1] if dp else COPIES
    victims = victims[: max(1, queries // len(multiplications))]
    eps = None
    if scenario.epsilon is not None:
        eps = scenario.epsilon / (len(victims) * len(multiplications))
    select = f"SUM(t.{scenario.secret})" if dp else f"COUNT(*), SUM(t.{scenario.secret})"
    evidence: dict[str, list[tuple[int, float, float | None]]] = {}
    notes: list[str] = []
    for round_, copies in enumerate(multiplications):
        try:
            table = target.upload(
                f"probe_{scenario.seed}_{copies}",
                probe_table(victims, scenario.helpers, copies, padding, round_ * TAG_STRIDE),
                PROBE_COLUMNS,
            )
        except CollabzoneError as exc:  # a refused upload ends this round, not the run
            notes.append(f"upload refused: {exc.code}")
            continue
        for n, victim in enumerate(victims):
            sql = (
                f"SELECT {select} FROM {table} p "
                f"JOIN {scenario.table} t ON p.token = t.{scenario.entity} "
                f"WHERE p.tag = {round_ * TAG_STRIDE + n}"
            )
            answer = log.ask(Question(sql, epsilon=eps))
            if answer is None:
                break
            count = None if dp else answer.value(0)
            total = answer.value(0 if dp else 1)
            if total is not None:
                evidence.setdefault(victim.name, []).append((copies, total, count))
    secret = f"SUM({scenario.secret})"
    claims: list[Claim] = []
    guesses: list[Guess] = []
    multiplied = 0
    for victim in victims:
        bit, certain = _bit(scenario, evidence.get(victim.name, []), padding, dp)
        guesses.append(Guess(victim.name, secret, victim.where(), bit))
        if certain is not None:
            multiplied += 1
            claims.append(Claim(victim.name, secret, victim.where(), bit, bit, f"x{certain}"))
    notes.append(f"victims whose rows were seen multiplied: {multiplied}")
    return log.result(
        "join", CHANNEL, claims=tuple(claims), guesses=tuple(guesses), notes=tuple(notes)
    )


__all__ = ["PROBE_COLUMNS", "join_amplification", "probe_table"]
