"""DP noise on an ``he_sum`` total, added by the mediator under encryption (seed 003).

The protected unit is a **person** in a provider's data. Each provider declares, in its
``he_sum`` agreement, ``contribution_bound``: the most its vector changes, in L1 norm,
when one person is added or removed (1 for a histogram that counts each person once in
one category; the clipping bound for sums of a clipped value per person). A person may
be in several providers' data, so the total's L1 sensitivity is the **sum** of the
bounds of the datasets it adds (:func:`sensitivity`).

The zone, as mediator, draws a Laplace vector of scale ``sensitivity / epsilon`` with
OpenDP's sampler (its privacy map is checked against the priced epsilon before it runs),
encrypts it under the recipient's **public** context and adds it to the encrypted total
(:func:`noisy_total`). The recipient decrypts only ``total + noise``; the zone knows the
noise but cannot decrypt the total. The noise lives only in this process's memory: it is
never stored, logged or released. Pure epsilon-DP per release (the CKKS approximation
error, ~1e-7 on these parameters, comes on top and is not accounted for).

Trust: this is seed 003's Architecture 1, the mediator a trusted third party that does
not collude with the recipient. A mediator that colluded with the recipient could hand
it the noise (exact total) or, worse, each provider's deposit (every vector): noise by
the mediator protects against the recipient and analysts, not against that coalition.
"""

from __future__ import annotations

from collections.abc import Mapping

from collabzone.errors import InternalError, InvalidInputError
from collabzone.techniques.mpc._he import add_plain_encrypted, lengths

MECHANISM = "Laplace (OpenDP), added by the zone under encryption; pure epsilon-DP"


def sensitivity(bounds: Mapping[str, float]) -> float:
    """L1 sensitivity of a total over datasets with these declared contribution bounds.

    Raises :class:`InvalidInputError` for a bound that is not a positive finite number.
    """
    total = 0.0
    for name, bound in bounds.items():
        value = float(bound)
        if not value > 0 or value == float("inf"):
            raise InvalidInputError(
                f"contribution_bound of {name!r} must be a positive number, not {bound!r}"
            )
        total += value
    return total


def laplace_vector(length: int, scale: float, epsilon: float, l1: float) -> list[float]:
    """``length`` draws of Laplace(0, ``scale``) from OpenDP's vector Laplace sampler.

    The measurement's privacy map at ``l1`` must not exceed ``epsilon`` (checked before
    sampling); applied to a zero vector, its output is the noise itself.
    """
    # OpenDP's modules themselves, not its prelude: the prelude imports scikit-learn
    # (seconds of start-up), which a mediator adding noise to a vector does not need
    from opendp.domains import atom_domain, vector_domain
    from opendp.measurements import make_laplace
    from opendp.metrics import l1_distance
    from opendp.mod import enable_features

    enable_features("contrib")
    measurement = make_laplace(
        vector_domain(atom_domain(T=float, nan=False)), l1_distance(T=float), scale=scale
    )
    if measurement.map(l1) > epsilon * (1 + 1e-9):
        raise InternalError("the noise measurement would spend more than the priced epsilon")
    return [float(v) for v in measurement([0.0] * length)]


def noisy_total(
    public_context: bytes, total: bytes, *, l1: float, epsilon: float
) -> tuple[bytes, float]:
    """The encrypted ``total`` plus encrypted Laplace noise; returns it and the scale."""
    if not epsilon > 0:
        raise InvalidInputError("epsilon must be positive")
    scale = l1 / epsilon
    length = sum(lengths(public_context, total))
    noise = laplace_vector(length, scale, epsilon, l1)
    return add_plain_encrypted(public_context, total, noise), scale


__all__ = ("MECHANISM", "laplace_vector", "noisy_total", "sensitivity")
