"""The usual release in three compiled passes: find each person, number the split atoms, write.

A release whose people are each in one of its cells (a GROUP BY: the steady state of a
busy collaboration) is refined here without the general path's intermediate arrays
(positions of every person, the concatenated units, their membership codes, a
factorisation of (atom, cell) keys over a dense range, four counts).

1. *Find*: each person's position in the sorted universe (a bucket index over the hashes'
   top bits, then a scan of about eight hashes) and their atom. The universe is walked in
   blocks of the hash range that fit in a core's cache, every cell's next run of people in
   the block at a time (each cell's people are sorted): one sweep over the universe and its
   labels for the whole release, where a cell after another would sweep them once per cell.
   Two halves of the blocks run on two threads (the GIL is released).
2. *Number*: cell after cell, in the release's order, each person's old atom becomes the
   fresh atom of (old atom, this cell): a per-atom slot remembers the fresh atom that atom
   already split into *for this cell* (a slot written before the cell began is stale).
   Phantoms follow the same way, grouped by their set of cells first (a phantom in one cell
   joins that cell's people; regions that several cells share, as the cells of a join's
   group do, get a code of their own per set). Fresh atoms are numbered in order after the
   old ones; their people and units are counted on the way. This pass reads the atoms the
   first one gathered, in order: no lookup, and the only scattered accesses are the slots.
3. *Write*: each person's fresh label into the universe's labels, block by block again
   (on two threads when every cell was sorted, so that each half writes only its own
   range of the universe).

A person the space has not seen makes the passes stop (the caller adds the new people to
the universe and tries again), and so does a person in two cells of the release, or twice
in one (the write finds their label already fresh; then :func:`split_release` returns
``None`` and the caller takes the general path,
:func:`collabzone.disclosure._atoms.refine_sparse`, which handles every case). The passes
write into a copy of the label arrays, so giving up leaves nothing behind. The partition
produced is the general path's (the fresh atoms may be numbered in another order;
``tests/unit/test_disclosure_split.py`` compares the two), and the numbering does not depend
on the blocks or threads.
"""

from __future__ import annotations

import functools
import itertools
import os
import threading
import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from collabzone.disclosure._atoms import Hashes, Labels, mix64

_THREADED_FROM = 200_000
"""Releases with more people than this are found and written in two halves at once."""
_BLOCK = 32_768
"""Universe positions per block (a hash and a label each: half a core's 1 MB L2 cache)."""

_MISSING = -1
_REPEATED = -2
_UNSORTED = 1


def _find_py(
    universe: NDArray[np.uint64], buckets: NDArray[np.int64], shift: np.uint64,
    keys: NDArray[np.uint64], block_shift: np.uint64, first: int, last: int,
    bounds: NDArray[np.int64], entity_labels: NDArray[np.int64],
    positions: NDArray[np.int64], olds: NDArray[np.int64],
) -> int:  # fmt: skip
    """Find the people of blocks ``first .. last - 1``: each key's position and atom.

    ``bounds[b, c]`` is where cell ``c``'s people of block ``b`` start in ``keys``; rows
    ``first`` and ``last`` are given, the rows between are filled. Returns 0, ``_UNSORTED``
    (all found, but a cell was not sorted) or ``_MISSING``. An unsorted cell is still
    found whole (the last block takes whatever is left before ``bounds[last]``), just
    with less locality."""
    n = universe.size
    n_cells = bounds.shape[1]
    status = 0
    for b in range(first, last):
        final = b == last - 1
        for c in range(n_cells):
            i = bounds[b, c]
            end = bounds[last, c]
            while i < end:
                key = keys[i]
                if not final and (key >> block_shift) > b:
                    break
                if i > bounds[0, c] and key < keys[i - 1]:
                    status = _UNSORTED
                bucket = key >> shift
                lo = buckets[bucket]
                hi = min(buckets[bucket + 1], n)
                while lo < hi and universe[lo] < key:
                    lo += 1
                if lo >= n or universe[lo] != key:
                    return _MISSING
                positions[i] = lo
                olds[i] = entity_labels[lo]
                i += 1
            if not final:
                bounds[b + 1, c] = i
    return status


