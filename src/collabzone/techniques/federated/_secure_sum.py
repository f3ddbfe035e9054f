"""Secure summation by pairwise masking (the core of SecAgg / SecAgg+), for in-process jobs.

Each client ``i`` agrees a secret with every other client ``j`` (X25519 + HKDF), expands it
to a mask vector, and adds the mask if ``i < j`` or subtracts it if ``i > j``, on
fixed-point values modulo 2**64. Every mask appears once with each sign, so the sum of the
masked vectors is the sum of the true vectors, while one masked vector alone is uniformly
random: the aggregator learns the sum and nothing else.

Used by federated analytics (owner-side job) and by the in-process federation in tests and
benchmarks. The Flower deployment uses Flower's own SecAgg+ workflow, which adds Shamir
secret sharing so the sum survives dropped clients; here a dropped client fails the round.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from collabzone.techniques.federated._models import Array

SCALE = float(2**24)
"""Fixed-point scale: 24 fractional bits; sums stay exact below 2**39 in magnitude."""

U64 = npt.NDArray[np.uint64]


def encode(vector: Array) -> U64:
    """Fixed-point encoding modulo 2**64 (two's complement for negatives)."""
    return np.round(vector * SCALE).astype(np.int64).view(np.uint64)


def decode(vector: U64) -> Array:
    return vector.view(np.int64).astype(np.float64) / SCALE


@dataclass
class MaskingClient:
    """One participant of a secure sum: holds its X25519 key and masks its vector."""

    index: int
    key: X25519PrivateKey = field(default_factory=X25519PrivateKey.generate)
    _agreed: dict[int, bytes] = field(default_factory=dict, repr=False)
    """Shared secrets per peer, agreed once per job; each round's mask is expanded from
    the secret and the round id (HKDF), so no mask is ever reused."""

    @property
    def public(self) -> X25519PublicKey:
        return self.key.public_key()

    def _mask(self, peer: int, other: X25519PublicKey, size: int, round_id: int) -> U64:
        if peer not in self._agreed:
            self._agreed[peer] = self.key.exchange(other)
        secret = HKDF(
            algorithm=hashes.SHA256(),
            length=32,
            salt=None,
            info=f"collabzone-secure-sum:{round_id}".encode(),
        ).derive(self._agreed[peer])
        rng = np.random.Generator(np.random.PCG64(int.from_bytes(secret, "big")))
        return rng.integers(0, 2**64, size=size, dtype=np.uint64, endpoint=False)

    def mask(
        self, vector: Array, peers: Sequence[tuple[int, X25519PublicKey]], round_id: int
    ) -> U64:
        """``vector`` plus the pairwise masks with every peer (what leaves the client)."""
        out = encode(vector)
        with np.errstate(over="ignore"):
            for index, public in peers:
                if index == self.index:
                    continue
                m = self._mask(index, public, len(vector), round_id)
                out = out + m if self.index < index else out - m
        return out


def unmask_sum(masked: Sequence[U64]) -> Array:
    """The aggregator's only view: the sum of the masked vectors, i.e. the true sum."""
    total = np.zeros(len(masked[0]), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for vector in masked:
            total = total + vector
    return decode(total)


def secure_sum(
    vectors: Sequence[Array], round_id: int = 0, clients: Sequence[MaskingClient] | None = None
) -> tuple[Array, list[U64]]:
    """One secure sum among ``len(vectors)`` clients (fresh keys unless ``clients`` are
    given, e.g. the same job's clients across rounds); returns (sum, what the server saw)."""
    if clients is None:
        clients = [MaskingClient(i) for i in range(len(vectors))]
    directory = [(c.index, c.public) for c in clients]
    seen = [
        c.mask(np.asarray(v, dtype=np.float64), directory, round_id)
        for c, v in zip(clients, vectors, strict=True)
    ]
    return unmask_sum(seen), seen
