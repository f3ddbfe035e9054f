"""Quality metrics of a transformation (information loss: lower is better).

* ``discernibility``: each kept class costs |E|^2, each suppressed row |D| (so a suppressed
  class costs |E| * |D|) (Bayardo and Agrawal; ARX's DM*).
* ``non_uniform_entropy``: for every row and quasi-identifier, log2(rows sharing the
  generalised value / rows sharing the original value); a suppressed row counts as fully
  generalised (Gionis and Tassa; ARX).
* ``loss``: for every row and quasi-identifier, (leaves under the generalised value - 1) /
  (leaves of the hierarchy - 1), averaged; suppressed rows cost 1 (Iyengar; ARX's Loss).
* ``precision``: generalisation level / height, averaged; suppressed rows cost 1 (Sweeney).
* ``average_class_size``: kept rows / kept classes (ARX's AECS).

Every metric here has a lower bound that is monotone in the lattice: its value as if no
class were suppressed. The search prunes with that bound (branch and bound).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from collabzone.techniques.deid._encode import Encoded

MetricName = Literal["discernibility", "non_uniform_entropy", "loss", "precision"]
METRICS: tuple[MetricName, ...] = ("discernibility", "non_uniform_entropy", "loss", "precision")


@dataclass(frozen=True)
class AttributeCosts:
    """Per-row costs of an attribute-wise metric, precomputed for every level.

    ``per_level[i][level]`` is a vector over the encoded distinct rows; ``totals[i][level]``
    its weighted sum; ``maximum`` the per-row cost when the row is suppressed.
    """

    per_level: tuple[np.ndarray, ...]
    totals: tuple[np.ndarray, ...]
    maximum: np.ndarray


def attribute_costs(encoded: Encoded, metric: MetricName) -> AttributeCosts:
    """Precompute the per-row cost of ``metric`` at every level of every quasi-identifier."""
    w = encoded.weights.astype(float)
    n = float(encoded.n_rows)
    per_level = []
    maximum = np.zeros(encoded.groups.shape[0])
    for i, qi in enumerate(encoded.qis):
        leaves = encoded.groups[:, i]
        costs = np.zeros((qi.height + 1, leaves.shape[0]))
        if metric == "non_uniform_entropy":
            leaf_freq = np.bincount(leaves, weights=w, minlength=qi.maps.shape[1])
            for level in range(qi.height + 1):
                codes = qi.maps[level]
                gen_freq = np.bincount(codes[leaves], weights=w, minlength=int(codes.max()) + 1)
                costs[level] = np.log2(gen_freq[codes[leaves]] / leaf_freq[leaves])
            maximum += np.log2(n / leaf_freq[leaves])
        elif metric == "loss":
            n_leaves = qi.maps.shape[1]
            for level in range(qi.height + 1):
                codes = qi.maps[level]
                under = np.bincount(codes)  # hierarchy leaves under each label
                costs[level] = (under[codes[leaves]] - 1) / max(n_leaves - 1, 1)
            maximum += 1.0
        elif metric == "precision":
            for level in range(qi.height + 1):
                costs[level] = level / qi.height if qi.height else 0.0
            maximum += 1.0
        else:
            raise ValueError(metric)
        per_level.append(costs)
    totals = tuple(np.asarray(c @ w) for c in per_level)
    return AttributeCosts(tuple(per_level), totals, maximum)


def discernibility(sizes: np.ndarray, kept: np.ndarray, n_rows: int) -> int:
    """DM*: sum of |E|^2 over kept classes plus |E| * |D| over suppressed ones."""
    kept_sizes = sizes[kept]
    return int((kept_sizes * kept_sizes).sum() + sizes[~kept].sum() * n_rows)


def discernibility_bound(sizes: np.ndarray, min_class_size: int = 1) -> int:
    """A lower bound of DM* for this node and every more general node.

    In any more general node, the rows of a class of size s end up in a class that is
    either kept (at least ``min_class_size`` rows and at least s rows: cost per row >=
    max(s, min_class_size)) or suppressed (cost per row |D|, which is larger), so
    sum(s * max(s, min_class_size)) bounds them all.
    """
    return int((sizes * np.maximum(sizes, min_class_size)).sum())


def normalise(metric: MetricName, raw: float, n_rows: int, n_qis: int) -> float:
    """The reported value: averages for loss and precision, raw sums otherwise."""
    if metric in ("loss", "precision"):
        return raw / max(n_rows * n_qis, 1)
    return raw
