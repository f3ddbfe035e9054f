"""Peer-to-peer ECDH private set intersection between two providers; the zone only relays.

Trust model (``psi`` mode): no trusted party and no shared key. Each side picks a fresh
secret scalar (``a`` for the *sender*, ``b`` for the *receiver*, the side named by the
agreement as the one who may learn the result):

1. sender -> receiver: ``{a * H(x)}`` for its set X, sorted (order says nothing);
2. receiver -> sender: ``{b * H(y)}`` for its set Y, distinct and sorted;
3. sender -> receiver: ``[a * (b * H(y))]``, sorted when the agreement allows only the
   cardinality, in the query's order when it allows the intersection;
4. receiver: computes ``{b * (a * H(x))}`` and matches. With sorted step-3 values it learns
   ``|X ∩ Y|`` only; in order, it learns which of its own ``y`` are in X.

The sender learns the number of distinct items of Y and nothing else; the receiver ``|X|``
and the result; the zone (relay) sees only pseudorandom points and sizes. Security is
semi-honest (DDH on curve25519, H modelled as a random oracle; see docs/linking.md).
The third reveal mode, a sum over the intersection, is :mod:`._psi_sum`.

Scale: the items are read as a stream of batches (:meth:`PsiSender.from_batches`), every
batch is hashed and masked in a worker process (at most ``2 * workers`` batches in flight),
and only the 32-byte points are kept, in NumPy arrays: 10M items take 320 MB per message.
"""

from __future__ import annotations

import secrets
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

from collabzone.crypto.group import RandomBytes
from collabzone.errors import InvalidInputError
from collabzone.techniques.linking._psi_group import (
    Points,
    as_points,
    empty_points,
    hash_to_curve,
    member_mask,
    sorted_unique,
    x25519,
)

PSI_DST = b"collabzone-psi-v2"
BATCH_ITEMS = 20_000
"""Items per batch of work (one task of a worker process)."""
PARALLEL_MIN_ITEMS = 20_000
Reveal = Literal["cardinality", "intersection"]
Batches = Callable[[], Iterable[Sequence[bytes]]]


@dataclass(frozen=True)
class PsiMessage:
    """One protocol message: its step name and 32-byte group elements (``(k, 32)`` array)."""

    step: Literal["sender_set", "receiver_query", "sender_reply"]
    points: Points
    reveal: Reveal = "cardinality"

    @property
    def elements(self) -> list[bytes]:
        """The points as 32-byte strings (for inspection; the protocol uses ``points``)."""
        return [bytes(row) for row in self.points]


@dataclass(frozen=True)
class PsiResult:
    """What the receiver learns: always the cardinality; the members only if allowed.

    ``positions`` are indices into the receiver's input (its first occurrence of each
    member); ``intersection`` holds the members themselves when the input was a sequence.
    """

    cardinality: int
    intersection: tuple[bytes, ...] | None = None
    positions: npt.NDArray[np.int64] | None = None


def _hash_and_mask(scalar: bytes, items: Sequence[bytes]) -> bytes:
    return x25519(scalar, hash_to_curve(items, PSI_DST))


def _mask(scalar: bytes, blob: bytes) -> bytes:
    return x25519(scalar, blob)


def _checked(batch: Sequence[bytes]) -> Sequence[bytes]:
    if any(not isinstance(item, bytes) for item in batch):
        raise InvalidInputError("PSI items must be bytes (normalised identifiers or tokens)")
    return batch


def _rebatch(batches: Iterable[Sequence[bytes]]) -> Iterator[Sequence[bytes]]:
    for batch in batches:
        for start in range(0, len(batch), BATCH_ITEMS):
            yield _checked(batch[start : start + BATCH_ITEMS])


def _run(
    job: Callable[[bytes, Sequence[bytes]], bytes] | Callable[[bytes, bytes], bytes],
    scalar: bytes,
    tasks: Iterable[Sequence[bytes]] | Iterable[bytes],
    workers: int,
) -> Points:
    """Run ``job`` on every task, in order, with at most ``2 * workers`` tasks in flight."""
    parts: list[Points] = []
    if workers <= 1:
        parts = [as_points(job(scalar, task)) for task in tasks]  # type: ignore[arg-type]
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            pending: deque[Future[bytes]] = deque()
            for task in tasks:
                pending.append(pool.submit(job, scalar, task))  # type: ignore[arg-type]
                if len(pending) >= 2 * workers:
                    parts.append(as_points(pending.popleft().result()))
            parts.extend(as_points(f.result()) for f in pending)
    return np.concatenate(parts) if parts else empty_points()


def _point_tasks(points: Points) -> Iterator[bytes]:
    for start in range(0, len(points), BATCH_ITEMS):
        yield points[start : start + BATCH_ITEMS].tobytes()


def _workers(requested: int, size: int | None) -> int:
    return 1 if size is not None and size < PARALLEL_MIN_ITEMS else requested


