"""Disclosure auditing: the atoms of everything released, and which of them are too small.

Exact aggregates over released cells combine. The difference of two counts is the count of
their set difference; three overlapping totals give the middle one by inclusion-exclusion;
a total minus the visible groups gives the suppressed one. Every linear combination of
released COUNT / SUM / AVG cells is an aggregate over a union of *atoms*: the classes of
units that lie in exactly the same released cells (Chin and Ozsoyoglu's elementary sets).
If every atom that a released cell covers holds at least ``min_group_size`` people, no
combination of answers, from one analyst or from many, describes fewer people than that.

Units are entities (weight 1) and *phantoms* (weight 0). A phantom stands for a record
that could exist but that nobody holds: a combination of values the released conditions
tell apart, a token the analyst joined on that is not in the data. An atom of phantoms
alone is an empty region that the answers would reveal as empty, so it counts as small,
exactly like an atom of one person: whether the victim is there or not, the decision is
the same (see docs/sql.md, "Refusals are not an oracle").

Thresholds are *jittered*: an atom of ``k .. k + width`` people is small when its size is
below ``k`` plus a jitter keyed on its content (a keyed hash of its members). One person
more or less at the boundary changes a decision only by chance, and asking again in other
words draws no new jitter, since the content is the same.

Everything here is pure numpy over label arrays (no Python object per unit), so a million
entities and ten thousand released cells stay within tens of milliseconds per check.

Example:
    >>> import numpy as np
    >>> labels, covered = fresh(4)
    >>> step = refine(labels, covered, np.array([0, 0, 0, -1]))  # a cell of units 0..2
    >>> step = refine(step.labels, step.covered, np.array([0, 0, -1, -1]))  # then 0..1
    >>> sorted(atom_sizes(step.labels, np.ones(4), len(step.covered))[step.covered].tolist())
    [1.0, 2.0]
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray

Labels = NDArray[np.int64]
Flags = NDArray[np.bool_]
Hashes = NDArray[np.uint64]

_DENSE_LIMIT = 1 << 26
"""Largest label-times-code range refined with a dense marker array (else a hash table)."""


def mix64(values: NDArray[np.uint64] | NDArray[np.int64]) -> Hashes:
    """SplitMix64's finaliser, vectorised: a well-mixed 64-bit hash of each value."""
    x = np.asarray(values).astype(np.uint64, copy=True)
    with np.errstate(over="ignore"):
        x += np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def text_hashes(values: list[str], key: bytes = b"") -> Hashes:
    """Keyed 64-bit hashes of text values (tokens, identifiers), for units given as text."""
    out = np.empty(len(values), dtype=np.uint64)
    for i, value in enumerate(values):
        digest = hashlib.blake2b(value.encode("utf-8"), key=key, digest_size=8).digest()
        out[i] = int.from_bytes(digest, "little")
    return out


def fresh(n_units: int) -> tuple[Labels, Flags]:
    """A partition where nothing was released yet: every unit in one uncovered atom."""
    return np.zeros(n_units, dtype=np.int64), np.zeros(1, dtype=np.bool_)


@dataclass(frozen=True)
class Refined:
    """The partition after one release, and the atoms the release created or changed."""

    labels: Labels
    covered: Flags
    """Per atom label: whether any released cell covers it (the others were never shown)."""
    touched: Labels
    """Labels of atoms this release created or changed (the ones to check)."""


def membership_codes(
    n_units: int, units: NDArray[np.int64], cells: NDArray[np.int64]
) -> NDArray[np.int64]:
    """One code per unit for one release: -1 if it is in no cell, else an id of the set
    of cells it is in (a unit may be in several cells of one release, e.g. a customer with
    rows in two groups). Units with equal codes are in exactly the same cells."""
    codes = np.full(n_units, -1, dtype=np.int64)
    coded = membership_codes_sparse(units, cells)
    codes[coded.units] = coded.codes
    return codes


@dataclass(frozen=True)
class Codes:
    """One release's units in some cell (each once) and the code of their set of cells."""

    units: NDArray[np.int64]
    codes: NDArray[np.int64]