def _number_py(
    key_starts: NDArray[np.int64], olds: NDArray[np.int64], phantoms: NDArray[np.int64],
    phantom_starts: NDArray[np.int64], phantom_labels: NDArray[np.int64], base: int,
    slot: NDArray[np.int32] | NDArray[np.int64], parents: NDArray[np.int64],
    codes: NDArray[np.int64], people: NDArray[np.int64], units: NDArray[np.int64],
) -> int:  # fmt: skip
    """Number the fresh atoms, code after code: ``olds`` (each person's atom) becomes each
    person's fresh label, phantoms are relabelled in place. The number of fresh atoms, or
    ``_REPEATED`` (a unit already fresh). Fresh atom ``f`` gets label ``base + f``;
    ``slot`` (-1 for each of the ``base`` old atoms) holds the fresh atom each split into
    last."""
    fresh = 0
    for code in range(phantom_starts.size - 1):
        begin = fresh  # slots below this were written for an earlier code: stale
        for i in range(key_starts[code], key_starts[code + 1]):
            old = olds[i]
            if old >= base:
                return _REPEATED
            f = slot[old]
            if f < begin:
                f = fresh
                slot[old] = f
                parents[f] = old
                codes[f] = code
                people[f] = 0
                units[f] = 0
                fresh += 1
            olds[i] = base + f
            people[f] += 1
        for i in range(phantom_starts[code], phantom_starts[code + 1]):
            unit = phantoms[i]
            old = phantom_labels[unit]
            if old >= base:
                return _REPEATED
            f = slot[old]
            if f < begin:
                f = fresh
                slot[old] = f
                parents[f] = old
                codes[f] = code
                people[f] = 0
                units[f] = 0
                fresh += 1
            phantom_labels[unit] = base + f
            units[f] += 1
    for f in range(fresh):
        units[f] += people[f]
    return fresh


def _write_py(
    bounds: NDArray[np.int64], first: int, last: int, positions: NDArray[np.int64],
    fresh_labels: NDArray[np.int64], entity_labels: NDArray[np.int64], base: int,
) -> int:  # fmt: skip
    """Write the fresh labels of blocks ``first .. last - 1``: 0, or ``_REPEATED`` (a
    person met twice: their label is fresh already)."""
    for b in range(first, last):
        for c in range(bounds.shape[1]):
            for i in range(bounds[b, c], bounds[b + 1, c]):
                at = positions[i]
                if entity_labels[at] >= base:
                    return _REPEATED
                entity_labels[at] = fresh_labels[i]
    return 0


def _recount_py(
    parents: NDArray[np.int64], fresh_people: NDArray[np.int64],
    fresh_units: NDArray[np.int64], units: NDArray[np.int64],
    people_after: NDArray[np.int64], units_after: NDArray[np.int64],
    touched: NDArray[np.int64],
) -> int:  # fmt: skip
    """Take each fresh atom's people and units off its parent (``*_after`` hold the counts
    before, then the fresh atoms'), and list the touched atoms: the old ones that lost
    units but kept some, in order, then the fresh ones. How many were touched."""
    base = units.size
    for f in range(parents.size):
        people_after[parents[f]] -= fresh_people[f]
        units_after[parents[f]] -= fresh_units[f]
    n = 0
    for atom in range(base):
        if units_after[atom] != units[atom] and units_after[atom] > 0:
            touched[n] = atom
            n += 1
    for f in range(parents.size):
        touched[n] = base + f
        n += 1
    return n


@functools.cache
def _recount_kernel() -> Callable[..., int]:
    from numba import njit

    compiled: Callable[..., int] = njit(nogil=True, cache=True)(_recount_py)
    return compiled


def recount(
    split: Split, people: NDArray[np.int64], units: NDArray[np.int64]
) -> tuple[NDArray[np.int64], NDArray[np.int64], Labels]:
    """People and units per atom after ``split`` (``people`` and ``units``: per atom
    before it; fresh atoms after the old ones), and the atoms it touched: the old atoms
    that lost units and kept some, in order, then every fresh one."""
    base = units.size
    people_after = np.concatenate((people, split.people))
    units_after = np.concatenate((units, split.units))
    touched = np.empty(base + split.parents.size, dtype=np.int64)
    n = int(_recount_kernel()(split.parents, split.people, split.units, units, people_after,
                              units_after, touched))  # fmt: skip
    return people_after, units_after, touched[:n]


@functools.cache
def _kernels() -> tuple[Callable[..., int], Callable[..., int], Callable[..., int]]:
    """The compiled passes (Numba imported on first use)."""
    from numba import njit

    find: Callable[..., int] = njit(nogil=True, cache=True)(_find_py)
    number: Callable[..., int] = njit(nogil=True, cache=True)(_number_py)
    write: Callable[..., int] = njit(nogil=True, cache=True)(_write_py)
    return find, number, write


