"""Client-level DP accounting for a federated job, by a vetted accountant (dp-accounting).

Each round is one Gaussian mechanism on the sum of clipped client updates: every sampled
client clips its update to L2 norm ``clipping_norm`` and the aggregate gets Gaussian noise
of standard deviation ``noise_multiplier * clipping_norm`` (on the sum; Flower's
``DifferentialPrivacyClientSideFixedClipping`` adds it divided by the number of clients to
the mean, which is the same mechanism). With sampling rate ``q`` (clients sampled per
round / clients in the job), a round is a Poisson-subsampled Gaussian event; ``rounds``
rounds compose. The RDP accountant of Google's ``dp_accounting`` turns that into
(epsilon, delta). The privacy unit is one **client** (one owner's whole dataset).

Integer Renyi orders only (2..64 and a few larger): fractional orders make the
accountant's series fail to converge for large ``q`` (it drops them with a warning), and
any set of orders gives a valid bound (the minimum over the orders tried).
"""

from __future__ import annotations

import dp_accounting
from dp_accounting import rdp

ORDERS = tuple(float(a) for a in (*range(2, 65), 80, 96, 128, 192, 256))


def _event(rounds: int, sampling_rate: float, noise_multiplier: float) -> dp_accounting.DpEvent:
    gaussian = dp_accounting.GaussianDpEvent(noise_multiplier)
    step: dp_accounting.DpEvent = (
        gaussian
        if sampling_rate >= 1.0
        else dp_accounting.PoissonSampledDpEvent(sampling_rate, gaussian)
    )
    return dp_accounting.SelfComposedDpEvent(step, rounds)


def epsilon(rounds: int, sampling_rate: float, noise_multiplier: float, delta: float) -> float:
    """Epsilon after ``rounds`` rounds at ``delta`` (``inf`` without noise)."""
    if rounds <= 0:
        return 0.0
    if noise_multiplier <= 0:
        return float("inf")
    accountant = rdp.RdpAccountant(list(ORDERS))
    accountant.compose(_event(rounds, sampling_rate, noise_multiplier))
    return float(accountant.get_epsilon(delta))


def max_rounds(
    budget: float, sampling_rate: float, noise_multiplier: float, delta: float, cap: int
) -> int:
    """The most rounds (at most ``cap``) whose total epsilon stays within ``budget``.

    The job runs this many rounds and stops: the round that would exceed the budget never
    starts. Epsilon grows with rounds, so a binary search over ``[0, cap]`` suffices.
    """
    if budget == float("inf"):
        return cap
    low, high = 0, cap
    while low < high:
        mid = (low + high + 1) // 2
        if epsilon(mid, sampling_rate, noise_multiplier, delta) <= budget:
            low = mid
        else:
            high = mid - 1
    return low
