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
    """An attribute-wise metric, precomputed for every level of every quasi-identifier.

    ``totals[i][level]``: the metric summed over all rows if attribute ``i`` is at
    ``level`` and nothing is suppressed. ``gaps[i][level][code]``: what suppressing one row
    whose generalised value is ``code`` adds (the fully generalised cost minus its own).
    For non-uniform entropy the row's own term log2(count of its original value) cancels
    out of the gap, so both depend only on generalised codes and classes can be merged.
    """

    totals: tuple[np.ndarray, ...]
    gaps: tuple[tuple[np.ndarray, ...], ...]


def attribute_costs(encoded: Encoded, metric: MetricName) -> AttributeCosts:
    """Precompute ``metric`` at every level of every quasi-identifier."""
    w = encoded.weights.astype(float)
    n = float(encoded.n_rows)
    totals, gaps = [], []
    for i, qi in enumerate(encoded.qis):
        leaves = encoded.groups[:, i]
        leaf_freq = np.bincount(leaves, weights=w, minlength=qi.maps.shape[1])
        total = np.zeros(qi.height + 1)
        gap_levels = []
        for level in range(qi.height + 1):
            codes = qi.maps[level]
            if metric == "non_uniform_entropy":
                gen_freq = np.bincount(codes, weights=leaf_freq, minlength=int(codes.max()) + 1)
                per_row = np.log2(gen_freq[codes[leaves]] / leaf_freq[leaves])
                with np.errstate(divide="ignore"):
                    gap = np.where(gen_freq > 0, np.log2(n / np.maximum(gen_freq, 1e-300)), 0.0)
            elif metric == "loss":
                under = np.bincount(codes)  # hierarchy leaves under each label
                code_cost = (under - 1) / max(qi.maps.shape[1] - 1, 1)
                per_row = code_cost[codes[leaves]]
                gap = 1.0 - code_cost
            elif metric == "precision":
                cost = level / qi.height if qi.height else 0.0
                per_row = np.full(leaves.shape[0], cost)
                gap = np.full(int(codes.max()) + 1, 1.0 - cost)
            else:
                raise ValueError(metric)
            total[level] = float(per_row @ w)
            gap_levels.append(np.asarray(gap, dtype=float))
        totals.append(total)
        gaps.append(tuple(gap_levels))
    return AttributeCosts(tuple(totals), tuple(gaps))


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