_POOL: tuple[int, ThreadPoolExecutor] | None = None
_POOL_LOCK = threading.Lock()


def _helper() -> ThreadPoolExecutor:
    """One worker thread kept for the second half of large releases (the caller's thread
    runs the first): starting a thread per release costs more than the wait for it. A
    forked child (a server's worker process) gets a worker of its own."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None or _POOL[0] != os.getpid():
            _POOL = (os.getpid(), ThreadPoolExecutor(1, thread_name_prefix="collabzone-split"))
        return _POOL[1]


def _in_halves(run: Callable[[int, int], int], halves: list[tuple[int, int]]) -> list[int]:
    """``run`` on each range of blocks: the second on the helper thread, at once."""
    if len(halves) == 1:
        return [run(*halves[0])]
    later: Future[int] = _helper().submit(run, *halves[1])
    first = run(*halves[0])
    return [first, later.result()]


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

    labels: Labels
    """Every unit's new label: the entities', then the phantoms'."""
    n_entities: int
    parents: Labels
    codes: Labels
    people: NDArray[np.int64]
    units: NDArray[np.int64]

    @property
    def entity_labels(self) -> Labels:
        return self.labels[: self.n_entities]

    @property
    def phantom_labels(self) -> Labels:
        return self.labels[self.n_entities :]


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
    into ``phantom_labels``, in any number of cells). Every label is below ``n_atoms``."""
    n_cells = len(cells)
    if n_cells == 0 or universe.size == 0:
        return None
    flat, phantom_starts = _phantom_codes(phantoms, n_cells)
    n_codes = phantom_starts.size - 1
    keys = np.concatenate(cells).astype(np.uint64, copy=False)
    key_starts = np.zeros(n_codes + 1, dtype=np.int64)
    np.cumsum([c.size for c in cells], out=key_starts[1 : n_cells + 1])
    key_starts[n_cells + 1 :] = keys.size  # codes of phantoms in several cells: no people
    find, number, write = _kernels()
    buckets, shift = bucket_index(universe)
    bits = min(16, max(0, (universe.size // _BLOCK).bit_length() - 1))
    n_blocks = 1 << bits
    block_shift = np.uint64(64 - bits) if bits else np.uint64(63)  # one block: never read
    bounds = np.empty((n_blocks + 1, n_cells), dtype=np.int64)
    bounds[0], bounds[n_blocks] = key_starts[:n_cells], key_starts[1 : n_cells + 1]
    halves = [(0, n_blocks)]
    if keys.size >= _THREADED_FROM and n_blocks > 1:
        middle = n_blocks // 2
        edge = np.uint64(middle) << block_shift  # the first hash of the second half
        bounds[middle] = [
            start + np.searchsorted(keys[start:end], edge)
            for start, end in itertools.pairwise(key_starts[: n_cells + 1])
        ]
        halves = [(0, middle), (middle, n_blocks)]
    positions = np.empty(keys.size, dtype=np.int64)
    olds = np.empty(keys.size, dtype=np.int64)

    def find_half(first: int, last: int) -> int:
        return int(find(universe, buckets, shift, keys, block_shift, first, last, bounds,
                        entity_labels, positions, olds))  # fmt: skip

    found = _in_halves(find_half, halves)
    if min(found) < 0:
        return None
    n = universe.size
    labels = np.empty(n + phantom_labels.size, dtype=np.int64)
    labels[:n], labels[n:] = entity_labels, phantom_labels
    capacity = keys.size + flat.size
    parents, codes, people, units = (np.empty(capacity, dtype=np.int64) for _ in range(4))
    # 32-bit slots when they can hold every fresh atom: they stay in a core's cache
    slot = np.full(n_atoms, -1, dtype=np.int32 if capacity < 2**31 else np.int64)
    fresh = int(number(key_starts, olds, flat, phantom_starts, labels[n:], n_atoms, slot,
                       parents, codes, people, units))  # fmt: skip
    if fresh < 0:
        return None
    # two writers only when each half's people lie in its own range of the universe
    together = halves if max(found) != _UNSORTED else [(0, n_blocks)]

    def write_half(first: int, last: int) -> int:
        return int(write(bounds, first, last, positions, olds, labels[:n], n_atoms))

    if min(_in_halves(write_half, together)) < 0:
        return None
    return Split(labels, n, parents[:fresh], codes[:fresh], people[:fresh], units[:fresh])


__all__ = ["Split", "recount", "split_release"]
