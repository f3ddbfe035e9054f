"""The ``lookalike`` family: the partner reads a delivered audience to learn which of its
own customers are in the bank's seed set.

The partner knows every one of its customers' features and receives the audience. Overlap
members are never delivered, so a customer who looks exactly like the bank's buyers but is
missing from the audience was probably left out *because* it is a seed member. The attack
picks the partner customers most likely to be look-alikes (worst case: the attacker knows
the true propensity), puts a random half of them into the seed (world 1) and leaves the
other half out (world 0), asks for an audience, and guesses "member" for every target
that is absent. Its **advantage** is the true-positive rate minus the false-positive rate
of that guess (0: the audience says nothing; 1: it gives every member away).

With every look-alike delivered (``delivery_rate`` 1) the advantage is the chance that a
non-member target makes the audience; the delivery coin caps it near ``delivery_rate``:
a non-member look-alike is absent too whenever its coin shows tails. Presence is never
ambiguous: a delivered customer is certainly not in the seed (the issue forbids
delivering overlap members), which is documented in docs/lookalike.md.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

Deliver = Callable[[pa.Table, pa.Table], Sequence[str]]
"""(partner table, seed table) -> the audience tokens the partner receives."""


@dataclass(frozen=True)
class MembershipResult:
    """How well absence from the audience told seed membership, over all trials."""

    trials: int
    targets: int
    true_positive_rate: float
    false_positive_rate: float

    @property
    def advantage(self) -> float:
        """TPR - FPR of the guess "absent, hence a seed member"."""
        return self.true_positive_rate - self.false_positive_rate


def seed_membership(
    deliver: Deliver,
    partner: pa.Table,
    seed: pa.Table,
    likelihood: np.ndarray,
    targets: int = 100,
    trials: int = 3,
    rng_seed: int = 0,
) -> MembershipResult:
    """Run the membership attack ``trials`` times on ``targets`` look-alikes each.

    ``likelihood`` is the attacker's belief, per partner row, that the customer is a
    look-alike (the worst case hands it the true propensity); ``seed`` must list only
    customers outside the targets, the labels of added targets are ``True`` (a buyer).
    """
    rng = np.random.default_rng(rng_seed)
    tokens = np.asarray(partner.column("link_email").to_pylist(), dtype=object)
    in_seed = set(seed.column("link_email").to_pylist())
    free = np.array([t not in in_seed for t in tokens])
    ranked = [i for i in np.argsort(-likelihood, kind="stable") if free[i]][:targets]
    hits = {True: 0, False: 0}
    totals = {True: 0, False: 0}
    for _ in range(trials):
        members = rng.random(len(ranked)) < 0.5
        added = [str(tokens[i]) for i, m in zip(ranked, members, strict=True) if m]
        world = pa.concat_tables(
            [seed, pa.table({"link_email": added, "bought": [True] * len(added)})]
        )
        audience = set(deliver(partner, world))
        for i, member in zip(ranked, members, strict=True):
            member = bool(member)
            totals[member] += 1
            hits[member] += str(tokens[i]) not in audience
    return MembershipResult(
        trials=trials,
        targets=len(ranked),
        true_positive_rate=hits[True] / max(1, totals[True]),
        false_positive_rate=hits[False] / max(1, totals[False]),
    )
