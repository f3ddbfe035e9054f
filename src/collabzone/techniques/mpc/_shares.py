"""Shamir shares of 64-bit secure fixed-point values, made and opened outside the servers.

The provider's client turns each value into a field element of MPyC's ``SecFxp(64)`` prime
field (32 fractional bits: ``SecFxp(32)`` lost precision on a mean here) and splits it
with MPyC's own Shamir splitting (:func:`mpyc.thresha.random_split`); server ``i`` gets
the shares at x = i + 1, which is what MPyC's runtime expects of party ``i``. The
recipient's client recombines the output shares the same way. Nothing here starts the
MPyC runtime (importing ``mpyc.runtime`` parses ``sys.argv``).

Values are first clipped to the column's declared bounds and mapped to ``[0, 1]``
(:func:`normalise`): every sum of products of n such values stays below n, far inside the
64-bit fixed-point range, and a sum's sensitivity is 1 for the DP noise.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from collabzone.errors import InvalidInputError

BIT_LENGTH = 64
"""Bit length of the secure fixed-point type (``SecFxp(64)``)."""


def runtime() -> Any:
    """MPyC's runtime object ``mpc``, imported without reading this process's arguments."""
    module = sys.modules.get("mpyc.runtime")
    if module is None:
        saved = sys.argv
        sys.argv = saved[:1]
        try:
            module = importlib.import_module("mpyc.runtime")
        finally:
            sys.argv = saved
    return module.mpc


def secfxp_type() -> Any:
    """MPyC's ``SecFxp(64)`` type (cached by MPyC itself)."""
    return runtime().SecFxp(BIT_LENGTH)


def frac_length() -> int:
    return int(secfxp_type().frac_length)


def field() -> Any:
    """The prime field the shares live in."""
    return secfxp_type().field