def membership_codes_sparse(units: NDArray[np.int64], cells: NDArray[np.int64]) -> Codes:
    """:func:`membership_codes` for the units in some cell only."""
    units, cells = np.asarray(units, dtype=np.int64), np.asarray(cells, dtype=np.int64)
    if units.size == 0:
        return Codes(units, cells)
    # the usual case, one cell each: marks in a byte array (a fifth of a bincount's time)
    seen = np.zeros(int(units.max()) + 1, dtype=np.bool_)
    seen[units] = True
    if np.count_nonzero(seen) == units.size:
        return Codes(units, cells)
    order = np.lexsort((cells, units))
    units, cells = units[order], cells[order]
    keep = np.ones(units.size, dtype=np.bool_)
    keep[1:] = (units[1:] != units[:-1]) | (cells[1:] != cells[:-1])
    units, cells = units[keep], cells[keep]
    starts = np.flatnonzero(np.concatenate(([True], units[1:] != units[:-1])))
    if starts.size == units.size:
        return Codes(units, cells)
    with np.errstate(over="ignore"):
        sums = np.add.reduceat(mix64(cells + 1), starts)
    _, dense = np.unique(sums, return_inverse=True)
    return Codes(units[starts], dense.astype(np.int64))


def refine(labels: Labels, covered: Flags, codes: NDArray[np.int64]) -> Refined:
    """Split every atom by the cells of one release (``codes`` from :func:`membership_codes`)."""
    if labels.shape != codes.shape:
        raise ValueError("one code per unit is needed")
    n_codes = int(codes.max()) + 2 if codes.size else 1
    keys = labels * n_codes + (codes + 1)
    span = int(covered.size) * n_codes
    if span <= _DENSE_LIMIT:
        present = np.zeros(span, dtype=np.int64)
        present[keys] = 1
        rank = np.cumsum(present) - 1
        new_labels = rank[keys]
        distinct = np.flatnonzero(present)
    else:
        distinct, new_labels = np.unique(keys, return_inverse=True)
        new_labels = new_labels.astype(np.int64)
    old_of = distinct // n_codes
    in_cell = (distinct % n_codes) > 0
    new_covered = covered[old_of] | in_cell
    hit_old = np.zeros(covered.size, dtype=np.bool_)
    hit_old[old_of[in_cell]] = True
    touched = np.flatnonzero(hit_old[old_of]).astype(np.int64)
    return Refined(new_labels.astype(np.int64), new_covered, touched)


@dataclass(frozen=True)
class Counted:
    """A partition with its per-atom counts kept up to date, refined in place of a copy."""

    labels: Labels
    covered: Flags
    people: NDArray[np.int64]
    """Entities per atom label."""
    units: NDArray[np.int64]
    """Units (entities and phantoms) per atom label: 0 for a label no longer used."""
    touched: Labels
    parents: Labels
    """Per fresh label (numbered after the old ones): the atom it split from."""
    codes: NDArray[np.int64]
    """Per fresh label: the code (set of this release's cells) it joined."""


_DENSE_FACTORIZE_LIMIT = 1 << 25
"""Largest key range factorised with a dense rank array (128 MB of int32) rather than hashed."""


