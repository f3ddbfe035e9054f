"""Quality metrics of a transformation (information loss: lower is better), as ARX defines them.

Single-dimensional (one number for the whole table; ``|D|`` the number of input rows):

* ``discernibility`` (ARX ``MetricSDNMDiscernability``, "non-monotonic discernability"):
  each kept class costs |E|^2, each suppressed class |E| * |D|.
* ``discernibility_monotonic`` (ARX ``MetricSDDiscernability``, "DM*"): |E|^2 summed over
  every class, suppressed ones included (suppression is not charged, so the value can
  only grow with generalisation).

Attribute-wise (one value per quasi-identifier, then combined by an aggregate function):

* ``non_uniform_entropy_monotonic`` (ARX ``MetricMDNUEntropyPrecomputed``): per
  attribute, the sum over all rows of log2(rows sharing the generalised value / rows
  sharing the original value), counted on the whole input: suppression is ignored (a
  suppressed row costs what it would cost if kept).
* ``non_uniform_entropy`` (ARX ``MetricMDNUNMEntropyPrecomputed``, "non-monotonic
  non-uniform entropy"): the monotonic value plus, per attribute, for the suppressed rows
  grouped by their generalised value (c rows each, S suppressed in all), c * log2(S / c).
* ``loss`` (ARX ``MetricMDNMLoss``, Iyengar): per attribute, the average over rows of
  (leaves under the generalised value - 1) / (leaves of the hierarchy - 1); a suppressed
  row costs 1.
* ``precision`` (ARX ``MetricMDNMPrecision``, Sweeney): per attribute, the average over rows
  of level / height; a suppressed row costs 1.

Aggregate functions (ARX ``AggregateFunction``), over the per-attribute values v_1..v_d:
``sum``, ``arithmetic_mean`` (sum / d), ``geometric_mean`` (prod (v_i + 1)^(1/d) - 1),
``max`` and ``rank`` (the values sorted in descending order, compared lexicographically;
its scalar ``score`` is the geometric mean, as ARX reports). ARX's defaults: sum for
non-uniform entropy, geometric mean for loss, arithmetic mean for precision.

Every metric has a lower bound, monotone in the lattice, used by branch and bound:
discernibility's is below (:func:`discernibility_bound`), an attribute-wise metric's is
the aggregate of its per-attribute values without suppression (every aggregate except
rank is increasing in each value; rank is searched without bound pruning).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np

from collabzone.techniques.deid._encode import Encoded

MetricName = Literal[
    "discernibility",
    "discernibility_monotonic",
    "non_uniform_entropy",
    "non_uniform_entropy_monotonic",
    "loss",
    "precision",
]
METRICS: tuple[MetricName, ...] = get_args(MetricName)
AggregateName = Literal["sum", "arithmetic_mean", "geometric_mean", "max", "rank"]
AGGREGATES: tuple[AggregateName, ...] = get_args(AggregateName)
DEFAULT_AGGREGATE: dict[str, AggregateName] = {
    "non_uniform_entropy": "sum",
    "non_uniform_entropy_monotonic": "sum",
    "loss": "geometric_mean",
    "precision": "arithmetic_mean",
}
"""ARX's default aggregate function of each attribute-wise metric."""
SINGLE_DIMENSIONAL = ("discernibility", "discernibility_monotonic")
MONOTONE_METRICS = ("discernibility_monotonic", "non_uniform_entropy_monotonic")
"""Metrics whose value never falls when a node is generalised, suppression or not."""


def aggregate_of(metric: str, aggregate: str | None) -> AggregateName | None:
    """The aggregate function used for ``metric`` (None for single-dimensional metrics)."""
    if metric in SINGLE_DIMENSIONAL:
        return None
    if aggregate is None:
        return DEFAULT_AGGREGATE[metric]
    if aggregate not in AGGREGATES:
        raise ValueError(aggregate)
    return aggregate


