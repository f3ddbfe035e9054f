"""PrivBayes: differentially private synthetic data from a noisy Bayesian network (pure epsilon).

Zhang, Cormode, Procopiuc, Srivastava, Xiao, "PrivBayes: Private Data Release via Bayesian
Networks", ACM TODS 42(4), 2017, as DataSynthesizer 0.1.13 (Ping, Stoyanovich, Howe,
SSDBM 2017) runs it in its correlated attribute mode: half the budget learns a network of
degree at most ``k`` greedily (a random root; then d - 1 exponential-mechanism picks of a
(child, parents) pair scored by mutual information, among the pairs whose table is small
enough for its noise, PrivBayes's theta-usefulness), the other half measures the d tables
the conditionals come from (the root's 1-way, then parents + child for each attribute)
with Laplace noise of scale ``d / (epsilon / 2)`` on counts, and DataSynthesizer's own
sampler (``DataGenerator.generate_encoded_dataset``) draws the rows.

Where this differs from calling DataSynthesizer's describer, and why (each is a privacy
leak or an unaccounted spend there, see docs/synthetic.md):

* the domains are the **declared public** ones (DataSynthesizer's tables span the largest
  code seen, and its sensitivity treats a column as binary when the data shows at most two
  values);
* the score is ``n * I(child; parents)`` (counts, in nats), whose sensitivity under adding
  or removing one row is at most ``2 (ln(N + 1) + 1)`` for any table of at most N rows
  (each of the three ``n H`` terms moves by between 0 and ``ln(N + 1) + 1``); N is public
  (the catalogue's row count), so the bound needs no data, where DataSynthesizer's
  (PrivBayes Lemma 1) uses the exact n and replace-one neighbours;
* every noisy step is OpenDP's (noisy max in pure DP, discrete Laplace), its privacy map
  summed into the :class:`~.mst.Spend` and bounded by epsilon; DataSynthesizer's
  correlated mode also spends epsilon on noisy 1-way histograms it does not count;
* mutual information is computed on codes with NumPy, not DataSynthesizer's row-wise string
  join (hours on Adult), and nothing runs in a process pool.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from collabzone._opendp import dp
from collabzone.errors import InternalError, InvalidInputError
from collabzone.techniques.synthetic.mst import Spend

MAX_TABLE_CELLS = 1 << 22
"""Largest noisy table measured (4M cells of 8 bytes): checked before any measurement."""
THETA = 4.0
"""PrivBayes's theta-usefulness target (DataSynthesizer's default): see candidates_of."""


def score_sensitivity(max_rows: int) -> float:
    """Sensitivity of ``n * I(X; P)`` (nats) to adding or removing one row, for tables
    of at most ``max_rows`` rows (see the module docstring)."""
    return 2 * (math.log(max_rows + 1) + 1)


def _counts(
    codes: Mapping[str, np.ndarray], shape: Mapping[str, int], clique: tuple[str, ...]
) -> np.ndarray:
    sizes = [shape[a] for a in clique]
    flat = np.ravel_multi_index(tuple(codes[a] for a in clique), sizes)
    return np.bincount(flat, minlength=int(np.prod(sizes))).astype(np.int64)


def mutual_information_counts(
    codes: Mapping[str, np.ndarray], shape: Mapping[str, int], child: str, parents: tuple[str, ...]
) -> float:
    """``n * I(child; parents)`` in nats, from the codes' contingency table."""
    table = _counts(codes, shape, (*parents, child)).reshape(-1, shape[child]).astype(float)
    n = table.sum()
    if n == 0:
        return 0.0
    by_parents = table.sum(axis=1, keepdims=True)
    by_child = table.sum(axis=0, keepdims=True)
    nonzero = table > 0
    ratio = np.where(nonzero, table * n / np.maximum(by_parents * by_child, 1e-300), 1.0)
    return float((table[nonzero] * np.log(ratio[nonzero])).sum())


def table_cells(shape: Mapping[str, int], k: int) -> int:
    """Cells of the largest table of k + 1 columns (the k + 1 largest domains)."""
    sizes = sorted(shape.values(), reverse=True)[: k + 1]
    return int(np.prod(sizes))


def candidates_of(
    chosen: list[str], rest: list[str], shape: Mapping[str, int], k: int, limit: float
) -> list[tuple[str, tuple[str, ...]]]:
    """The (child, parents) pairs a step may pick: 1 to k parents among the attributes
    already in the network, whose table has at most ``limit`` cells (PrivBayes's
    theta-usefulness); if none fits, every single parent (the network must connect)."""
    pairs = [
        (c, p)
        for c in rest
        for width in range(1, min(len(chosen), k) + 1)
        for p in itertools.combinations(chosen, width)
    ]
    fitting = [(c, p) for c, p in pairs if shape[c] * math.prod(shape[a] for a in p) <= limit]
    return fitting or [(c, p) for c, p in pairs if len(p) == 1]


@dataclass(frozen=True)
class PrivBayesResult:
    codes: dict[str, np.ndarray]
    spend: Spend
    """Pure epsilon per OpenDP measurement (``spend.rho`` is their sum: epsilon here)."""
    network: tuple[tuple[str, tuple[str, ...]], ...]
    """(child, parents) in sampling order after the root, the first's parents being it."""
    measurements: tuple[tuple[tuple[str, ...], np.ndarray], ...] = ()
    """Every noisy table measured, then each column's 1-way marginal summed from them."""