def _check_points(message: PsiMessage, step: str) -> None:
    if message.step != step:
        raise InvalidInputError(f"PSI protocol error: expected {step}, got {message.step}")
    if message.points.ndim != 2 or message.points.shape[1] != 32:
        raise InvalidInputError("PSI protocol error: elements must be 32 bytes")


class _Party:
    """What both sides share: the input stream, a secret scalar, the worker count."""

    _scalar: bytes
    _batches: Batches
    _size: int | None
    workers: int

    def _init(self, batches: Batches, size: int | None, random_bytes: RandomBytes) -> None:
        if size == 0:
            raise InvalidInputError("a PSI input set is empty: there is nothing to intersect")
        self._batches, self._size = batches, size
        self._scalar = random_bytes(32)

    def _hash_and_mask_all(self) -> Points:
        tasks = _rebatch(self._batches())
        points = _run(_hash_and_mask, self._scalar, tasks, _workers(self.workers, self._size))
        if len(points) == 0:
            raise InvalidInputError("a PSI input set is empty: there is nothing to intersect")
        return points

    def _mask_all(self, points: Points) -> Points:
        workers = _workers(self.workers, len(points))
        return _run(_mask, self._scalar, _point_tasks(points), workers)


def _sequence(items: Sequence[bytes]) -> tuple[Batches, int]:
    if isinstance(items, (bytes, str)):
        raise InvalidInputError("PSI items must be a sequence of bytes, not one value")
    return (lambda: [items]), len(items)


@dataclass
class PsiSender(_Party):
    """The side that does not learn the result (it learns only the other set's size)."""

    items: Sequence[bytes]
    reveal: Reveal = "cardinality"
    random_bytes: RandomBytes = secrets.token_bytes
    workers: int = 1
    _state: str = field(init=False, default="new")

    def __post_init__(self) -> None:
        self._init(*_sequence(self.items), self.random_bytes)

    @classmethod
    def from_batches(
        cls, batches: Batches, reveal: Reveal = "cardinality", workers: int = 1
    ) -> PsiSender:
        """A sender reading its items as a stream (``batches()`` is called once, at start)."""
        sender = cls([b""], reveal, workers=workers)
        sender.items = ()
        sender._batches, sender._size = batches, None
        return sender

    def start(self) -> PsiMessage:
        """Step 1: the masked set, distinct and sorted."""
        if self._state != "new":
            raise InvalidInputError("PSI sender already started")
        self._state = "started"
        return PsiMessage("sender_set", sorted_unique(self._hash_and_mask_all()), self.reveal)

    def respond(self, query: PsiMessage) -> PsiMessage:
        """Step 3: re-mask the receiver's query (sorted unless the intersection is allowed)."""
        if self._state != "started":
            raise InvalidInputError("PSI sender must start before it responds")
        _check_points(query, "receiver_query")
        self._state = "done"
        double = self._mask_all(query.points)
        if self.reveal == "cardinality":
            double = sorted_unique(double)
        return PsiMessage("sender_reply", double, self.reveal)


@dataclass
class PsiReceiver(_Party):
    """The side the agreement names to learn the cardinality (or the intersection)."""

    items: Sequence[bytes]
    random_bytes: RandomBytes = secrets.token_bytes
    workers: int = 1
    _state: str = field(init=False, default="new")
    _first: npt.NDArray[np.int64] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._init(*_sequence(self.items), self.random_bytes)

    @classmethod
    def from_batches(cls, batches: Batches, workers: int = 1) -> PsiReceiver:
        """A receiver reading its items as a stream (members come back as positions)."""
        receiver = cls([b""], workers=workers)
        receiver.items = ()
        receiver._batches, receiver._size = batches, None
        return receiver

    def start(self) -> PsiMessage:
        """Step 2: the masked query, distinct and sorted (duplicates would tell the sender)."""
        if self._state != "new":
            raise InvalidInputError("PSI receiver already started")
        self._state = "started"
        masked = self._hash_and_mask_all()
        values, first = np.unique(masked.view("V32").ravel(), return_index=True)
        self._first = first.astype(np.int64)
        return PsiMessage("receiver_query", values.view(np.uint8).reshape(-1, 32))

    def finish(self, sender_set: PsiMessage, reply: PsiMessage) -> PsiResult:
        """Step 4: match; the intersection only when the sender kept the order."""
        if self._state != "started":
            raise InvalidInputError("PSI receiver must start before it finishes")
        _check_points(sender_set, "sender_set")
        _check_points(reply, "sender_reply")
        if len(reply.points) != len(self._first):
            raise InvalidInputError("PSI protocol error: the reply has the wrong size")
        self._state = "done"
        hits = member_mask(reply.points, self._mask_all(sender_set.points))
        count = int(hits.sum())
        if reply.reveal != "intersection":
            return PsiResult(count)
        positions = np.sort(self._first[hits])
        members = tuple(self.items[int(i)] for i in positions) if self.items else None
        return PsiResult(count, members, positions)


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
    reply = relay(sender.respond(relay(receiver.start())))  # the query is not kept: memory
    return receiver.finish(sender_set, reply)