def combine(values: np.ndarray, aggregate: AggregateName) -> np.ndarray:
    """Aggregate per-attribute values: ``values`` is (..., d); returns (...)."""
    d = values.shape[-1]
    if aggregate == "sum":
        return np.asarray(values.sum(axis=-1))
    if aggregate == "arithmetic_mean":
        return np.asarray(values.sum(axis=-1) / d)
    if aggregate == "max":
        return np.asarray(values.max(axis=-1))
    # geometric mean, also rank's scalar (ARX's ILMultiDimensionalRank.getMean)
    return np.asarray(np.exp(np.log1p(values).sum(axis=-1) / d) - 1.0)


def rank_key(values: np.ndarray) -> tuple[float, ...]:
    """ARX's RANK order: per-attribute values sorted descending, compared lexicographically."""
    return tuple(float(v) for v in sorted(values.tolist(), reverse=True))


@dataclass(frozen=True)
class AttributeCosts:
    """An attribute-wise metric, precomputed for every level of every quasi-identifier.

    ``totals[i][level]``: attribute ``i``'s value at ``level`` if nothing is suppressed
    (already normalised: divided by the rows for loss and precision). ``gaps[i][level][code]``
    (loss and precision): what suppressing one row whose generalised value is ``code`` adds
    to the attribute's value.
    """

    metric: MetricName
    aggregate: AggregateName
    totals: tuple[np.ndarray, ...]
    gaps: tuple[tuple[np.ndarray, ...], ...]
    n_rows: float = 1.0

    def values(self, levels: tuple[int, ...] | np.ndarray) -> np.ndarray:
        """Per-attribute values of a node without suppression (the monotone bound)."""
        return np.array([t[lv] for t, lv in zip(self.totals, levels, strict=True)])

    def suppression(
        self,
        levels: tuple[int, ...],
        gone_codes: list[np.ndarray],
        gone_sizes: np.ndarray,
    ) -> np.ndarray:
        """Per-attribute charge of suppressing classes (their generalised codes per
        attribute and their sizes)."""
        out = np.zeros(len(self.totals))
        if gone_sizes.sum() == 0 or self.metric == "non_uniform_entropy_monotonic":
            return out
        s = float(gone_sizes.sum())
        for i, (codes, lv) in enumerate(zip(gone_codes, levels, strict=True)):
            if self.metric == "non_uniform_entropy":
                c = np.bincount(codes, weights=gone_sizes.astype(float))
                c = c[c > 0]
                out[i] = float((c * np.log2(s / c)).sum())
            else:
                out[i] = float((gone_sizes * self.gaps[i][lv][codes]).sum()) / self.n_rows
        return out

    def score(self, values: np.ndarray) -> float:
        """The aggregate of per-attribute values (rank: their geometric mean)."""
        return float(combine(values, self.aggregate))


def attribute_costs(
    encoded: Encoded, metric: MetricName, aggregate: AggregateName | None = None
) -> AttributeCosts:
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
            if metric in ("non_uniform_entropy", "non_uniform_entropy_monotonic"):
                gen_freq = np.bincount(codes, weights=leaf_freq, minlength=int(codes.max()) + 1)
                per_row = np.log2(gen_freq[codes[leaves]] / leaf_freq[leaves])
                gap = np.zeros(0)
            elif metric == "loss":
                under = np.bincount(codes)  # hierarchy leaves under each label
                code_cost = (under - 1) / max(qi.maps.shape[1] - 1, 1)
                per_row = code_cost[codes[leaves]] / n
                gap = 1.0 - code_cost
            elif metric == "precision":
                cost = level / qi.height if qi.height else 0.0
                per_row = np.full(leaves.shape[0], cost / n)
                gap = np.full(int(codes.max()) + 1, 1.0 - cost)
            else:
                raise ValueError(metric)
            total[level] = float(per_row @ w)
            gap_levels.append(np.asarray(gap, dtype=float))
        totals.append(total)
        gaps.append(tuple(gap_levels))
    agg = aggregate_of(metric, aggregate)
    assert agg is not None
    return AttributeCosts(metric, agg, tuple(totals), tuple(gaps), n)


def discernibility(sizes: np.ndarray, kept: np.ndarray, n_rows: int) -> int:
    """Non-monotonic discernibility: |E|^2 per kept class plus |E| * |D| per suppressed one."""
    kept_sizes = sizes[kept]
    return int((kept_sizes * kept_sizes).sum() + sizes[~kept].sum() * n_rows)


