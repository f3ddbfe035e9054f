"""Prime-order group operations for the OPRF (and MPC join keys), on libsodium through PyNaCl's wheel.

* The group is the prime-order subgroup of edwards25519 (order :data:`L`).
* ``hash_to_group`` is the random-oracle construction of RFC 9380 (two independent
  Elligator 2 encodings, ``crypto_core_ed25519_from_uniform``, added together), with a
  domain separation tag per protocol. ``from_uniform`` clears the cofactor, so every point
  is in the prime-order subgroup.
* Scalars are handled as Python ints mod ``L`` (the protocols need inverses and Lagrange
  coefficients); points as their 32-byte encodings.
* PSI works on the Montgomery form with X25519 instead
  (:mod:`collabzone.techniques.linking._psi_group`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import nacl.bindings as sodium
import nacl.exceptions

from collabzone.errors import InvalidInputError

L = 2**252 + 27742317777372353535851937790883648493
"""Order of the prime-order subgroup of edwards25519."""
P = 2**255 - 19

RandomBytes = Callable[[int], bytes]
"""Injected randomness: ``n -> n random bytes`` (``secrets.token_bytes`` in production)."""


def random_scalar(random_bytes: RandomBytes) -> int:
    """A uniform non-zero scalar mod L (64 random bytes reduced: bias below 2^-250)."""
    while True:
        value = int.from_bytes(random_bytes(64), "little") % L
        if value:
            return value


def scalar_from_key(material: bytes) -> int:
    """A non-zero scalar from key material (>= 32 bytes, typically HKDF output of 64)."""
    if len(material) < 32:
        raise InvalidInputError("group keys need at least 32 bytes of key material")
    value = int.from_bytes(hashlib.sha512(b"collabzone/scalar/" + material).digest(), "little") % L
    return value or 1


def scalar_bytes(value: int) -> bytes:
    return (value % L).to_bytes(32, "little")


def hash_to_group(value: bytes, dst: bytes) -> bytes:
    """Hash ``value`` to a point of the prime-order subgroup (random-oracle construction)."""
    digest = hashlib.sha512(len(dst).to_bytes(1, "little") + dst + value).digest()
    first = sodium.crypto_core_ed25519_from_uniform(digest[:32])
    second = sodium.crypto_core_ed25519_from_uniform(digest[32:])
    return bytes(sodium.crypto_core_ed25519_add(first, second))


def mul(point: bytes, scalar: int) -> bytes:
    """``scalar * point`` in the group; rejects points not in the prime-order subgroup."""
    try:
        return bytes(sodium.crypto_scalarmult_ed25519_noclamp(scalar_bytes(scalar), point))
    except (nacl.exceptions.RuntimeError, nacl.exceptions.ValueError, TypeError):
        raise InvalidInputError("a message carried an invalid group element") from None


INV8 = pow(8, -1, L)


def mul_cleared(point: bytes, scalar: int) -> bytes:
    """``scalar * P`` for an untrusted ``point = P + T`` (``T`` of small order): ``T`` is
    cleared by multiplying by 8 (three doublings) and ``scalar / 8`` is used, so a mixed-order
    point cannot leak ``scalar mod 8``; cheaper than a full subgroup check. Identity, small
    order, non-canonical and non-curve encodings are refused."""
    if len(point) != 32 or int.from_bytes(point, "little") & ((1 << 255) - 1) >= P:
        raise InvalidInputError("a message carried a non-canonical group element")
    try:
        doubled = point
        for _ in range(3):
            doubled = sodium.crypto_core_ed25519_add(doubled, doubled)
    except (nacl.exceptions.RuntimeError, nacl.exceptions.ValueError, TypeError):
        raise InvalidInputError("a message carried an invalid group element") from None
    return mul(bytes(doubled), scalar * INV8 % L)


def is_valid_point(point: bytes) -> bool:
    """True for the encoding of a prime-order subgroup point other than the identity."""
    return len(point) == 32 and bool(sodium.crypto_core_ed25519_is_valid_point(point))
