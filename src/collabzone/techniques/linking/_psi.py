"""Peer-to-peer ECDH private set intersection between two providers; the zone only relays.

Trust model (``psi`` mode): no trusted party and no shared key. Each side picks a fresh
secret scalar (``a`` for the *sender*, ``b`` for the *receiver*, the side named by the
agreement as the one who may learn the result):

1. sender -> receiver: ``{a * H(x)}`` for its set X, sorted (order says nothing);
2. receiver -> sender: ``[b * H(y)]`` for its set Y, in the receiver's order;
3. sender -> receiver: ``[a * (b * H(y))]``, sorted when the agreement allows only the
   cardinality, in the receiver's order when it allows the intersection;
4. receiver: computes ``{b * (a * H(x))}`` and matches. With sorted step-3 values it learns
   ``|X ∩ Y|`` only; in order, it learns which of its own ``y`` are in X.

The sender learns ``|Y|`` and nothing else; the receiver ``|X|`` and the result; the zone
(relay) sees only pseudorandom points and sizes. Security is semi-honest (DDH on
curve25519, H modelled as a random oracle; see docs/linking.md for the limits).

``H`` is one Elligator 2 encoding on edwards25519 moved to Montgomery form; the scalar
multiplications are X25519 (:mod:`._group`). Large sets are spread over processes.

The parties are state machines (``start`` -> ``respond`` / ``finish``) and
:func:`intersect` drives them through an injected relay.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Literal

from collabzone.crypto.group import (
    RandomBytes,
    encode_to_group,
    to_montgomery,
    x25519,
)
from collabzone.errors import InvalidInputError

PSI_DST = b"collabzone-psi-v1"
PARALLEL_MIN_ITEMS = 20_000
Reveal = Literal["cardinality", "intersection"]


@dataclass(frozen=True)
class PsiMessage:
    """One protocol message: its step name and 32-byte group elements."""

    step: Literal["sender_set", "receiver_query", "sender_reply"]
    elements: tuple[bytes, ...]
    reveal: Reveal = "cardinality"


@dataclass(frozen=True)
class PsiResult:
    """What the receiver learns: always the cardinality; the members only if allowed."""

    cardinality: int
    intersection: tuple[bytes, ...] | None = None


def _hash_and_mask(args: tuple[bytes, Sequence[bytes]]) -> list[bytes]:
    scalar, items = args
    points = [encode_to_group(item, PSI_DST) for item in items]
    return x25519(scalar, to_montgomery(points))


def _mask(args: tuple[bytes, Sequence[bytes]]) -> list[bytes]:
    scalar, points = args
    return x25519(scalar, points)


def _map_chunks(
    job: Callable[[tuple[bytes, Sequence[bytes]]], list[bytes]],
    scalar: bytes,
    items: Sequence[bytes],
    workers: int,
) -> list[bytes]:
    if workers <= 1 or len(items) < PARALLEL_MIN_ITEMS:
        return job((scalar, items))
    pieces = workers * 4
    size = -(-len(items) // pieces)
    chunks = [(scalar, list(items[i : i + size])) for i in range(0, len(items), size)]
    out: list[bytes] = []
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for part in pool.map(job, chunks):
            out.extend(part)
    return out


def _check_set(items: Sequence[bytes]) -> list[bytes]:
    unique = list(dict.fromkeys(items))
    if not unique:
        raise InvalidInputError("a PSI input set is empty: there is nothing to intersect")
    if any(not isinstance(item, bytes) for item in items):
        raise InvalidInputError("PSI items must be bytes (normalised identifiers or tokens)")
    return unique


def _check_elements(message: PsiMessage, step: str) -> None:
    if message.step != step:
        raise InvalidInputError(f"PSI protocol error: expected {step}, got {message.step}")
    if any(len(e) != 32 for e in message.elements):
        raise InvalidInputError("PSI protocol error: elements must be 32 bytes")


@dataclass
class PsiSender:
    """The side that does not learn the result (it learns only the other set's size)."""

    items: Sequence[bytes]
    reveal: Reveal = "cardinality"
    random_bytes: RandomBytes = secrets.token_bytes
    workers: int = 1
    _scalar: bytes = field(init=False, repr=False)
    _state: str = field(init=False, default="new")

    def __post_init__(self) -> None:
        self.items = _check_set(self.items)
        self._scalar = self.random_bytes(32)

    def start(self) -> PsiMessage:
        """Step 1: the masked set, sorted."""
        if self._state != "new":
            raise InvalidInputError("PSI sender already started")
        self._state = "started"
        masked = _map_chunks(_hash_and_mask, self._scalar, self.items, self.workers)
        return PsiMessage("sender_set", tuple(sorted(masked)), self.reveal)

    def respond(self, query: PsiMessage) -> PsiMessage:
        """Step 3: re-mask the receiver's query (sorted unless the intersection is allowed)."""
        if self._state != "started":
            raise InvalidInputError("PSI sender must start before it responds")
        _check_elements(query, "receiver_query")
        self._state = "done"
        double = _map_chunks(_mask, self._scalar, query.elements, self.workers)
        if self.reveal == "cardinality":
            double.sort()
        return PsiMessage("sender_reply", tuple(double), self.reveal)


@dataclass
class PsiReceiver:
    """The side the agreement names to learn the cardinality (or the intersection)."""

    items: Sequence[bytes]
    random_bytes: RandomBytes = secrets.token_bytes
    workers: int = 1
    _scalar: bytes = field(init=False, repr=False)
    _state: str = field(init=False, default="new")

    def __post_init__(self) -> None:
        self.items = _check_set(self.items)
        self._scalar = self.random_bytes(32)

    def start(self) -> PsiMessage:
        """Step 2: the masked query, in this side's own order."""
        if self._state != "new":
            raise InvalidInputError("PSI receiver already started")
        self._state = "started"
        masked = _map_chunks(_hash_and_mask, self._scalar, self.items, self.workers)
        return PsiMessage("receiver_query", tuple(masked))

    def finish(self, sender_set: PsiMessage, reply: PsiMessage) -> PsiResult:
        """Step 4: match; the intersection only when the sender kept the order."""
        if self._state != "started":
            raise InvalidInputError("PSI receiver must start before it finishes")
        _check_elements(sender_set, "sender_set")
        _check_elements(reply, "sender_reply")
        if len(reply.elements) != len(self.items):
            raise InvalidInputError("PSI protocol error: the reply has the wrong size")
        self._state = "done"
        theirs = set(_map_chunks(_mask, self._scalar, sender_set.elements, self.workers))
        hits = [e in theirs for e in reply.elements]
        count = sum(hits)
        if reply.reveal != "intersection":
            return PsiResult(count)
        members = tuple(item for item, hit in zip(self.items, hits, strict=True) if hit)
        return PsiResult(count, members)


Relay = Callable[[PsiMessage], PsiMessage]


def intersect(
    sender: PsiSender, receiver: PsiReceiver, relay: Relay = lambda message: message
) -> PsiResult:
    """Drive one PSI run; every message passes through ``relay`` (the zone).

    >>> r = intersect(PsiSender([b"a", b"b"]), PsiReceiver([b"b", b"c"]))
    >>> r.cardinality, r.intersection
    (1, None)
    """
    sender_set = relay(sender.start())
    query = relay(receiver.start())
    reply = relay(sender.respond(query))
    return receiver.finish(sender_set, reply)
