"""Pure metric cores: exact metrics (scikit-learn) and metrics of binned label counts.

Exact mode computes every metric with scikit-learn on the records of a cell (the whole
submission, one declared group). DP mode never looks at records again after counting: each
cell becomes a histogram of positive labels per score bin (bin sizes are public, they
depend only on the ML party's own scores), noise is added to the positive counts, and every
metric is post-processed from the noisy histogram. With the threshold on a bin edge,
accuracy, precision, recall, F1 and the confusion matrix are exact functions of the
histogram; ROC AUC is that of the binned scores and log loss uses each bin's mean score.
All binned functions accept a leading batch axis (used for Monte Carlo intervals).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
CLIP = 1e-6


def fine_edges(threshold: float, bins: int, bands: int) -> FloatArray:
    """Bin edges on [0, 1]: ``bins`` equal bins refined so that the threshold and every
    band edge is a bin edge (metrics at the threshold stay exact under binning)."""
    edges = {round(i / bins, 12) for i in range(bins + 1)}
    edges |= {round(i / bands, 12) for i in range(bands + 1)}
    edges.add(round(threshold, 12))
    return np.array(sorted(edges), dtype=np.float64)


def bin_index(scores: FloatArray, edges: FloatArray) -> NDArray[np.int64]:
    """Bin of each score: ``edges[b] <= s < edges[b+1]``, with 1.0 in the last bin."""
    index = np.searchsorted(edges, scores, side="right") - 1
    return np.clip(index, 0, len(edges) - 2).astype(np.int64)


def band_ranges(
    bin_sizes: NDArray[np.int64], edges: FloatArray, bands: int, min_size: int
) -> list[tuple[int, int]]:
    """Confidence bands as ranges of fine bins ``[start, stop)``.

    Bands start at multiples of ``1/bands``; a band with fewer than ``min_size`` records is
    merged into the next one (the last into the previous), so every released band is large
    enough and the bands still partition the submission (no small remainder to subtract).
    Depends only on bin sizes, which the ML party already knows.
    """
    starts = [int(np.argmin(np.abs(edges - i / bands))) for i in range(bands)]
    ranges = [(a, b) for a, b in zip(starts, [*starts[1:], len(edges) - 1], strict=True)]
    merged: list[list[int]] = []
    pending: list[int] | None = None
    for start, stop in ranges:
        current = [pending[0], stop] if pending else [start, stop]
        size = int(bin_sizes[current[0] : current[1]].sum())
        if size < min_size:
            pending = current
            continue
        merged.append(current)
        pending = None
    if pending is not None:
        if merged:
            merged[-1][1] = pending[1]
        elif int(bin_sizes.sum()) >= min_size:
            merged.append(pending)
    return [(a, b) for a, b in merged if int(bin_sizes[a:b].sum()) > 0]


def threshold_bin(edges: FloatArray, threshold: float) -> int:
    """Index of the first bin at or above the threshold (predicted positive)."""
    return int(np.argmin(np.abs(edges - threshold)))


def binned_binary(
    positives: FloatArray,
    sizes: NDArray[np.int64],
    mean_scores: FloatArray,
    split: int,
) -> dict[str, FloatArray]:
    """Metrics from positive counts per bin (``positives[..., bin]``), post-processing only.

    Counts are first clamped to ``[0, bin size]`` (a noisy count can leave that range).
    """
    n_bins = sizes.astype(np.float64)
    pos = np.clip(positives, 0.0, n_bins)
    neg = n_bins - pos
    n = float(n_bins.sum())
    tp = pos[..., split:].sum(axis=-1)
    fp = neg[..., split:].sum(axis=-1)
    fn = pos[..., :split].sum(axis=-1)
    tn = neg[..., :split].sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
        recall = np.where(tp + fn > 0, tp / (tp + fn), 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
        total_pos = pos.sum(axis=-1)
        total_neg = neg.sum(axis=-1)
        above = np.cumsum(pos[..., ::-1], axis=-1)[..., ::-1] - pos  # positives in higher bins
        pairs = (neg * (above + 0.5 * pos)).sum(axis=-1)
        auc = np.where(total_pos * total_neg > 0, pairs / (total_pos * total_neg), np.nan)
    p = np.clip(mean_scores, CLIP, 1 - CLIP)
    loss = -(pos * np.log(p) + neg * np.log(1 - p)).sum(axis=-1) / n
    return {
        "accuracy": (tp + tn) / n,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "roc_auc": auc,
        "log_loss": loss,
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
    }


def exact_binary(labels: NDArray[np.int64], scores: FloatArray, threshold: float) -> dict[str, Any]:
    """Exact classification metrics of one cell with scikit-learn."""
    from sklearn.metrics import (
        accuracy_score,
        confusion_matrix,
        f1_score,
        log_loss,
        precision_score,
        recall_score,
        roc_auc_score,
    )

    predicted = (scores >= threshold).astype(np.int64)
    tn, fp, fn, tp = confusion_matrix(labels, predicted, labels=[0, 1]).ravel()
    both = len(set(labels.tolist())) == 2
    return {
        "accuracy": float(accuracy_score(labels, predicted)),
        "precision": float(precision_score(labels, predicted, zero_division=0)),
        "recall": float(recall_score(labels, predicted, zero_division=0)),
        "f1": float(f1_score(labels, predicted, zero_division=0)),
        "roc_auc": float(roc_auc_score(labels, scores)) if both else None,
        "log_loss": float(log_loss(labels, np.clip(scores, CLIP, 1 - CLIP), labels=[0, 1])),
        "confusion": {"tn": int(tn), "fp": int(fp), "fn": int(fn), "tp": int(tp)},
    }


def exact_regression(targets: FloatArray, values: FloatArray) -> dict[str, Any]:
    """Exact regression metrics of one cell with scikit-learn."""
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    r2 = float(r2_score(targets, values)) if len(set(targets.tolist())) > 1 else None
    return {
        "mae": float(mean_absolute_error(targets, values)),
        "rmse": math.sqrt(float(mean_squared_error(targets, values))),
        "r2": r2,
    }


def regression_sums(targets: FloatArray, values: FloatArray, error_bound: float) -> FloatArray:
    """The four sums the DP regression metrics are built from, with errors clipped."""
    errors = np.clip(np.abs(values - targets), 0.0, error_bound)
    return np.array(
        [errors.sum(), (errors**2).sum(), targets.sum(), (targets**2).sum()], dtype=np.float64
    )


def regression_from_sums(sums: FloatArray, n: int) -> dict[str, FloatArray]:
    """MAE, RMSE and R^2 from (possibly noisy) sums; batched over leading axes."""
    abs_sum, sq_sum, y_sum, y_sq = (sums[..., i] for i in range(4))
    sq = np.maximum(sq_sum, 0.0)
    total = y_sq - y_sum**2 / n
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = np.where(total > 0, 1 - sq / total, np.nan)
    return {"mae": np.maximum(abs_sum, 0.0) / n, "rmse": np.sqrt(sq / n), "r2": r2}
