"""Where hashes lie in a sorted universe of hashes: the lookup most of a large check costs.

A release hands over its cells' people as sorted runs (one run per cell). Searching each
key from scratch costs a binary search of cache misses per person; searching from where
the previous key landed (galloping) walks the universe almost sequentially instead: about
half the CPU time on a million people (the walk is then bound by memory bandwidth). Compiled
with Numba; the GIL is released so that two halves of a large release run on two cores.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numpy.typing import NDArray

_THREADED_FROM = 200_000
"""Releases with more people than this are searched in two halves at once."""


def _gallop_py(
    universe: NDArray[np.uint64], keys: NDArray[np.uint64], out: NDArray[np.int64]
) -> int:
    n = universe.size
    lo = 0
    found = 0
    for i in range(keys.size):
        key = keys[i]
        if i == 0 or key < keys[i - 1]:
            lo = 0  # a new run starts: search the whole universe
        # every position below lo holds a value below key
        probe = lo
        step = 1
        while probe < n and universe[probe] < key:
            lo = probe + 1
            probe += step
            step *= 2
        hi = min(probe, n)
        while lo < hi:
            mid = (lo + hi) >> 1
            if universe[mid] < key:
                lo = mid + 1
            else:
                hi = mid
        out[i] = lo
        if lo < n and universe[lo] == key:
            found += 1
    return found


@functools.cache
def _gallop() -> Callable[[NDArray[np.uint64], NDArray[np.uint64], NDArray[np.int64]], int]:
    """The compiled search (Numba imported on first use: it costs a fifth of a second)."""
    from numba import njit

    compiled: Callable[[NDArray[np.uint64], NDArray[np.uint64], NDArray[np.int64]], int]
    compiled = njit(nogil=True, cache=True)(_gallop_py)
    return compiled


def positions(universe: NDArray[np.uint64], keys: NDArray[np.uint64]) -> NDArray[np.int64]:
    """The insertion point of each key in the sorted ``universe`` (as ``np.searchsorted``)."""
    return positions_found(universe, keys)[0]


def positions_found(
    universe: NDArray[np.uint64], keys: NDArray[np.uint64]
) -> tuple[NDArray[np.int64], int]:
    """:func:`positions`, and how many keys are in ``universe`` (counted on the way: no
    second pass over the universe to tell whether a release brings new people)."""
    universe = np.ascontiguousarray(universe, dtype=np.uint64)
    keys = np.ascontiguousarray(keys, dtype=np.uint64)
    out = np.empty(keys.size, dtype=np.int64)
    if keys.size < _THREADED_FROM:
        return out, int(_gallop()(universe, keys, out))
    half = keys.size // 2
    with ThreadPoolExecutor(max_workers=2) as pool:
        jobs = [
            pool.submit(_gallop(), universe, keys[:half], out[:half]),
            pool.submit(_gallop(), universe, keys[half:], out[half:]),
        ]
        found = sum(int(job.result()) for job in jobs)
    return out, found
