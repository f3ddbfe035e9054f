"""Attacks on HE aggregation through the zone as mediator (issue 15, technique ``he_sum``).

* :func:`he_self_padding`: the recipient registers a dataset of its own, deposits an
  encrypted vector of zeros, and asks for the total of its zeros and the victim's vector:
  two datasets, two owners, and the total is the victim's vector. The technique counts
  only providers other than the requester and the recipient, so it refuses.
* :func:`he_mediator_decrypt`: a curious mediator (or anyone reading the zone's store)
  tries to decrypt a stored total with what it holds, the recipient's public context.
  CKKS decryption needs the secret key, which the zone never had.
* :func:`he_differencing`: two totals whose providers differ by one, {A, B, C} and then
  {B, C} (asked by any analysts, who pool them): their difference is A's vector. The
  technique audits every he_sum release's providers as atoms and refuses the second.

All are plain functions of what the attacker holds; neither imports the technique.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

Ask = Callable[[Mapping[str, Any]], Mapping[str, Any]]
Decrypt = Callable[[Mapping[str, Any]], list[float]]


def he_self_padding(
    ask: Ask, decrypt: Decrypt, own: str, victim: str, recipient: str
) -> list[float] | None:
    """The victim's vector if the zone released ``own + victim`` (``own`` is all zeros).

    ``ask(spec)`` returns the released payload or raises on refusal; ``decrypt`` is the
    recipient's client. None: the attack was refused.
    """
    try:
        payload = ask({"datasets": [own, victim], "recipient": recipient})
    except Exception:  # a refusal is this attack's failure, whatever its type
        return None
    return decrypt(payload)


def he_differencing(
    ask: Ask, decrypt: Decrypt, everyone: list[str], without_victim: list[str], recipient: str
) -> list[float] | None:
    """The victim's vector as the difference of the totals of ``everyone`` and of
    ``without_victim`` (``everyone`` minus the victim's dataset). None: a total was refused.
    """
    try:
        first = ask({"datasets": everyone, "recipient": recipient})
        second = ask({"datasets": without_victim, "recipient": recipient})
    except Exception:  # a refusal is this attack's failure, whatever its type
        return None
    return [a - b for a, b in zip(decrypt(first), decrypt(second), strict=True)]


def he_mediator_decrypt(public_context: bytes, ciphertext: bytes) -> list[float] | None:
    """What a mediator holding only the public context reads from a ciphertext (None)."""
    import tenseal

    context = tenseal.context_from(public_context)
    first = ciphertext.split(b"\x00CZHE\x00")[0]
    try:
        values: list[float] = tenseal.ckks_vector_from(context, first).decrypt()
    except ValueError:  # TenSEAL: "the current context doesn't hold a secret_key"
        return None
    return values