def privbayes(
    codes: Mapping[str, np.ndarray],
    shape: Mapping[str, int],
    epsilon: float,
    *,
    max_rows: int,
    degree: int = 2,
    rows: int | None = None,
    seed: int | None = None,
    rng: np.random.Generator | None = None,
) -> PrivBayesResult:
    """Synthetic codes for ``codes`` under pure ``epsilon``-DP (add or remove one row);
    ``max_rows`` is a public upper bound on the number of rows."""
    from DataSynthesizer.DataGenerator import DataGenerator
    from DataSynthesizer.lib.utils import normalize_given_distribution

    names = list(shape)
    d = len(names)
    if d < 2:
        raise InternalError("PrivBayes needs at least two columns")
    n = len(codes[names[0]])
    if n > max_rows:
        raise InternalError(f"{n} rows exceed the public bound {max_rows}")
    k = max(1, min(degree, d - 1))
    if table_cells(shape, 1) > MAX_TABLE_CELLS:
        raise InvalidInputError(
            f"PrivBayes would measure tables of up to {table_cells(shape, 1)} cells "
            f"(limit {MAX_TABLE_CELLS}): use fewer bins"
        )
    # theta-usefulness: a table's expected count per cell, at most max_rows / cells, should
    # be THETA times its noise scale d / (epsilon / 2); public (bound, budget, domains)
    limit = min(MAX_TABLE_CELLS, max_rows * epsilon / 2 / d / THETA)
    rng = rng or np.random.default_rng(seed)
    spend = Spend(epsilon)
    eps_step = epsilon / 2 / (d - 1)
    sensitivity = score_sensitivity(max_rows)
    # OpenDP's noisy max (Gumbel) in pure DP, on scores that move by `sensitivity`
    select = dp.m.make_noisy_max(
        dp.vector_domain(dp.atom_domain(T=float, nan=False)),
        dp.linf_distance(T=float, monotonic=False),
        dp.max_divergence(),
        scale=2 * sensitivity / eps_step,
    )
    root = names[int(rng.integers(d))]  # public randomness
    chosen, rest = [root], [a for a in names if a != root]
    network: list[tuple[str, tuple[str, ...]]] = []
    while rest:
        candidates = candidates_of(chosen, rest, shape, k, limit)
        scores = [mutual_information_counts(codes, shape, c, p) for c, p in candidates]
        spend.charge(f"select {len(network)}", float(select.map(sensitivity)))
        child, parents = candidates[int(select(scores))]
        network.append((child, parents))
        chosen.append(child)
        rest.remove(child)
    cliques = [(root,), *((*parents, child) for child, parents in network)]
    measure = dp.m.make_laplace(
        dp.vector_domain(dp.atom_domain(T=int)),
        dp.l1_distance(T=int),
        scale=len(cliques) / (epsilon / 2),
    )
    noisy: dict[tuple[str, ...], np.ndarray] = {}
    totals = []
    for clique in cliques:
        spend.charge(f"table {clique}", float(measure.map(1)))
        counts = np.asarray(measure(_counts(codes, shape, clique).tolist()), dtype=float)
        totals.append(counts.sum())  # unbiased: the noise is symmetric before clipping
        noisy[clique] = np.clip(counts, 0, None).reshape([shape[a] for a in clique])
    # everything below is post-processing of the noisy tables
    description = _description(network, root, cliques, noisy, shape, normalize_given_distribution)
    count = rows if rows is not None else max(1, round(float(np.median(totals))))
    if seed is not None:
        np.random.seed(seed)  # DataSynthesizer samples from numpy's global generator
    frame = DataGenerator.generate_encoded_dataset(count, description)
    out = {a: np.asarray(frame[a], dtype=np.int64) for a in names}
    measured: list[tuple[tuple[str, ...], np.ndarray]] = [(c, noisy[c].ravel()) for c in cliques]
    measured += [((a,), _one_way(a, cliques, noisy).ravel()) for a in names if a != root]
    return PrivBayesResult(out, spend, tuple(network), tuple(measured))


def _one_way(
    name: str, cliques: list[tuple[str, ...]], noisy: Mapping[Any, np.ndarray]
) -> np.ndarray:
    clique = next(c for c in cliques if name in c)
    axes = tuple(i for i, a in enumerate(clique) if a != name)
    return np.asarray(noisy[clique].sum(axis=axes), dtype=float)


def _description(
    network: list[tuple[str, tuple[str, ...]]],
    root: str,
    cliques: list[tuple[str, ...]],
    noisy: Mapping[tuple[str, ...], np.ndarray],
    shape: Mapping[str, int],
    normalise: Any,
) -> dict[str, Any]:
    """The description DataSynthesizer's sampler reads: the network, each child's
    conditional distribution per parents' values (keys as DataSynthesizer writes them)
    and each attribute's 1-way distribution (its fallback)."""
    conditionals: dict[str, Any] = {root: normalise(_one_way(root, cliques, noisy)).tolist()}
    for child, parents in network:
        clique = next(c for c in cliques if child in c and set(parents) <= set(c))
        table = noisy[clique]
        keep = tuple(clique.index(a) for a in (*parents, child))
        drop = tuple(i for i in range(len(clique)) if i not in keep)
        joint = np.moveaxis(table.sum(axis=drop, keepdims=True), keep, range(len(keep)))
        joint = joint.reshape([shape[a] for a in (*parents, child)])
        by_parent: dict[str, list[float]] = {}
        for values in itertools.product(*(range(shape[p]) for p in parents)):
            key = str([values[0]]) if len(parents) == 1 else str(list(values))
            by_parent[key] = normalise(joint[values]).tolist()
        conditionals[child] = by_parent
    return {
        "bayesian_network": [[c, list(p)] for c, p in network],
        "conditional_probabilities": conditionals,
        "attribute_description": {
            a: {"distribution_probabilities": normalise(_one_way(a, cliques, noisy)).tolist()}
            for a in shape
        },
    }
