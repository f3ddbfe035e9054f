"""PSI reveal mode ``sum``: the sum of a value column over the intersection, to one party.

The protocol is Private Intersection-Sum-with-Cardinality (Ion et al., "On Deploying Secure
Computing: Private Intersection-Sum-with-Cardinality", EuroS&P 2020), with Paillier from
``phe`` (python-paillier) for the additively homomorphic part:

1. sender -> receiver: ``{a * H(x)}``, distinct and sorted (as in :mod:`._psi`);
2. receiver (holds the values and a fresh Paillier key pair) -> sender: ``{b * (a * H(x))}``
   sorted, ``[b * H(y)]`` distinct and sorted, and ``[Enc(v_y)]`` in the same order;
3. sender: ``a * (b * H(y))`` matched against step 2's set gives the hits; when there are at
   least ``min_group_size`` of them it adds their ciphertexts, re-randomises the sum and
   returns it with the count; below the minimum it returns a refusal and nothing else;
4. receiver: decrypts the sum.

**Who learns what.** The receiver: ``|X|``, and either (count, sum) or "fewer than the
minimum"; never which items matched. The sender: ``|Y|`` and the count (it computes the
matches; PJC leaks it too) but no value (only Paillier ciphertexts). The relay: sizes and
ciphertexts. **The minimum group size** is enforced by the sender, who alone knows the count.
A receiver that repeats an item to reach the minimum (the same point twice, or the point
plus a small-order point, which X25519's cofactor clearing maps to the same result) is
refused: the sender checks its masked values are distinct. **Not defended**: a receiver
that pads its set with people it knows the sender has (it learns whether the one extra
person is there), as for every thresholded count; semi-honest sender (it could lie about
the count or sum).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from numbers import Integral

import numpy as np
from phe import paillier

from collabzone.crypto.group import RandomBytes
from collabzone.errors import InvalidInputError
from collabzone.techniques.linking._psi import PsiMessage, _check_points, _Party, _sequence
from collabzone.techniques.linking._psi_group import Points, member_mask, sorted_unique

PAILLIER_BITS = 2048
"""Paillier modulus size: 112-bit security (NIST SP 800-57), the smallest the sender accepts."""


@dataclass(frozen=True)
class SumQuery:
    """Step 2: the receiver's double-masked copy of the sender's set, its own masked set and
    its whole-number values encrypted under its own Paillier key, in ``points`` order."""

    double: Points
    points: Points
    public_n: int
    ciphertexts: tuple[int, ...]


@dataclass(frozen=True)
class SumReply:
    """Step 3: the count and the re-randomised encrypted sum, or a refusal (no numbers)."""

    released: bool
    cardinality: int | None = None
    ciphertext: int | None = None


@dataclass(frozen=True)
class SumResult:
    """What the receiver learns: the count and sum, or only that the minimum was not met."""

    released: bool
    cardinality: int | None = None
    total: int | None = None


@dataclass
class SumSender(_Party):
    """The side whose set is intersected; it enforces ``min_group_size`` on the count."""

    items: Sequence[bytes]
    min_group_size: int
    random_bytes: RandomBytes = secrets.token_bytes
    workers: int = 1
    cardinality: int | None = field(init=False, default=None)
    """The count this side learns (PJC reveals it to the side that matches)."""
    _state: str = field(init=False, default="new")

    def __post_init__(self) -> None:
        if isinstance(self.min_group_size, bool) or not isinstance(self.min_group_size, int):
            raise InvalidInputError("the sum mode needs min_group_size, a whole number")
        if self.min_group_size < 1:
            raise InvalidInputError("min_group_size must be at least 1")
        self._init(*_sequence(self.items), self.random_bytes)

    def start(self) -> PsiMessage:
        """Step 1: the masked set, distinct and sorted."""
        if self._state != "new":
            raise InvalidInputError("PSI sender already started")
        self._state = "started"
        return PsiMessage("sender_set", sorted_unique(self._hash_and_mask_all()))

    def finish(self, query: SumQuery) -> SumReply:
        """Step 3: match, apply the minimum group size, add the matching ciphertexts."""
        if self._state != "started":
            raise InvalidInputError("PSI sender must start before it answers the sum query")
        self._state = "done"
        for points in (query.double, query.points):
            _check_points(PsiMessage("receiver_query", points), "receiver_query")
        if len(query.ciphertexts) != len(query.points):
            raise InvalidInputError("PSI protocol error: one ciphertext per query element")
        if query.public_n.bit_length() < PAILLIER_BITS:
            raise InvalidInputError(f"the receiver's Paillier key must have {PAILLIER_BITS} bits")
        masked = self._mask_all(query.points)
        if len(sorted_unique(masked)) != len(masked):
            # the same item twice, or with a small-order point added: it would count twice
            raise InvalidInputError("PSI protocol error: the query repeats an element")
        hits = np.flatnonzero(member_mask(masked, query.double))
        self.cardinality = len(hits)
        if len(hits) < self.min_group_size:
            return SumReply(False)
        public = paillier.PaillierPublicKey(query.public_n)
        nsquare = query.public_n**2
        total = None
        for i in hits:
            value = query.ciphertexts[int(i)]
            if not 0 < value < nsquare:
                raise InvalidInputError("PSI protocol error: a ciphertext is out of range")
            number = paillier.EncryptedNumber(public, value)
            total = number if total is None else total + number
        assert total is not None  # min_group_size >= 1
        total.obfuscate()  # fresh randomness: the sum says nothing of the ciphertexts added
        return SumReply(True, len(hits), total.ciphertext())


@dataclass
class SumReceiver(_Party):
    """The side that holds the values and learns their sum over the intersection."""

    items: Sequence[bytes]
    values: Sequence[int]
    random_bytes: RandomBytes = secrets.token_bytes
    workers: int = 1
    key_bits: int = PAILLIER_BITS
    _state: str = field(init=False, default="new")
    _private: paillier.PaillierPrivateKey = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if len(self.values) != len(self.items):
            raise InvalidInputError("the sum mode needs exactly one value per item")
        for v in self.values:
            if isinstance(v, bool) or not isinstance(v, Integral):
                # a float's encoding exponent would tell the sender its magnitude
                raise InvalidInputError(
                    "sum values must be whole numbers: scale them first (e.g. to cents)"
                )
        self._init(*_sequence(self.items), self.random_bytes)

    def respond(self, sender_set: PsiMessage) -> SumQuery:
        """Step 2: mask both sets, encrypt the values (in the masked set's order)."""
        if self._state != "new":
            raise InvalidInputError("the sum receiver already answered")
        _check_points(sender_set, "sender_set")
        self._state = "started"
        masked = self._hash_and_mask_all()
        order = np.argsort(masked.view("V32").ravel(), kind="stable")
        points = masked[order]
        if len(sorted_unique(points)) != len(points):
            raise InvalidInputError(
                "the sum mode needs distinct items: add up the values per item first"
            )
        public, self._private = paillier.generate_paillier_keypair(n_length=self.key_bits)
        encrypted = [public.encrypt(int(self.values[int(i)])) for i in order]
        return SumQuery(
            double=sorted_unique(self._mask_all(sender_set.points)),
            points=points,
            public_n=public.n,
            ciphertexts=tuple(e.ciphertext() for e in encrypted),
        )

    def finish(self, reply: SumReply) -> SumResult:
        """Step 4: decrypt the sum (or report that the minimum group size was not met)."""
        if self._state != "started":
            raise InvalidInputError("the sum receiver must respond before it finishes")
        self._state = "done"
        if not reply.released or reply.ciphertext is None:
            return SumResult(False)
        number = paillier.EncryptedNumber(self._private.public_key, reply.ciphertext)
        return SumResult(True, reply.cardinality, int(self._private.decrypt(number)))


SumRelay = Callable[[object], object]


def intersect_sum(
    sender: SumSender, receiver: SumReceiver, relay: SumRelay = lambda message: message
) -> SumResult:
    """Drive one intersection-sum run; every message passes through ``relay`` (the zone)."""
    first = relay(sender.start())
    assert isinstance(first, PsiMessage)
    query = relay(receiver.respond(first))
    assert isinstance(query, SumQuery)
    reply = relay(sender.finish(query))
    assert isinstance(reply, SumReply)
    return receiver.finish(reply)
