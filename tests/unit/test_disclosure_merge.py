"""The one-pass refinement of a token dimension (``disclosure._merge``) against the general
path: the same universe, the same classes numbered the same way, the same parents, and
each set's classes equal to ``classes_in`` of the result, over random histories of sets
drawn from a small pool of tokens (so sets overlap, repeat and leave tokens out)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from collabzone.disclosure import TokenDim, _merge, mix64

POOL = mix64(np.arange(40, dtype=np.uint64))

token_set = st.lists(st.integers(0, 39), max_size=25)
history = st.lists(st.lists(token_set, min_size=1, max_size=6), min_size=1, max_size=4)


def _as_sets(indices: list[list[int]]) -> list[np.ndarray]:
    return [np.sort(np.unique(POOL[np.asarray(s, dtype=np.int64)])) for s in indices]


def _same(a: tuple[TokenDim, np.ndarray, list[np.ndarray]],
          b: tuple[TokenDim, np.ndarray, list[np.ndarray]]) -> None:  # fmt: skip
    (dim_a, parents_a, sets_a), (dim_b, parents_b, sets_b) = a, b
    assert np.array_equal(dim_a.universe, dim_b.universe)
    assert np.array_equal(dim_a.labels, dim_b.labels)
    assert dim_a.classes == dim_b.classes
    assert np.array_equal(parents_a, parents_b)
    assert len(sets_a) == len(sets_b)
    for x, y in zip(sets_a, sets_b, strict=True):
        assert np.array_equal(x, y)


@settings(max_examples=150, deadline=None)
@given(history)
def test_one_pass_equals_general_path(releases: list[list[list[int]]]) -> None:
    fast, general = TokenDim("k"), TokenDim("k")
    for indices in releases:
        sets = _as_sets(indices)
        one = fast.refined_by(sets)
        other = general.refined_by(sets, one_pass=False)
        _same(one, other)
        for members, classes in zip(sets, one[2], strict=True):
            assert np.array_equal(classes, one[0].classes_in(members))
        # class 0 stays "in no set": no token of any set is in it
        assert all(0 not in c.tolist() for c in one[2] if c.size)
        fast, general = one[0], other[0]


def test_merge_gives_up_where_the_general_path_must_do_it() -> None:
    many = [POOL[i : i + 1] for i in range(_merge.MAX_SETS + 1)]
    assert _merge.refine_tokens(POOL[:0], np.zeros(0, np.int64), 1, many) is None
    _same(TokenDim("k").refined_by(many), TokenDim("k").refined_by(many, one_pass=False))
    unsorted = [np.sort(POOL[:2])[::-1].copy()]
    assert _merge.refine_tokens(POOL[:0], np.zeros(0, np.int64), 1, unsorted) is None
    # more distinct combinations of sets than the masks have room for
    rng = np.random.default_rng(3)
    big = mix64(np.arange(4000, dtype=np.uint64))
    sets = [np.sort(big[rng.random(big.size) < 0.5]) for _ in range(12)]
    assert _merge.refine_tokens(big[:0], np.zeros(0, np.int64), 1, sets) is None
    _same(TokenDim("k").refined_by(sets), TokenDim("k").refined_by(sets, one_pass=False))
