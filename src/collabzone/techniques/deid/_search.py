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
from collabzone.techniques.deid._projections import Projections

MAX_OPTIMAL_NODES = 200_000
"""Lattices larger than this are searched with :func:`greedy`."""


@dataclass(frozen=True)
class SearchResult:
    """The chosen node (None if no node satisfies the model) and the search's effort."""

    best: NodeResult | None
    algorithm: str
    lattice_size: int
    checked: int
    trail: tuple[NodeResult, ...] = ()
    """The nodes a heuristic evaluated, in order (for seeding an exact search)."""


def _better(new: NodeResult, old: NodeResult | None) -> bool:
    return new.passes and (old is None or new.order < old.order)


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
    as_node = [tuple(row) for row in levels.tolist()]
    for idx in order:
        result = lattice.evaluate(as_node[idx])
        if _better(result, best):
            best = result
    return SearchResult(best, "exhaustive", lattice.size, lattice.checked)


_PASS, _FAIL, _PRUNED = 1, -1, 2


def flash(lattice: Lattice) -> SearchResult:
    """Optimal search with predictive tagging and branch and bound (see module doc)."""
    levels, strides = _all_nodes(lattice)
    n = len(levels)
    heights = np.array(lattice.heights)
    node_height = levels.sum(axis=1)
    order = np.lexsort((np.arange(n), node_height))
    state = np.zeros(n, dtype=np.int8)  # _PASS / _FAIL for the monotone part, or _PRUNED
    as_node = [tuple(row) for row in levels.tolist()]

    # at_least[i][v]: nodes whose level i is >= v (at_most likewise), so the successors
    # of a node are the AND of d precomputed masks instead of a comparison of every node.
    at_least = [[levels[:, i] >= v for v in range(h + 1)] for i, h in enumerate(heights)]
    at_most = [[levels[:, i] <= v for v in range(h + 1)] for i, h in enumerate(heights)]

    def successors(node: Node) -> np.ndarray:
        return np.asarray(np.logical_and.reduce([at_least[i][v] for i, v in enumerate(node)]))

    best: NodeResult | None = None

    def tag(result: NodeResult) -> None:
        nonlocal best
        if result.passes_monotone:
            state[successors(result.levels) & (state == 0)] = _PASS
        else:
            below = np.logical_and.reduce([at_most[i][v] for i, v in enumerate(result.levels)])
            state[below & (state == 0)] = _FAIL
        if _better(result, best):
            best = result
            state[(cheap >= result.score) & (state >= 0)] = _PRUNED
            irrelevant[own >= result.score] = True
            for seen in lattice.cached():  # a better best may make earlier bounds decisive
                if seen.bound >= result.score:
                    _prune(seen)
        else:
            _prune(result)

    def _prune(result: NodeResult) -> None:
        # neither this node nor any coarser one can beat the best: no need to classify them
        if best is not None and result.bound >= best.score:
            state[successors(result.levels) & (state >= 0)] = _PRUNED

    def check(idx: int) -> bool:
        result = lattice.evaluate(as_node[idx])
        tag(result)
        return result.passes_monotone

    projections = Projections(lattice)
    state[projections.surely_failing(levels)] = _FAIL
    cheap = projections.cheap_bounds(levels)
    own = projections.own_bounds(levels)
    irrelevant = np.zeros(n, dtype=bool)  # cannot be optimal itself (successors still may)
    if not check(n - 1):  # the top node fails: nothing can pass
        return SearchResult(None, "flash", n, lattice.checked)
    # A quick heuristic solution gives branch and bound a good first best.
    # (climbing pays off when suppression makes the metric non-monotone)
    climb = not (lattice.all_monotone and lattice.limit_rows == 0)
    for result in greedy(lattice, start=lattice.top, climb=climb).trail:
        tag(result)

    # Phase 1: classify every relevant node for the monotone part by binary search on
    # greedy paths up the lattice.
    for start in order:
        if state[start] or irrelevant[start]:
            continue
        path = [int(start)]
        while True:
            cur = path[-1]
            step = [
                (levels[cur, i] / heights[i], i)
                for i in range(len(heights))
                if levels[cur, i] < heights[i]
                and state[cur + strides[i]] == 0
                and not irrelevant[cur + strides[i]]
            ]
            if not step:
                break
            path.append(int(cur + strides[min(step)[1]]))
        lo, hi = 0, len(path) - 1
        while lo <= hi:
            mid = (lo + hi) // 2
            known = state[path[mid]]
            # a pruned node is treated like a passing one: only the part below matters
            ok = known != _FAIL if known else check(path[mid])
            if ok:
                hi = mid - 1
            else:
                lo = mid + 1

    # Phase 2: branch and bound over the candidates, bottom-up.
    passing = (state == _PASS) & ~irrelevant
    if lattice.all_monotone and lattice.limit_rows == 0:
        has_passing_pred = np.zeros(n, dtype=bool)
        for i in range(len(heights)):
            movable = levels[:, i] > 0
            has_passing_pred[movable] |= passing[np.flatnonzero(movable) - strides[i]]
        candidates = passing & ~has_passing_pred
    else:
        candidates = passing
    # floor[i]: the best lower bound known for node i, inherited from every predecessor.
    floor = cheap.copy()
    for result in lattice.cached():
        idx = int(np.dot(result.levels, strides))
        floor[idx] = max(floor[idx], result.bound)
    for layer in range(int(node_height.max()) + 1):
        members = order[node_height[order] == layer]
        for i in range(len(heights)):
            movable = members[levels[members, i] > 0]
            floor[movable] = np.maximum(floor[movable], floor[movable - strides[i]])
        for idx in members[candidates[members]]:
            if best is not None and floor[idx] >= best.score:
                continue  # cannot beat the best (ties keep the node found first)
            result = lattice.evaluate(as_node[idx])
            floor[idx] = max(floor[idx], result.bound)
            if _better(result, best):
                best = result
    return SearchResult(best, "flash", n, lattice.checked)


