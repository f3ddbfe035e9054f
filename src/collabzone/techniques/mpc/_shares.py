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


def split(values: Sequence[int], servers: int, threshold: int) -> list[list[int]]:
    """Shamir shares of each encoded value: one list per server (degree ``threshold``).

    ``threshold`` servers together learn nothing; ``threshold + 1`` reconstruct. MPyC
    multiplies shares, so it needs an honest majority: ``2 * threshold < servers``.
    """
    if servers < 1 or not threshold >= 0 or 2 * threshold >= servers:
        raise InvalidInputError(
            f"need 0 <= threshold and 2 * threshold < servers (got {servers=}, {threshold=})"
        )
    if not values:
        return [[] for _ in range(servers)]
    from mpyc import thresha

    f = field()
    rows = thresha.random_split(f, [f(v) for v in values], threshold, servers)
    return [[int(s) for s in row] for row in rows]


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