def normalise(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """Clip ``values`` to ``[low, high]`` and map them to ``[0, 1]``; NaN is refused."""
    if not high > low:
        raise InvalidInputError(f"bounds must satisfy low < high (got {low}, {high})")
    data = np.asarray(values, dtype=float)
    if np.isnan(data).any():
        raise InvalidInputError("a column to share has missing values: drop or impute them first")
    scaled: np.ndarray = (np.clip(data, low, high) - low) / (high - low)
    return scaled


def encode(values: Sequence[float] | np.ndarray) -> list[int]:
    """Fixed-point integers (``round(v * 2**f)``) reduced into the field."""
    scale = 1 << frac_length()
    modulus = int(field().modulus)
    return [round(float(v) * scale) % modulus for v in values]


def encode_array(values: np.ndarray) -> np.ndarray:
    """:func:`encode` vectorised: signed fixed-point integers (int64) of values below 2**31."""
    data = np.asarray(values, dtype=float)
    if data.size and np.abs(data).max() >= 2**31:
        raise InvalidInputError("a value to encode is outside the 64-bit fixed-point range")
    encoded: np.ndarray = np.rint(data * float(1 << frac_length())).astype(np.int64)
    return encoded


def decode(elements: Sequence[int]) -> list[float]:
    """Signed fixed-point values of field elements (inverse of :func:`encode`)."""
    modulus = int(field().modulus)
    scale = float(1 << frac_length())
    out = []
    for element in elements:
        value = int(element) % modulus
        if value > modulus // 2:
            value -= modulus
        out.append(value / scale)
    return out


def _check(servers: int, threshold: int) -> None:
    if servers < 1 or not threshold >= 0 or 2 * threshold >= servers:
        raise InvalidInputError(
            f"need 0 <= threshold and 2 * threshold < servers (got {servers=}, {threshold=})"
        )


def split(values: Sequence[int], servers: int, threshold: int) -> list[list[int]]:
    """Shamir shares of each encoded value: one list per server (degree ``threshold``).

    ``threshold`` servers together learn nothing; ``threshold + 1`` reconstruct. MPyC
    multiplies shares, so it needs an honest majority: ``2 * threshold < servers``.
    (The list form of :func:`split_bytes`, for small inputs and tests.)
    """
    _check(servers, threshold)
    if not len(values):
        return [[] for _ in range(servers)]
    modulus = int(field().modulus)
    elements = np.array([int(v) % modulus for v in values], dtype=object)
    return [from_bytes(part).tolist() for part in split_bytes(elements, servers, threshold)]


def split_bytes(values: np.ndarray, servers: int, threshold: int) -> list[bytes]:
    """Shamir shares of each value, one byte string per server (16 big-endian bytes a share).

    ``values`` are field elements (or signed fixed-point integers, see :func:`encode_array`).
    Vectorised: the field is MPyC's ``2**128 - 173``, a pseudo-Mersenne prime, so the
    polynomials are evaluated on 32-bit limbs with numpy (about a microsecond per value
    and server) instead of one Python integer at a time; the random coefficients are
    uniform field elements drawn from the operating system's CSPRNG (``os.urandom``), as
    MPyC's ``thresha.random_split`` draws them with ``secrets``. A field of another shape
    falls back to MPyC's own ``thresha.np_random_split``.
    """
    _check(servers, threshold)
    modulus = int(field().modulus)
    gap = (1 << 128) - modulus
    count = len(values)
    if not 0 < gap < 1 << 31:
        from mpyc import thresha

        elements = np.array([int(v) % modulus for v in values], dtype=object)
        rows = thresha.np_random_split(field(), elements, threshold, servers)
        return [_to_bytes_obj(row) for row in rows]
    secret = _limbs(values, modulus)
    coefficients = [_random_limbs(count, modulus) for _ in range(threshold)]
    out = []
    for x in range(1, servers + 1):
        # Horner, s + x (c1 + x (c2 + ...)), on unreduced limbs: each limb stays below
        # ``bound``; carries and the reduction mod p run only when it nears 2**63
        y = np.zeros((4, count), dtype=np.uint64)
        bound = 0
        for c in reversed(coefficients):
            if (bound + 1) * x >= 1 << 29:
                y, bound = _reduce(_carry(y), gap), 1
            y, bound = (y + c) * np.uint64(x), (bound + 1) * x
        y = _reduce(_carry(y + secret), gap)
        out.append(np.ascontiguousarray(y[::-1].T.astype(">u4")).tobytes())
    return out


def from_bytes(data: bytes | memoryview) -> np.ndarray:
    """Field elements (an object array of Python ints) from 16-byte big-endian shares."""
    halves = np.frombuffer(data, dtype=">u8").reshape(-1, 2)
    high = halves[:, 0].astype(object)
    low = halves[:, 1].astype(object)
    result: np.ndarray = (high << 64) | low
    return result


def _to_bytes_obj(values: np.ndarray) -> bytes:
    return b"".join(int(v).to_bytes(16, "big") for v in values)


_MASK = np.uint64(0xFFFFFFFF)
_SHIFT = np.uint64(32)


def _limbs(values: np.ndarray, modulus: int) -> np.ndarray:
    """Four 32-bit limbs (least significant first, in uint64) of each value mod ``modulus``."""
    data = np.asarray(values)
    if data.dtype.kind in "iu" and data.dtype.itemsize <= 8:
        signed = data.astype(np.int64)
        negative = signed < 0
        magnitude = np.abs(signed).astype(np.uint64)  # |v| < 2**63
        # p - |v| = (2**64 - 1) * 2**64 + (2**64 - gap - |v|) for |v| < 2**64 - gap
        complement = np.uint64(modulus & (2**64 - 1)) - magnitude
        low = np.where(negative, complement, magnitude)
        high = np.where(negative, np.uint64(2**64 - 1), np.uint64(0))
        return np.stack([low & _MASK, low >> _SHIFT, high & _MASK, high >> _SHIFT])
    elements = np.array([int(v) % modulus for v in data.ravel()], dtype=object)
    return np.stack([((elements >> (32 * k)) & 0xFFFFFFFF).astype(np.uint64) for k in range(4)])


def _random_limbs(count: int, modulus: int) -> np.ndarray:
    """``count`` uniform field elements as limbs (rejection sampling: p is near 2**128)."""
    out = np.frombuffer(os.urandom(16 * count), dtype="<u4").reshape(count, 4).T.astype(np.uint64)
    while True:
        bad = np.flatnonzero(_at_least(out, modulus))
        if not len(bad):
            return out
        out[:, bad] = (
            np.frombuffer(os.urandom(16 * len(bad)), dtype="<u4").reshape(-1, 4).T.astype(np.uint64)
        )


def _at_least(limbs: np.ndarray, modulus: int) -> np.ndarray:
    """Which values are >= ``modulus`` (a prime just below 2**128)."""
    top = np.all(limbs[1:] == _MASK, axis=0)
    low: np.ndarray = top & (limbs[0] >= np.uint64(modulus & 0xFFFFFFFF))
    return low


def _carry(limbs: np.ndarray) -> np.ndarray:
    """Propagate carries through four limbs (each below 2**63) into five below 2**32."""
    out = np.empty((5, limbs.shape[1]), dtype=np.uint64)
    carry = np.zeros(limbs.shape[1], dtype=np.uint64)
    for k in range(4):
        total = limbs[k] + carry
        out[k] = total & _MASK
        carry = total >> _SHIFT
    out[4] = carry
    return out


def _reduce(limbs: np.ndarray, gap: int) -> np.ndarray:
    """Five limbs (fifth below 2**32) reduced mod p = 2**128 - gap, to four limbs."""
    g = np.uint64(gap)
    for _ in range(2):  # fold 2**128 = gap (mod p) until nothing is above 2**128
        folded = limbs[:4].copy()
        folded[0] += limbs[4] * g
        limbs = _carry(folded)
    # now value < 2**128: subtract p once if value >= p, i.e. if value + gap >= 2**128
    plus = limbs[:4].copy()
    plus[0] += g
    plus = _carry(plus)
    over = plus[4] > 0
    return np.where(over, plus[:4], limbs[:4])


def recombine(shares: Mapping[int, Sequence[int]], threshold: int) -> list[int]:
    """The field elements that ``threshold + 1`` or more servers' shares open to.

    ``shares`` maps the server index (0-based, as MPyC numbers parties) to its shares.
    """
    if len(shares) < threshold + 1:
        raise InvalidInputError(
            f"need output shares from {threshold + 1} servers, got {len(shares)}"
        )
    lengths = {len(v) for v in shares.values()}
    if len(lengths) != 1:
        raise InvalidInputError("the servers' output shares differ in length")
    from mpyc import thresha

    f = field()
    points = [(index + 1, [f(s) for s in values]) for index, values in sorted(shares.items())]
    return [int(e) for e in thresha.recombine(f, points)]
