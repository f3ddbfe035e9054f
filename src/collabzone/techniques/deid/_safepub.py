"""SafePub: differentially private anonymisation (Bild, Kuhn and Prasser, PETS 2018), as
ARX implements it (``EDDifferentialPrivacy``, ``ParameterCalculation``,
``DataDependentEDDPAlgorithm``), with OpenDP's primitives for the randomness.

1. The budget epsilon is split: ``search_epsilon`` (ARX's default 0.1) for choosing the
   transformation, the rest (epsilon_anon) for the anonymisation.
2. **Random sampling**: every record is kept with probability beta = 1 - exp(-epsilon_anon)
   (OpenDP's randomized response on a constant bit is the Bernoulli draw).
3. **k from (epsilon_anon, delta)**: the smallest k whose delta(k) is below delta, where
   delta(k) = max over n >= ceil(k / gamma - 1) of P[Binomial(n, beta) > floor(gamma n)],
   gamma = (e^epsilon_anon - 1 + beta) / e^epsilon_anon; the search over n stops once
   exp(-n (gamma ln(gamma / beta) - (gamma - beta))) falls to the running maximum. As in
   ARX the returned k is one above the first k that meets delta.
4. **Search**: from the top of the lattice, ``steps`` times: the unvisited predecessors of
   the current node join the candidates, and the next node is drawn from all candidates
   with the exponential mechanism (OpenDP's Gumbel noisy max, probability proportional to
   exp(epsilon_step * score / 2), epsilon_step = search_epsilon / steps) on ARX's
   sensitivity-1 score of the metric. The output is drawn among the pivots by the same
   mechanism with one more share (ARX keeps the best-scored pivot, ``trackOptimum``, a
   comparison of the data's scores that no mechanism covers).
5. The sample is generalised with that node; classes under k rows are suppressed.

ARX's score functions (``getScore``) use the whole input's size N and count every record
not sampled as suppressed. Discernibility: -(sum kept |E|^2 + N * suppressed) /
(N * (k^2 / (k - 1) + 1)) (5 for k = 1); precision: -(sum over QIs of kept * level / height
+ suppressed) / (d (k - 1)); non-uniform entropy: -(sum over QIs of sum of squared counts of
the kept, not fully generalised values + N * the others) / (N d) / (k^2 / (k - 1) + 1).
Hierarchies should not depend on the data (files, trees, intervals of fixed widths), as
SafePub assumes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from collabzone._opendp import dp
from collabzone.errors import InvalidInputError
from collabzone.techniques.deid._lattice import Lattice, Node


@dataclass(frozen=True)
class SafePubParameters:
    """The derived parameters of one SafePub run."""

    epsilon: float
    delta: float
    search_epsilon: float
    steps: int
    beta: float
    k: int

    @property
    def anonymisation_epsilon(self) -> float:
        return self.epsilon - self.search_epsilon


def _delta_of_k(k: int, beta: float, gamma: float) -> float:
    """delta(k): the running maximum of P[Bin(n, beta) > floor(gamma n)] from
    n = ceil(k / gamma - 1) until it reaches exp(-n * rate) (vectorised by blocks of n)."""
    from scipy import stats  # type: ignore[import-untyped]

    start = max(1, math.ceil(k / gamma - 1 - 1e-12))
    rate = gamma * math.log(gamma / beta) - (gamma - beta)
    delta = -math.inf
    block = 256
    while True:
        n = np.arange(start, start + block)
        a = stats.binom.sf(np.floor(gamma * n + 1e-12), n, beta)
        running = np.maximum.accumulate(np.maximum(a, delta))
        done = np.flatnonzero(running >= np.exp(-n * rate))
        if done.size:
            return float(running[done[0]])
        delta = float(running[-1])
        start += block
        block = min(block * 2, 1 << 16)


def safepub_parameters(
    epsilon: float, delta: float, search_epsilon: float = 0.1, steps: int = 300
) -> SafePubParameters:
    """beta and k for (epsilon, delta)-DP (the formulas in the module doc)."""
    if not epsilon > search_epsilon >= 0:
        raise InvalidInputError(
            f"SafePub needs epsilon > search_epsilon >= 0, got {epsilon!r} and {search_epsilon!r}"
        )
    if not 0 < delta < 1:
        raise InvalidInputError(f"SafePub needs 0 < delta < 1, got {delta!r}")
    if steps < 1:
        raise InvalidInputError(f"SafePub needs at least one search step, got {steps!r}")
    eps = epsilon - search_epsilon
    beta = 1 - math.exp(-eps)
    gamma = (math.exp(eps) - 1 + beta) / math.exp(eps)
    k, delta_k = 1, math.inf
    while not delta_k < delta:
        delta_k = _delta_of_k(k, beta, gamma)
        k += 1
        if k > 100_000:
            raise InvalidInputError("SafePub: delta is too small for this epsilon")
    return SafePubParameters(epsilon, delta, search_epsilon, steps, beta, k)


def sample(n: int, beta: float) -> np.ndarray:
    """Keep each of ``n`` records with probability ``beta`` (OpenDP's randomized response on
    a constant bit: True kept with probability p >= 1/2, False flipped with 1 - p)."""
    flip = beta < 0.5
    rr = dp.m.make_randomized_response_bool(prob=(1 - beta) if flip else beta)
    return np.array([bool(rr(not flip)) for _ in range(n)], dtype=bool)


def dp_score(lattice: Lattice, levels: Node, n_total: int, k: int) -> float:
    """ARX's sensitivity-1 score of a node (higher is better) for the lattice's metric."""
    part = lattice.partition(levels)
    sizes, kept = part.sizes.astype(float), part.kept
    suppressed = float(sizes[~kept].sum()) + (n_total - lattice.encoded.n_rows)
    big_n = float(n_total)
    scale = 5.0 if k == 1 else k * k / (k - 1) + 1
    metric = lattice.metric
    d = len(lattice.heights)
    if metric in ("discernibility", "discernibility_monotonic"):
        return -(float((sizes[kept] ** 2).sum()) + big_n * suppressed) / (big_n * scale)
    if metric == "precision":
        unsuppressed = float(sizes[kept].sum())
        total = sum(
            unsuppressed * (lv / h if h else 0.0) + suppressed
            for lv, h in zip(levels, lattice.heights, strict=True)
        )
        return -total / d / (k - 1 if k > 1 else 1)
    if metric in ("non_uniform_entropy", "non_uniform_entropy_monotonic"):
        w = lattice.encoded.weights.astype(float)
        group_kept = kept[part.group_class]
        total = 0.0
        for i, lv in enumerate(levels):
            codes = lattice.gen[i][lv]
            if lv == lattice.heights[i]:  # the root: every value generalised away
                total += big_n * float(w.sum())
            else:
                counts = np.bincount(codes[group_kept], weights=w[group_kept])
                total += float((counts**2).sum()) + big_n * float(w[~group_kept].sum())
            total += big_n * (n_total - lattice.encoded.n_rows)
        return -total / (big_n * d) / scale
    raise InvalidInputError(
        f"SafePub scores discernibility, precision or non-uniform entropy, not {metric!r}"
    )


@dataclass(frozen=True)
class SafePubSearch:
    """The node chosen, the pivots drawn and the search epsilon OpenDP accounts for."""

    best: Node
    pivots: tuple[Node, ...]
    epsilon_spent: float


def _noisy_max(scores: list[float], step_epsilon: float) -> tuple[int, float]:
    """OpenDP's exponential mechanism (Gumbel noisy max) over sensitivity-1 scores: the
    index drawn and the epsilon OpenDP accounts for it."""
    mechanism = dp.m.make_noisy_max(
        dp.vector_domain(dp.atom_domain(T=float, nan=False)),
        dp.linf_distance(T=float),
        dp.max_divergence(),
        scale=2.0 / step_epsilon,
    )
    return int(mechanism(scores)), float(mechanism.map(1.0))


def safepub_search(lattice: Lattice, params: SafePubParameters, n_total: int) -> SafePubSearch:
    """ARX's data-dependent search: ``steps`` exponential-mechanism draws among the
    predecessors seen so far, starting from the top node, then one more draw among the
    pivots for the output.

    ARX returns the best-scored pivot (``trackOptimum``); that comparison reads the data's
    scores outside any mechanism, so here the output is chosen by the exponential mechanism
    too, with one share of the search budget (``steps + 1`` shares in all)."""
    step_epsilon = params.search_epsilon / (params.steps + 1)
    pivot: Node = lattice.top
    scores: dict[Node, float] = {pivot: dp_score(lattice, pivot, n_total, params.k)}
    seen = dict(scores)
    pivots = [pivot]
    spent = 0.0
    for _ in range(params.steps):
        for i, level in enumerate(pivot):
            if level > 0:
                pred: Node = (*pivot[:i], level - 1, *pivot[i + 1 :])
                if pred not in seen:
                    scores[pred] = seen[pred] = dp_score(lattice, pred, n_total, params.k)
        scores.pop(pivot, None)
        if not scores or step_epsilon == 0:
            break
        nodes = list(scores)
        index, cost = _noisy_max([scores[n] for n in nodes], step_epsilon)
        spent += cost
        pivot = nodes[index]
        pivots.append(pivot)
    best = pivots[0]
    if len(pivots) > 1 and step_epsilon > 0:
        distinct = list(dict.fromkeys(pivots))
        index, cost = _noisy_max([seen[n] for n in distinct], step_epsilon)
        spent += cost
        best = distinct[index]
    return SafePubSearch(best, tuple(pivots), spent)
