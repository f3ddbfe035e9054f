"""Query monitor: refuse a release whose entity sets differ from an earlier one by too few.

Differencing attacks (two queries whose answers differ only by a few people: ``age > 30``
vs ``age >= 30``, a total minus the visible groups, a tracker's padded predicate, a range
split) are recognised by *what the rows were computed from*, not by the SQL text: each
released row's entity set (64-bit hashes of the entity key, kept inside the zone) is
compared with every earlier released row's set, and the union of the new rows with the
union of each earlier release. Any pair with ``0 < |X △ Y| < min_group_size`` is refused
with reason ``DIFFERENCING``. An identical set is no new information and passes, so
trivial rewrites of the same question (reordered conjuncts, ``1 = 1`` padding,
out-of-domain dummy conditions) are answered, and answered identically.

Sets are stored exactly (sorted uint64, zlib, base64) up to ``MAX_EXACT`` entities per
row; larger rows keep only their size and are checked by size alone (documented limit).
"""

from __future__ import annotations

import base64
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from collabzone.errors import Reason

MAX_EXACT = 250_000


def _array(members: Iterable[int] | np.ndarray) -> np.ndarray:
    """Sorted, de-duplicated uint64 (a plain sort: faster here than np.unique's hashing)."""
    if isinstance(members, np.ndarray):
        array = np.sort(members.astype(np.uint64, copy=False))
    else:
        array = np.sort(
            np.fromiter((int(m) & 0xFFFFFFFFFFFFFFFF for m in members), dtype=np.uint64)
        )
    if array.size < 2:
        return array
    return array[np.concatenate(([True], array[1:] != array[:-1]))]


def encode_set(members: Iterable[int] | np.ndarray) -> str:
    """Compact text form of a set of 64-bit hashes (sorted uint64, zlib, base64)."""
    return base64.b64encode(zlib.compress(_array(members).tobytes(), 6)).decode("ascii")


def _decode(text: str) -> np.ndarray:
    return np.frombuffer(zlib.decompress(base64.b64decode(text)), dtype=np.uint64)


def decode_set(text: str) -> frozenset[int]:
    """The set :func:`encode_set` wrote."""
    return frozenset(int(v) for v in _decode(text))


@dataclass(frozen=True, eq=False)
class EntitySet:
    """One released row's (or one release's union) entity set, or only its size.

    ``members`` is a sorted array of unique uint64 hashes (None when too large to keep).
    """

    size: int
    members: np.ndarray | None

    @classmethod
    def of(cls, members: Iterable[int] | np.ndarray) -> EntitySet:
        array = _array(members)
        return cls(len(array), array if len(array) <= MAX_EXACT else None)

    def to_json(self) -> dict[str, Any]:
        if self.members is None:
            return {"size": self.size}
        packed = zlib.compress(self.members.tobytes(), 1)  # already sorted and unique
        return {"size": self.size, "members": base64.b64encode(packed).decode("ascii")}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> EntitySet:
        members = doc.get("members")
        return cls(int(doc["size"]), _decode(members) if members is not None else None)


def record(rows: Sequence[EntitySet]) -> dict[str, Any]:
    """What a release keeps for future checks: every row's set and their union."""
    exact = all(row.members is not None for row in rows)
    if exact and rows:
        union = EntitySet.of(np.concatenate([r.members for r in rows if r.members is not None]))
    elif exact:
        union = EntitySet.of([])
    else:
        union = EntitySet(sum(r.size for r in rows), None)
    return {"rows": [r.to_json() for r in rows], "union": union.to_json()}


def _distance(a: EntitySet, b: EntitySet) -> int | None:
    """|a △ b|, or None when a set was too large to keep exactly (size gap only)."""
    if a.members is None or b.members is None:
        return None
    common = np.intersect1d(a.members, b.members, assume_unique=True).size
    return a.size + b.size - 2 * int(common)


def check_differencing(
    new_rows: Sequence[EntitySet],
    history: Iterable[Mapping[str, Any]],
    *,
    min_group_size: int,
    rule: str = "sql.differencing",
) -> list[Reason]:
    """Reasons to refuse ``new_rows`` given earlier releases' ``_monitor`` records."""
    if min_group_size <= 1:
        return []
    new_sets = list(new_rows)
    if len(new_sets) > 1:
        exact = [r.members for r in new_rows if r.members is not None]
        if len(exact) == len(new_rows):
            new_sets.append(EntitySet.of(np.concatenate(exact)))
    for earlier in history:
        entry = earlier.get("entities")
        if not entry:
            continue
        old_sets = [EntitySet.from_json(r) for r in entry.get("rows", [])]
        if len(old_sets) > 1:
            old_sets.append(EntitySet.from_json(entry["union"]))
        for x in new_sets:
            for y in old_sets:
                if abs(x.size - y.size) >= min_group_size:
                    continue
                gap = _distance(x, y)
                if gap is not None and 0 < gap < min_group_size:
                    return [
                        Reason(
                            code="DIFFERENCING",
                            rule=rule,
                            message=(
                                "this result would differ from an earlier released result by "
                                f"fewer than {min_group_size} people; ask a broader question"
                            ),
                        )
                    ]
    return []
