"""The usual release in one pass: find each person, split their atom, count, in one loop.

A release whose people are each in one of its cells (a GROUP BY: the steady state of a
busy collaboration) is refined here without the general path's intermediate arrays
(positions of every person, the concatenated units, their membership codes, a
factorisation of (atom, cell) keys over a dense range, four counts). For each cell in
turn, a compiled loop finds each person in the sorted universe (a bucket index over the
hashes' top bits, then a scan of about eight hashes), reads their atom, and moves them to
the fresh atom of (old atom, this cell): a per-atom slot remembers the fresh atom that atom
already split into *for this cell* (a slot written before the cell began is stale).
Phantoms follow the same way, grouped by their set of cells first (a phantom in one cell
joins that cell's people; regions that several cells share, as the cells of a join's
group do, get a code of their own per set). Fresh atoms are numbered in order after the
old ones; their people and units are counted on the way.

A person the space has not seen makes the loop stop (the caller adds the new people to
the universe and tries again), and so does a person in two cells of the release (then
:func:`split_release` returns ``None`` and the caller takes the general path,
:func:`collabzone.disclosure._atoms.refine_sparse`, which handles every case). The loop
writes into copies of the label arrays, so giving up leaves nothing behind. The partition
it produces is the general path's (the fresh atoms may be numbered in another order;
``tests/unit/test_disclosure_split.py`` compares the two).

Large releases run their cells in two halves on two threads (the GIL is released); the
second half's fresh atoms are numbered after a gap that is closed afterwards, and a person
reached from both halves is detected then (their label is not in the range of the half
that reached them).
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from collabzone.disclosure._atoms import Hashes, Labels, mix64

_THREADED_FROM = 200_000
"""Releases with more people than this are split in two halves at once."""

_MISSING = -1
_REPEATED = -2


def _split_cells_py(
    universe: NDArray[np.uint64], buckets: NDArray[np.int64], shift: np.uint64,
    keys: NDArray[np.uint64], key_starts: NDArray[np.int64], phantoms: NDArray[np.int64], phantom_starts: NDArray[np.int64], first: int, last: int,
    entity_labels: NDArray[np.int64], phantom_labels: NDArray[np.int64], base: int,
    offset: int, positions: NDArray[np.int64], parents: NDArray[np.int64],
    codes: NDArray[np.int64], people: NDArray[np.int64], units: NDArray[np.int64],
) -> int:  # fmt: skip
    """Split the atoms of cells ``first .. last - 1``; the number of fresh atoms, or
    ``_MISSING`` / ``_REPEATED`` (give up). Fresh atom ``f`` gets label ``offset + f``."""
    n = universe.size
    slot = np.full(base, -1, dtype=np.int64)
    fresh = 0
    at = 0
    for cell in range(first, last):
        begin = fresh  # slots below this were written for an earlier cell: stale
        for i in range(key_starts[cell], key_starts[cell + 1]):
            key = keys[i]
            bucket = key >> shift
            lo = buckets[bucket]
            hi = min(buckets[bucket + 1], n)
            while lo < hi and universe[lo] < key:
                lo += 1
            if lo >= n or universe[lo] != key:
                return _MISSING
            old = entity_labels[lo]
            if old >= base:
                return _REPEATED
            f = slot[old]
            if f < begin:
                f = fresh
                slot[old] = f
                parents[f] = old
                codes[f] = cell
                people[f] = 0
                units[f] = 0
                fresh += 1
            entity_labels[lo] = offset + f
            people[f] += 1
            units[f] += 1
            if positions.size:
                positions[at] = lo
                at += 1
        for i in range(phantom_starts[cell], phantom_starts[cell + 1]):
            unit = phantoms[i]
            old = phantom_labels[unit]
            if old >= base:
                return _REPEATED
            f = slot[old]
            if f < begin:
                f = fresh
                slot[old] = f
                parents[f] = old
                codes[f] = cell
                people[f] = 0
                units[f] = 0
                fresh += 1
            phantom_labels[unit] = offset + f
            units[f] += 1
    return fresh


def _settle_py(
    labels: NDArray[np.int64], where: NDArray[np.int64], low: int, high: int, shift: int
) -> bool:
    """Whether every unit at ``where`` still has a label in ``low .. high - 1`` (no other
    half moved it too); each is moved down by ``shift`` on the way."""
    for i in range(where.size):
        label = labels[where[i]]
        if label < low or label >= high:
            return False
        labels[where[i]] = label - shift
    return True


@functools.cache
def _kernels() -> tuple[Callable[..., int], Callable[..., bool]]:
    """The compiled loops (Numba imported on first use)."""
    from numba import njit

    split: Callable[..., int] = njit(nogil=True, cache=True)(_split_cells_py)
    settle: Callable[..., bool] = njit(nogil=True, cache=True)(_settle_py)
    return split, settle


_INDEXES: dict[int, tuple[weakref.ref[NDArray[np.uint64]], NDArray[np.int64], np.uint64]] = {}
"""Bucket indexes of recent universes, by the universe's identity (a space's universe is
never changed in place; the loop checks every position it finds anyway, and never reads
past the universe, so a stale index could only send a release to the general path)."""


def bucket_index(universe: NDArray[np.uint64]) -> tuple[NDArray[np.int64], np.uint64]:
    """Where each bucket of the top bits starts in the sorted ``universe`` (about eight
    hashes per bucket: a person is found by scanning one bucket, not by a binary search),
    and the shift that gives a hash's bucket. Kept for the few most recent universes."""
    known = _INDEXES.get(id(universe))
    if known is not None and known[0]() is universe:
        return known[1], known[2]
    bits = max(1, min(24, int(universe.size).bit_length() - 3))
    shift = np.uint64(64 - bits)
    counts = np.bincount((universe >> shift).astype(np.int64), minlength=1 << bits)
    buckets = np.zeros((1 << bits) + 1, dtype=np.int64)
    np.cumsum(counts, out=buckets[1:])
    if len(_INDEXES) >= 4:
        _INDEXES.pop(next(iter(_INDEXES)))
    _INDEXES[id(universe)] = (weakref.ref(universe), buckets, shift)
    return buckets, shift