def greedy(lattice: Lattice, start: Node | None = None, climb: bool = True) -> SearchResult:
    """Heuristic: descend from the top to the best passing predecessor until none passes,
    then (``climb``) move to better passing neighbours while there are some."""
    current = lattice.evaluate(start or lattice.top)
    trail = [current]
    if not current.passes:
        return SearchResult(None, "greedy", lattice.size, lattice.checked, tuple(trail))
    best = current
    while True:
        options = []
        for i, level in enumerate(current.levels):
            if level > 0:
                node: Node = (*current.levels[:i], level - 1, *current.levels[i + 1 :])
                options.append(lattice.evaluate(node))
        trail.extend(options)
        passing = [r for r in options if r.passes]
        if not passing:
            break
        current = min(passing, key=lambda r: (r.order, r.levels))
        if current.order < best.order:
            best = current
    # then climb: move to a better passing neighbour (one level up or down on one
    # attribute, or up on one and down on another) while there is one
    improved = climb
    while improved:
        improved = False
        for node in _neighbours(best.levels, lattice.heights):
            result = lattice.evaluate(node)
            trail.append(result)
            if result.passes and result.order < best.order:
                best, improved = result, True
                break
    return SearchResult(best, "greedy", lattice.size, lattice.checked, tuple(trail))


def _neighbours(levels: Node, heights: Node) -> list[Node]:
    """One attribute one level down, or one attribute up and another down."""
    out = []
    for i, level in enumerate(levels):
        if level > 0:
            out.append((*levels[:i], level - 1, *levels[i + 1 :]))
        for j, other in enumerate(levels):
            if i != j and level < heights[i] and other > 0:
                moved = list(levels)
                moved[i] += 1
                moved[j] -= 1
                out.append(tuple(moved))
    return out


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