def discernibility_monotonic(sizes: np.ndarray) -> int:
    """DM*: |E|^2 over every class, suppressed ones included."""
    return int((sizes * sizes).sum())


def discernibility_bound(sizes: np.ndarray, min_class_size: int = 1) -> int:
    """A lower bound of non-monotonic discernibility for this node and every coarser one.

    In any more general node, the rows of a class of size s end up in a class that is
    either kept (at least ``min_class_size`` rows and at least s rows: cost per row >=
    max(s, min_class_size)) or suppressed (cost per row |D|, which is larger), so
    sum(s * max(s, min_class_size)) bounds them all.
    """
    return int((sizes * np.maximum(sizes, min_class_size)).sum())


def row_metrics(
    encoded: Encoded,
    kept: np.ndarray,
    row_class: np.ndarray,
    labels: list[np.ndarray],
    levels: list[np.ndarray],
    covered: list[np.ndarray],
) -> dict[str, np.ndarray | float]:
    """Every metric from per-row facts (works for local recoding too): ``kept`` per input
    row, ``row_class`` its class id, and per QI its generalised label, level and the number
    of hierarchy leaves its label covers. Returns per-attribute arrays for the
    attribute-wise metrics and numbers for discernibility."""
    n = encoded.n_rows
    _, cls = np.unique(row_class, return_inverse=True)
    sizes = np.bincount(cls)
    class_kept = np.zeros(sizes.shape[0], dtype=bool)
    class_kept[cls[kept]] = True
    gone = ~kept
    s = int(gone.sum())
    d = len(encoded.qis)
    nue_mono, nue_extra, loss, prec = (np.zeros(d) for _ in range(4))
    for i, (q, lab, lev, cov) in enumerate(zip(encoded.qis, labels, levels, covered, strict=True)):
        orig = np.bincount(q.codes, minlength=q.maps.shape[1])[q.codes].astype(float)
        _, inv, counts = np.unique(lab, return_inverse=True, return_counts=True)
        nue_mono[i] = float(np.log2(counts[inv] / orig).sum())
        if s:
            _, c = np.unique(lab[gone], return_counts=True)
            nue_extra[i] = float((c * np.log2(s / c)).sum())
        n_leaves = max(q.maps.shape[1] - 1, 1)
        loss[i] = float(((cov[kept] - 1) / n_leaves).sum() + s) / n
        height = max(q.height, 1)
        prec[i] = float((lev[kept] / height).sum() + s) / n
    return {
        "discernibility": float(
            (sizes[class_kept] ** 2).sum() + sizes[~class_kept].sum() * float(n)
        ),
        "discernibility_monotonic": float((sizes**2).sum()),
        "non_uniform_entropy_monotonic": nue_mono,
        "non_uniform_entropy": nue_mono + nue_extra,
        "loss": loss,
        "precision": prec,
    }


def quality_report(
    encoded: Encoded,
    metric: str,
    aggregate: str | None,
    kept: np.ndarray,
    row_class: np.ndarray,
    labels: list[np.ndarray],
    levels: list[np.ndarray],
    covered: list[np.ndarray],
) -> dict[str, Any]:
    """Every metric of the release, as ARX defines it (see ``_metrics``): the searched one
    with the config's aggregate function, the others with ARX's default one."""
    raw = row_metrics(encoded, kept, row_class, labels, levels, covered)
    out: dict[str, Any] = {}
    aggregates: dict[str, str] = {}
    per_attribute: dict[str, dict[str, float]] = {}
    qis = [q.hierarchy.attribute for q in encoded.qis]
    for name in METRICS:
        value = raw[name]
        if isinstance(value, np.ndarray):
            agg = aggregate_of(name, aggregate if name == metric else None)
            assert agg is not None
            aggregates[name] = agg
            per_attribute[name] = dict(zip(qis, value.tolist(), strict=True))
            out[name] = float(combine(value, agg))
        else:
            out[name] = round(value) if name.startswith("discernibility") else value
    out["metric_aggregates"] = aggregates
    out["metric_per_attribute"] = per_attribute
    return out
