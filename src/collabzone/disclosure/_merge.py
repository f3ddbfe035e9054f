"""A token dimension refined by a few sets in one pass: merge, mark, count.

:meth:`collabzone.disclosure.TokenDim.with_sets` refines a join key's classes by the
token sets of one release (the keys each group of the other side matched: a handful of
sets of up to millions of tokens). The general path sorts the sets' union, searches every
token of every set in it, codes each token's set of sets and factorises (old class, code)
pairs: several passes over the tokens. Here one compiled loop merges the sorted universe
and the sorted sets (a k-way merge: the sets are few) and gives each token of the new
universe its old class and a bit mask of the sets it is in, numbered densely in the order
the masks first appear. Everything after that works on the few distinct masks.

It gives up (returns ``None``) beyond 63 sets or 64 distinct masks, where the general
path, which handles every case, takes over. The classes it produces are the general
path's, numbered the same way (``tests/unit/test_disclosure_merge.py`` compares them).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from collabzone.disclosure._atoms import Hashes, Labels, mix64

MAX_SETS = 63
"""More sets than this go to the general path (a token's sets are a 64-bit mask)."""
MAX_MASKS = 64
"""More distinct combinations of sets than this go to the general path."""


def _merge_py(
    universe: NDArray[np.uint64], labels: NDArray[np.int64], keys: NDArray[np.uint64],
    starts: NDArray[np.int64], out_tokens: NDArray[np.uint64], out_labels: NDArray[np.int64],
    out_mask_ids: NDArray[np.int64], masks: NDArray[np.uint64],
) -> tuple[int, int]:  # fmt: skip
    """Merge ``universe`` (with ``labels``) and the sorted sets ``keys[starts[i]:starts[i+1]]``
    into ``out_*``; the tokens written and the distinct masks found (in ``masks``), or
    ``(-1, -1)`` when a set is not sorted and distinct or the masks exceed their room."""
    m = starts.size - 1
    heads = starts[:-1].copy()
    n = universe.size
    at = 0  # next token of the universe
    written = 0
    n_masks = 0
    last_mask = np.uint64(0)
    last_id = -1
    one = np.uint64(1)
    while True:
        # the smallest token at any head
        found = False
        low = np.uint64(0)
        if at < n:
            low = universe[at]
            found = True
        for i in range(m):
            if heads[i] < starts[i + 1]:
                value = keys[heads[i]]
                if not found or value < low:
                    low = value
                    found = True
        if not found:
            break
        label = 0
        if at < n and universe[at] == low:
            label = labels[at]
            at += 1
        mask = np.uint64(0)
        for i in range(m):
            head = heads[i]
            if head < starts[i + 1] and keys[head] == low:
                mask |= one << np.uint64(i)
                head += 1
                if head < starts[i + 1] and keys[head] <= low:
                    return -1, -1  # not sorted and distinct
                heads[i] = head
        if mask != last_mask or last_id < 0:
            last_id = -1
            for j in range(n_masks):
                if masks[j] == mask:
                    last_id = j
                    break
            if last_id < 0:
                if n_masks == masks.size:
                    return -1, -1
                masks[n_masks] = mask
                last_id = n_masks
                n_masks += 1
            last_mask = mask
        out_tokens[written] = low
        out_labels[written] = label
        out_mask_ids[written] = last_id
        written += 1
    return written, n_masks


@functools.cache
def _kernel() -> Callable[..., tuple[int, int]]:
    """The compiled merge (Numba imported on first use)."""
    from numba import njit

    compiled: Callable[..., tuple[int, int]] = njit(nogil=True, cache=True)(_merge_py)
    return compiled


@dataclass(frozen=True)
class Refined:
    """A token dimension after one release's sets (see :func:`refine_tokens`)."""

    universe: Hashes
    labels: Labels
    classes: int
    parents: Labels
    """Per new class: the class it split from."""
    classes_of_set: list[Labels]
    """Per set given: the classes its tokens are in (classes never straddle a set)."""


def refine_tokens(
    universe: Hashes, labels: Labels, classes: int, sets: Sequence[Hashes]
) -> Refined | None:
    """The classes of ``universe`` (sorted, with ``labels`` in ``0 .. classes - 1``; class
    0 is "in no set") refined by ``sets`` (each sorted and distinct), or ``None`` when the
    general path must do it (too many sets or combinations of sets, or a set that is not
    sorted and distinct).

    A new class is an (old class, set of sets) pair that some token holds, numbered in the
    order of the old class and then of the general path's code of the set of sets (the
    order of a sum of the sets' hashes); class 0 stays "in no set" and keeps number 0.
    """
    if not sets or len(sets) > MAX_SETS:
        return None
    sizes = [int(s.size) for s in sets]
    keys = np.concatenate([np.asarray(s, dtype=np.uint64) for s in sets])
    starts = np.zeros(len(sets) + 1, dtype=np.int64)
    np.cumsum(sizes, out=starts[1:])
    capacity = universe.size + keys.size
    out_tokens = np.empty(capacity, dtype=np.uint64)
    out_labels = np.empty(capacity, dtype=np.int64)
    out_ids = np.empty(capacity, dtype=np.int64)
    masks = np.zeros(MAX_MASKS, dtype=np.uint64)
    written, n_masks = _kernel()(
        np.ascontiguousarray(universe, dtype=np.uint64),
        np.ascontiguousarray(labels, dtype=np.int64),
        keys, starts, out_tokens, out_labels, out_ids, masks,
    )  # fmt: skip
    if written < 0:
        return None
    tokens, old, ids = out_tokens[:written], out_labels[:written], out_ids[:written]
    masks = masks[:n_masks]
    # each mask's code as the general path numbers it (membership_codes_sparse): the set's
    # number when every token is in at most one set, else the rank of the sum of the
    # hashes of its sets' numbers among the distinct sums; -1 for no set
    bits = (masks[:, None] >> np.arange(len(sets), dtype=np.uint64)[None, :]) & np.uint64(1)
    inside = masks != 0
    code_of = np.full(n_masks, -1, dtype=np.int64)
    if bool((bits.sum(axis=1) <= 1).all()):
        code_of[inside] = np.argmax(bits[inside], axis=1)
    else:
        with np.errstate(over="ignore"):
            sums = (bits * mix64(np.arange(1, len(sets) + 1, dtype=np.uint64))[None, :]).sum(
                axis=1, dtype=np.uint64
            )
        distinct_sums, rank = np.unique(sums[inside], return_inverse=True)
        if distinct_sums.size != int(np.count_nonzero(inside)):
            return None  # two masks share a code (a hash collision): the general path merges them
        code_of[inside] = rank.reshape(-1)
    n_codes = int(code_of.max()) + 2 if n_masks else 1
    mask_of_code = np.zeros(n_codes, dtype=np.uint64)  # by code + 1 (0: in no set)
    mask_of_code[code_of + 1] = masks
    # new class of each (old class, code): the dense rank of old * n_codes + code + 1, with
    # class 0 ("in no set", code -1) always present (the general path's refine)
    keys_tok = old * n_codes + (code_of + 1).take(ids)
    present = np.zeros(classes * n_codes, dtype=np.bool_)
    present[keys_tok] = True
    present[0] = True
    rank_of_key = np.cumsum(present, dtype=np.int64) - 1
    new_labels = rank_of_key.take(keys_tok)
    distinct = np.flatnonzero(present)
    parents = (distinct // n_codes).astype(np.int64)
    # per set: the classes whose (old class, code) has the set in its mask
    distinct_masks = mask_of_code.take(distinct % n_codes)
    classes_of_set = [
        np.flatnonzero((distinct_masks >> np.uint64(i)) & np.uint64(1)).astype(np.int64)
        for i in range(len(sets))
    ]
    return Refined(tokens, new_labels, int(distinct.size), parents, classes_of_set)


__all__ = ["MAX_MASKS", "MAX_SETS", "Refined", "refine_tokens"]
