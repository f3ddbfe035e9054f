"""Membership inference against a released model: the loss-threshold attack.

Yeom et al. (2018): a model's loss is lower on the records it was trained on, so an
attacker who holds a record and the model guesses "member" when the record's loss is below
a threshold. :func:`loss_threshold_advantage` scores the attacker at its *best* threshold
(chosen with hindsight over both sets, an upper bound on what a real attacker reaches):
advantage = max over thresholds of TPR - FPR, 0 for a model that tells nothing, 1 for one
that gives every member away.

:func:`dp_advantage_bound` is what differential privacy promises against *any* attacker:
under (epsilon, delta)-DP at the attacked unit, TPR <= e^epsilon FPR + delta and the same
for the complements, so TPR - FPR <= (e^epsilon - 1 + 2 delta) / (e^epsilon + 1)
(Kairouz, Oh and Viswanath 2015; Humphries et al. 2020).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

Losses = Sequence[float] | npt.NDArray[np.floating]


def loss_threshold_advantage(members: Losses, non_members: Losses) -> float:
    """The loss-threshold attacker's best TPR - FPR (members have the lower losses)."""
    inside = np.sort(np.asarray(members, dtype=np.float64))
    outside = np.sort(np.asarray(non_members, dtype=np.float64))
    if inside.size == 0 or outside.size == 0:
        raise ValueError("both members and non-members are needed")
    thresholds = np.concatenate([inside, outside])
    tpr = np.searchsorted(inside, thresholds, side="right") / inside.size
    fpr = np.searchsorted(outside, thresholds, side="right") / outside.size
    return float(max(0.0, np.max(tpr - fpr)))


def dp_advantage_bound(epsilon: float, delta: float = 0.0) -> float:
    """The most any membership attacker gains (TPR - FPR) under (epsilon, delta)-DP."""
    if epsilon > 700:
        return 1.0
    return min(1.0, (math.exp(epsilon) - 1 + 2 * delta) / (math.exp(epsilon) + 1))
