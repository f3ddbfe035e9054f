"""Homomorphic aggregation through a mediator (TenSEAL CKKS): sums no mediator can read.

The recipient's client makes a CKKS key pair and publishes only the public context
(:meth:`RecipientKeys.public_context`: encryption parameters and public key, no secret
key). Each provider encrypts its vector of per-category counts or sums under it
(:func:`encrypt`); the mediator, holding only the public context, adds the ciphertexts
(:func:`aggregate`) and refuses when fewer than ``min_providers`` contributed; only the
recipient decrypts the total (:meth:`RecipientKeys.decrypt`).

CKKS is approximate (errors around 1e-6 for values near 1e6 at these parameters): use it
for aggregates, not exact integers. Long vectors are packed ``SLOTS`` values per
ciphertext.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from collabzone.errors import InvalidInputError, NotAuthorisedError, PolicyRefusal, Reason

POLY_MODULUS_DEGREE = 8192
SLOTS = POLY_MODULUS_DEGREE // 2
COEFF_BITS = (60, 40, 40, 60)
SCALE = 2.0**40
_SEP = b"\x00CZHE\x00"


def _ts() -> Any:
    import tenseal

    return tenseal


def _load_context(public_context: bytes) -> Any:
    try:
        return _ts().context_from(public_context)
    except Exception:  # TenSEAL raises bare ValueError / RuntimeError on bad bytes
        raise InvalidInputError(
            "not a TenSEAL context: use the recipient's public context"
        ) from None


@dataclass
class RecipientKeys:
    """The recipient's CKKS context, secret key included: it never leaves its client."""

    context: Any

    @classmethod
    def generate(cls) -> RecipientKeys:
        ts = _ts()
        context = ts.context(
            ts.SCHEME_TYPE.CKKS,
            poly_modulus_degree=POLY_MODULUS_DEGREE,
            coeff_mod_bit_sizes=list(COEFF_BITS),
        )
        context.global_scale = SCALE
        return cls(context)

    def public_context(self) -> bytes:
        """What providers and the mediator get: parameters and public key only."""
        data: bytes = self.context.serialize(
            save_secret_key=False, save_galois_keys=False, save_relin_keys=False
        )
        return data

    def decrypt(self, aggregate_ciphertext: bytes) -> list[float]:
        """The aggregate vector (on the recipient's machine)."""
        ts = _ts()
        out: list[float] = []
        for part in aggregate_ciphertext.split(_SEP):
            out.extend(ts.ckks_vector_from(self.context, part).decrypt())
        return out


def encrypt(public_context: bytes, values: Sequence[float]) -> bytes:
    """A provider's vector, encrypted under the recipient's public key."""
    if not values:
        raise InvalidInputError("nothing to encrypt: the vector is empty")
    ts, context = _ts(), _load_context(public_context)
    if context.is_private():
        raise InvalidInputError(
            "this context holds a secret key: providers must get the public one"
        )
    parts = [values[i : i + SLOTS] for i in range(0, len(values), SLOTS)]
    return _SEP.join(ts.ckks_vector(context, list(map(float, p))).serialize() for p in parts)


def aggregate(public_context: bytes, ciphertexts: Sequence[bytes], *, min_providers: int) -> bytes:
    """The mediator's sum of the providers' ciphertexts; it never decrypts.

    Raises :class:`PolicyRefusal` when fewer than ``min_providers`` contributed (a sum
    of one provider is that provider's data).
    """
    if len(ciphertexts) < min_providers:
        raise PolicyRefusal(
            Reason("TOO_FEW_PROVIDERS", "min_providers",
                   f"an aggregate needs at least {min_providers} providers, got {len(ciphertexts)}")
        )  # fmt: skip
    ts, context = _ts(), _load_context(public_context)
    if context.is_private():
        raise NotAuthorisedError("the mediator must not hold the recipient's secret key")
    split = [c.split(_SEP) for c in ciphertexts]
    if len({len(s) for s in split}) != 1:
        raise InvalidInputError("the providers' vectors differ in length")
    totals = []
    for parts in zip(*split, strict=True):
        total = ts.ckks_vector_from(context, parts[0])
        for part in parts[1:]:
            total += ts.ckks_vector_from(context, part)  # in place: no new ciphertext
        totals.append(total.serialize())
    return _SEP.join(totals)


def lengths(public_context: bytes, ciphertext: bytes) -> list[int]:
    """How many values each packed part of ``ciphertext`` holds (public: no key needed)."""
    ts, context = _ts(), _load_context(public_context)
    return [ts.ckks_vector_from(context, part).size() for part in ciphertext.split(_SEP)]


def add_plain_encrypted(public_context: bytes, ciphertext: bytes, values: Sequence[float]) -> bytes:
    """``ciphertext`` plus ``values``, which are encrypted under the public context first.

    The mediator's way of adding a vector it chose (DP noise) to a total it cannot read:
    the fresh encryption also re-randomises the total, so the released ciphertext is not
    the plain sum of the deposits. ``values`` must have as many entries as the total.
    """
    ts, context = _ts(), _load_context(public_context)
    if context.is_private():
        raise NotAuthorisedError("the mediator must not hold the recipient's secret key")
    out, start = [], 0
    for part in ciphertext.split(_SEP):
        total = ts.ckks_vector_from(context, part)
        size = total.size()
        chunk = [float(v) for v in values[start : start + size]]
        if len(chunk) != size:
            raise InvalidInputError("the vector to add is shorter than the encrypted total")
        total += ts.ckks_vector(context, chunk)
        out.append(total.serialize())
        start += size
    if start != len(values):
        raise InvalidInputError("the vector to add is longer than the encrypted total")
    return _SEP.join(out)