def _factorize(keys: NDArray[np.int64], span: int) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Dense ids for ``keys`` (all in ``0 .. span - 1``) and the distinct keys, in key order.

    A rank array over the key range beats a hash table when the range is not much larger
    than the keys (a release's cells times the atoms it splits, for a release covering most
    people); otherwise pandas' hash table.
    """
    if span <= min(_DENSE_FACTORIZE_LIMIT, 8 * keys.size):
        present = np.zeros(span, dtype=np.bool_)
        present[keys] = True
        rank = np.cumsum(present, dtype=np.int32)
        ids = rank.take(keys).astype(np.int64) - 1
        return ids, np.flatnonzero(present).astype(np.int64)
    ids, distinct = pd.factorize(keys)
    return np.asarray(ids, dtype=np.int64), np.asarray(distinct, dtype=np.int64)


def refine_sparse(
    labels: Labels,
    covered: Flags,
    people: NDArray[np.int64],
    units: NDArray[np.int64],
    members: NDArray[np.int64],
    codes: NDArray[np.int64],
    is_entity: NDArray[np.bool_],
) -> Counted:
    """Split atoms by one release, touching only the units in its cells.

    ``members`` are the indices of the units in at least one cell, ``codes`` their
    :func:`membership_codes` (>= 0) and ``is_entity`` whether each is a person. Each unit in
    a cell moves to a fresh atom for its (old atom, set of cells); an atom's units outside
    every cell keep its label. The cost is in the release's size, not the partition's.
    """
    labels = labels.copy()
    if members.size == 0:
        none = np.zeros(0, dtype=np.int64)
        return Counted(labels, covered, people, units, none, none, none)
    old = labels.take(members)
    n_codes = int(codes.max()) + 1
    keys = old * n_codes + codes
    fresh, distinct = _factorize(keys, int(covered.size) * n_codes)
    base = covered.size
    np.put(labels, members, base + fresh)
    n_fresh = int(distinct.size)
    everyone = bool(is_entity.all())
    moved_people = np.bincount(old if everyone else old[is_entity], minlength=base)
    moved_units = np.bincount(old, minlength=base)
    fresh_people = np.bincount(fresh if everyone else fresh[is_entity], minlength=n_fresh)
    people = np.concatenate((people - moved_people, fresh_people))
    units = np.concatenate((units - moved_units, np.bincount(fresh, minlength=n_fresh)))
    covered = np.concatenate((covered, np.ones(n_fresh, dtype=np.bool_)))
    emptied = np.flatnonzero(moved_units)
    remainders = emptied[units[emptied] > 0]
    touched = np.concatenate((remainders, base + np.arange(n_fresh, dtype=np.int64)))
    keys_fresh = np.asarray(distinct, dtype=np.int64)
    return Counted(
        labels, covered, people, units, touched, keys_fresh // n_codes, keys_fresh % n_codes
    )


def compact(
    labels: Labels, covered: Flags, people: NDArray[np.int64], units: NDArray[np.int64]
) -> Counted:
    """Renumber the atoms densely (labels no longer used are dropped); ``touched`` of the
    result holds, per new label, its old one."""
    live = np.flatnonzero(units > 0)
    renumber = np.full(covered.size, -1, dtype=np.int64)
    renumber[live] = np.arange(live.size, dtype=np.int64)
    none = np.zeros(0, dtype=np.int64)
    return Counted(renumber[labels], covered[live], people[live], units[live], live, none, none)


def check_counted(
    counted: Counted,
    *,
    min_size: int,
    jitter: Jitter | None,
    content: Callable[[Labels], Hashes],
) -> Finding:
    """:func:`check` over kept counts: the touched, covered atoms under the minimum.

    ``content`` gives the content hashes of the wanted atoms (for the jitter).
    """
    touched = counted.touched
    alive = touched[(counted.units[touched] > 0) & counted.covered[touched]]
    if alive.size == 0:
        return Finding(0, 0, 0, 0)
    size_of = counted.people[alive]
    width = jitter.width if jitter is not None else 0
    small = size_of < min_size
    borderline = ~small & (size_of < min_size + width)
    if borderline.any() and jitter is not None:
        thresholds = min_size + jitter.offsets(content(alive[borderline]))
        small[np.flatnonzero(borderline)] = size_of[borderline] < thresholds
    if not small.any():
        return Finding(0, 0, 0, 0)
    small_sizes = size_of[small]
    return Finding(
        small_atoms=int(small.sum()),
        people=int(small_sizes.sum()),
        smallest=int(small_sizes.min()),
        empty_regions=int((small_sizes == 0).sum()),
    )


def content_hashes(labels: Labels, identity: Hashes, wanted: Labels) -> Hashes:
    """Order-free hash of the members of each wanted atom (``labels`` of entities only)."""
    return _content_hashes(labels, np.ones(labels.size), identity, wanted)


def atom_sizes(labels: Labels, weights: NDArray[np.float64], n_labels: int) -> NDArray[np.float64]:
    """People per atom (phantoms weigh nothing)."""
    sizes: NDArray[np.float64] = np.bincount(labels, weights=weights, minlength=n_labels).astype(
        np.float64
    )
    return sizes


@dataclass(frozen=True)
class Jitter:
    """A keyed, content-sticky raise of the threshold by 0 .. ``width``."""

    key: bytes
    width: int

    def offsets(self, content: Hashes) -> NDArray[np.int64]:
        """The jitter of atoms whose content hashes are ``content``."""
        if self.width <= 0:
            return np.zeros(content.size, dtype=np.int64)
        salt = int.from_bytes(hashlib.blake2b(self.key, digest_size=8).digest(), "little")
        mixed = mix64(content ^ np.uint64(salt))
        return (mixed % np.uint64(self.width + 1)).astype(np.int64)


@dataclass(frozen=True)
class Finding:
    """What the check found: the atoms too small to release, in people and in number."""

    small_atoms: int
    people: int
    """People in the small atoms (those an attacker could isolate in groups under the minimum)."""
    smallest: int
    """Size of the smallest such atom (0: a region the answers would reveal as empty)."""
    empty_regions: int

    @property
    def safe(self) -> bool:
        return self.small_atoms == 0


def _content_hashes(
    labels: Labels, weights: NDArray[np.float64], units: Hashes, wanted: Labels
) -> Hashes:
    """Order-free hash of the members of each wanted atom (0 for an atom of phantoms)."""
    out = np.zeros(wanted.size, dtype=np.uint64)
    mask = np.isin(labels, wanted) & (weights > 0)
    if not mask.any():
        return out
    sub_labels, sub_units = labels[mask], units[mask]
    order = np.argsort(sub_labels, kind="stable")
    sub_labels, sub_units = sub_labels[order], sub_units[order]
    starts = np.flatnonzero(np.concatenate(([True], sub_labels[1:] != sub_labels[:-1])))
    with np.errstate(over="ignore"):
        sums = np.add.reduceat(mix64(sub_units), starts)
    position = {int(label): i for i, label in enumerate(wanted.tolist())}
    for label, value in zip(sub_labels[starts].tolist(), sums.tolist(), strict=True):
        out[position[int(label)]] = np.uint64(value)
    return out


def check(
    labels: Labels,
    covered: Flags,
    weights: NDArray[np.float64],
    *,
    touched: Labels,
    min_size: int,
    jitter: Jitter | None = None,
    units: Hashes | None = None,
) -> Finding:
    """The covered, touched atoms holding fewer than ``min_size`` (+ jitter) people.

    ``units`` are the units' 64-bit identities (entity hashes), needed for the jitter's
    content hash; phantoms may carry any value (their weight is 0).
    """
    sizes = atom_sizes(labels, weights, covered.size)
    present = np.zeros(covered.size, dtype=np.bool_)
    present[labels] = True
    candidates = touched[covered[touched] & present[touched]]
    if candidates.size == 0:
        return Finding(0, 0, 0, 0)
    size_of = sizes[candidates]
    width = jitter.width if jitter is not None else 0
    small = size_of < min_size
    borderline = ~small & (size_of < min_size + width)
    if borderline.any() and jitter is not None:
        ids = candidates[borderline]
        identity = units if units is not None else np.zeros(labels.size, dtype=np.uint64)
        thresholds = min_size + jitter.offsets(_content_hashes(labels, weights, identity, ids))
        small[np.flatnonzero(borderline)] = size_of[borderline] < thresholds
    if not small.any():
        return Finding(0, 0, 0, 0)
    small_sizes = size_of[small]
    return Finding(
        small_atoms=int(small.sum()),
        people=round(float(small_sizes.sum())),
        smallest=round(float(small_sizes.min())),
        empty_regions=int((small_sizes == 0).sum()),
    )


MEMBER_SALT_PURPOSE = "disclosure/member-salt"
"""Key purpose of the salt of people's 64-bit hashes (every technique uses the same one, so
that one dataset's audited space is shared by every release path)."""
JITTER_PURPOSE = "disclosure/threshold-jitter"


def space_name(dataset: str, entity: str, scope: str, requester: str) -> str:
    """The audited space of ``dataset``'s people (by its ``entity`` column): every analyst's
    releases (``scope`` all) or one analyst's (``scope`` requester)."""
    who = "all" if scope == "all" else f"requester:{requester}"
    return f"entities:{dataset}:{entity}:{who}"


def below_jittered(members: list[Hashes], jitter: Jitter, min_size: int) -> Flags:
    """Cells whose people number less than the jittered threshold of their content."""
    sizes = np.array([m.size for m in members], dtype=np.int64)
    small = sizes < min_size
    borderline = np.flatnonzero(~small & (sizes < min_size + jitter.width))
    if borderline.size:
        content = np.array(
            [int(np.add.reduce(mix64(members[int(i)]), dtype=np.uint64)) for i in borderline],
            dtype=np.uint64,
        )
        small[borderline] = sizes[borderline] < min_size + jitter.offsets(content)
    return small
