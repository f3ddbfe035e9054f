"""Searching the lattice for the optimal full-domain generalisation.

* :func:`flash`: optimal, in the spirit of ARX's Flash (Kohlmayer et al. 2012). Phase 1
  walks greedy paths up the lattice and binary-searches each for the lowest node that
  satisfies the monotone part of the privacy model, tagging every successor of a passing
  node as passing and every predecessor of a failing one as failing (predictive tagging),
  so most nodes are never evaluated. Phase 2 prices the candidates bottom-up with branch and
  bound: a node whose monotone lower bound (inherited from any evaluated predecessor) is
  no better than the best score so far is skipped with all its successors. When the whole
  model is monotone and nothing may be suppressed, only the minimal passing nodes are
  candidates. It returns the same optimal score as :func:`exhaustive`.
* :func:`exhaustive`: evaluates every node (the reference the tests and benchmark use).
* :func:`greedy`: a heuristic for lattices too big to enumerate: from the top node, step
  down to the best passing predecessor until none passes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from collabzone.techniques.deid._lattice import Lattice, Node, NodeResult

MAX_OPTIMAL_NODES = 200_000
"""Lattices larger than this are searched with :func:`greedy`."""


@dataclass(frozen=True)
class SearchResult:
    """The chosen node (None if no node satisfies the model) and the search's effort."""

    best: NodeResult | None
    algorithm: str
    lattice_size: int
    checked: int


def _better(new: NodeResult, old: NodeResult | None) -> bool:
    return new.passes and (old is None or new.score < old.score)


def _all_nodes(lattice: Lattice) -> tuple[np.ndarray, np.ndarray]:
    grids = np.indices([h + 1 for h in lattice.heights]).reshape(len(lattice.heights), -1).T
    strides = np.array(
        [
            int(np.prod([h + 1 for h in lattice.heights[i + 1 :]]))
            for i in range(len(lattice.heights))
        ],
        dtype=np.int64,
    )
    return np.ascontiguousarray(grids), strides


def exhaustive(lattice: Lattice) -> SearchResult:
    """Evaluate every node; the optimum is the lowest score, ties to the lowest node."""
    levels, _ = _all_nodes(lattice)
    order = np.lexsort((np.arange(len(levels)), levels.sum(axis=1)))
    best: NodeResult | None = None
    for idx in order:
        result = lattice.evaluate(tuple(int(v) for v in levels[idx]))
        if _better(result, best):
            best = result
    return SearchResult(best, "exhaustive", lattice.size, lattice.checked)


def flash(lattice: Lattice) -> SearchResult:
    """Optimal search with predictive tagging and branch and bound (see module doc)."""
    levels, strides = _all_nodes(lattice)
    n = len(levels)
    heights = np.array(lattice.heights)
    node_height = levels.sum(axis=1)
    order = np.lexsort((np.arange(n), node_height))
    state = np.zeros(n, dtype=np.int8)  # 1 passes the monotone part, -1 fails it
    as_node = [tuple(int(v) for v in row) for row in levels]

    def successors(idx: int) -> np.ndarray:
        return np.asarray(np.all(levels >= levels[idx], axis=1))

    def check(idx: int) -> bool:
        result = lattice.evaluate(as_node[idx])
        if result.passes_monotone:
            state[successors(idx) & (state == 0)] = 1
        else:
            state[np.all(levels <= levels[idx], axis=1) & (state == 0)] = -1
        return result.passes_monotone

    if not check(n - 1):  # the top node fails: nothing can pass
        return SearchResult(None, "flash", n, lattice.checked)

    # Phase 1: classify every node for the monotone part by binary search on greedy paths.
    for start in order:
        if state[start]:
            continue
        path = [int(start)]
        while True:
            cur = path[-1]
            step = [
                (levels[cur, i] / heights[i], i)
                for i in range(len(heights))
                if levels[cur, i] < heights[i] and state[cur + strides[i]] == 0
            ]
            if not step:
                break
            path.append(int(cur + strides[min(step)[1]]))
        lo, hi = 0, len(path) - 1
        while lo <= hi:
            mid = (lo + hi) // 2
            tag = state[path[mid]]
            ok = bool(tag > 0) if tag else check(path[mid])
            if ok:
                hi = mid - 1
            else:
                lo = mid + 1

    # Phase 2: branch and bound over the candidates, bottom-up.
    passing = state > 0
    if lattice.all_monotone and lattice.limit_rows == 0:
        has_passing_pred = np.zeros(n, dtype=bool)
        for i in range(len(heights)):
            movable = levels[:, i] > 0
            has_passing_pred[movable] |= passing[np.flatnonzero(movable) - strides[i]]
        candidates = passing & ~has_passing_pred
    else:
        candidates = passing
    # floor[i]: the best lower bound known for node i, inherited from every predecessor.
    floor = np.full(n, -np.inf)
    for result in lattice.cached():
        floor[int(np.dot(result.levels, strides))] = result.bound
    # Seed the bound with the best passing node phase 1 already priced.
    best: NodeResult | None = None
    for result in lattice.cached():
        if _better(result, best) or (
            best is not None
            and result.passes
            and result.score == best.score
            and (result.height, result.levels) < (best.height, best.levels)
        ):
            best = result
    for layer in range(int(node_height.max()) + 1):
        members = order[node_height[order] == layer]
        for i in range(len(heights)):
            movable = members[levels[members, i] > 0]
            floor[movable] = np.maximum(floor[movable], floor[movable - strides[i]])
        for idx in members[candidates[members]]:
            if best is not None and floor[idx] >= best.score:
                continue  # cannot beat the best (ties keep the lower node found first)
            result = lattice.evaluate(as_node[idx])
            floor[idx] = max(floor[idx], result.bound)
            if _better(result, best):
                best = result
    return SearchResult(best, "flash", n, lattice.checked)


def greedy(lattice: Lattice) -> SearchResult:
    """Heuristic: descend from the top to the best passing predecessor until none passes."""
    current = lattice.evaluate(lattice.top)
    if not current.passes:
        return SearchResult(None, "greedy", lattice.size, lattice.checked)
    best = current
    while True:
        options = []
        for i, level in enumerate(current.levels):
            if level > 0:
                node: Node = (*current.levels[:i], level - 1, *current.levels[i + 1 :])
                options.append(lattice.evaluate(node))
        passing = [r for r in options if r.passes]
        if not passing:
            break
        current = min(passing, key=lambda r: (r.score, r.levels))
        if current.score < best.score:
            best = current
    return SearchResult(best, "greedy", lattice.size, lattice.checked)


def search(lattice: Lattice, algorithm: str = "auto") -> SearchResult:
    """Run ``algorithm`` (``auto``: flash up to MAX_OPTIMAL_NODES nodes, else greedy)."""
    if algorithm == "auto":
        algorithm = "flash" if lattice.size <= MAX_OPTIMAL_NODES else "greedy"
    if algorithm == "flash":
        return flash(lattice)
    if algorithm == "exhaustive":
        return exhaustive(lattice)
    if algorithm == "greedy":
        return greedy(lattice)
    raise ValueError(algorithm)