def _phantom_codes(
    phantoms: Sequence[NDArray[np.int64]], n_cells: int
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """The release's phantoms, each once, grouped by the code of their set of cells (a
    phantom in one cell has that cell's number as code, like the people in it; one in
    several cells, e.g. a region every cell of a join's group shares, a code from
    ``n_cells`` on, one per distinct set), and where each code's group starts."""
    sizes = [p.size for p in phantoms]
    units = np.concatenate([np.asarray(p, dtype=np.int64) for p in phantoms])
    starts = np.zeros(n_cells + 1, dtype=np.int64)
    np.cumsum(sizes, out=starts[1:])
    if units.size == 0:
        return units, starts
    seen = np.zeros(int(units.max()) + 1, dtype=np.bool_)
    seen[units] = True
    if np.count_nonzero(seen) == units.size:  # each in one cell: already grouped by cell
        return units, starts
    cells = np.repeat(np.arange(n_cells, dtype=np.int64), sizes)
    order = np.lexsort((cells, units))
    units, cells = units[order], cells[order]
    keep = np.ones(units.size, dtype=np.bool_)
    keep[1:] = (units[1:] != units[:-1]) | (cells[1:] != cells[:-1])
    units, cells = units[keep], cells[keep]
    first = np.flatnonzero(np.concatenate(([True], units[1:] != units[:-1])))
    single = np.diff(np.append(first, units.size)) == 1
    codes = cells[first]
    if not single.all():
        with np.errstate(over="ignore"):
            sums = np.add.reduceat(mix64(cells + 1), first)
        _, dense = np.unique(sums[~single], return_inverse=True)
        codes[~single] = n_cells + dense.reshape(-1)
    units = units[first]
    order = np.argsort(codes, kind="stable")
    units, codes = units[order], codes[order]
    n_codes = int(codes[-1]) + 1 if codes.size else n_cells
    starts = np.searchsorted(codes, np.arange(max(n_codes, n_cells) + 1)).astype(np.int64)
    return units, starts


@dataclass(frozen=True)
class Split:
    """The release's refinement: new labels, and per fresh atom its parent, cell and counts."""

    entity_labels: Labels
    phantom_labels: Labels
    parents: Labels
    codes: Labels
    people: NDArray[np.int64]
    units: NDArray[np.int64]


def split_release(
    universe: Hashes,
    entity_labels: Labels,
    phantom_labels: Labels,
    n_atoms: int,
    cells: Sequence[Hashes],
    phantoms: Sequence[NDArray[np.int64]],
) -> Split | None:
    """Refine by a release whose every person is in ``universe`` and in one cell;
    ``None`` otherwise (grow the universe, or take the general path). ``cells[i]`` are
    cell ``i``'s people (sorted runs are fastest), ``phantoms[i]`` its phantoms (indices
    into ``phantom_labels``, in any number of cells)."""
    n_cells = len(cells)
    if n_cells == 0 or universe.size == 0:
        return None
    flat, phantom_starts = _phantom_codes(phantoms, n_cells)
    n_codes = phantom_starts.size - 1
    keys = np.concatenate(cells).astype(np.uint64, copy=False)
    key_starts = np.zeros(n_codes + 1, dtype=np.int64)
    np.cumsum([c.size for c in cells], out=key_starts[1 : n_cells + 1])
    key_starts[n_cells + 1 :] = keys.size  # codes of phantoms in several cells: no people
    entity_out, phantom_out = entity_labels.copy(), phantom_labels.copy()
    split, settle = _kernels()
    buckets, shift = bucket_index(universe)
    halves = [(0, n_codes)]
    if keys.size >= _THREADED_FROM and n_codes > 1:
        middle = int(np.searchsorted(key_starts, keys.size // 2))
        middle = min(max(middle, 1), n_codes - 1)
        halves = [(0, middle), (middle, n_codes)]
    threaded = len(halves) > 1
    offsets: list[tuple[int, int]] = []
    jobs_args: list[tuple[Any, ...]] = []
    outputs: list[list[NDArray[np.int64]]] = []
    offset = n_atoms
    for first, last in halves:
        capacity = int(key_starts[last] - key_starts[first] + phantom_starts[last]
                       - phantom_starts[first])  # fmt: skip
        offsets.append((offset, capacity))
        # positions are kept only to check the halves afterwards
        where = int(key_starts[last] - key_starts[first]) if threaded else 0
        out = [np.empty(where, dtype=np.int64)] + [
            np.empty(capacity, dtype=np.int64) for _ in range(4)
        ]
        outputs.append(out)
        jobs_args.append(
            (universe, buckets, shift, keys, key_starts, flat, phantom_starts, first, last,
             entity_out, phantom_out, n_atoms, offset, *out)
        )  # fmt: skip
        offset += capacity
    results: list[int]
    if not threaded:
        results = [int(split(*jobs_args[0]))]
    else:
        with ThreadPoolExecutor(max_workers=2) as pool:
            futures = [pool.submit(split, *args) for args in jobs_args]
            results = [int(f.result()) for f in futures]
    if min(results) < 0:
        return None
    # close the gap between halves, checking that no unit was reached from both
    parts: list[list[NDArray[np.int64]]] = [[], [], [], []]
    numbered = n_atoms
    for (first, last), (start, _), fresh, out in zip(halves, offsets, results, outputs,
                                                     strict=True):  # fmt: skip
        if threaded:
            mine = flat[int(phantom_starts[first]) : int(phantom_starts[last])]
            shift_down = start - numbered
            if not (
                settle(entity_out, out[0], start, start + fresh, shift_down)
                and settle(phantom_out, mine, start, start + fresh, shift_down)
            ):
                return None
        for part, array in zip(parts, out[1:], strict=True):
            part.append(array[:fresh])
        numbered += fresh
    joined: list[Any] = [np.concatenate(p) for p in parts]
    return Split(entity_out, phantom_out, joined[0], joined[1], joined[2], joined[3])


__all__ = ["Split", "split_release"]
