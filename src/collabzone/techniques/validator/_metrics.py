"""Pure metric cores: metrics of label counts over released sets, and exact references.

Every classification metric the validator releases is post-processing of label counts
over *audited* sets (see ``_audit``): per cell (the whole submission, a declared group)
the positives of its predicted-negative and predicted-positive parts, per calibration band
its positives; sizes are the labelled records of those same sets. Accuracy, precision,
recall, F1 and the confusion matrix come from the two parts; ROC AUC and log loss from the
bands (band-binned: their per-record weights would otherwise be the ML party's own scores,
a magnifier that isolates one record in a single submission). Counts are exact and
rounded (exact mode) or DP-noised (DP mode) before these functions see them. All functions
accept a leading batch axis (used for Monte Carlo intervals).

``exact_binary`` and ``exact_regression`` (scikit-learn) are references for tests and
for the owner's own checks; they are never released.
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

    ``bin_sizes`` counts sent records per fine bin, one row per *slice* (a declared group's
    predicted-negative or -positive records; a 1-D array is one slice). The bands partition
    the submission (no small remainder to subtract) into as many ranges as possible, at
    most ``bands``, such that every band, and every part of a band that a group or the
    threshold cuts off, holds 0 or at least ``min_size`` records; among partitions with that
    many bands, the one whose cuts lie nearest multiples of ``1/bands`` is taken. When no
    partition into two or more bands exists, the whole submission is one band (if it holds
    ``min_size`` records; none otherwise). Depends only on what the ML party sent, which it
    already knows.
    """
    rows = np.atleast_2d(np.asarray(bin_sizes, dtype=np.int64))
    n_bins = rows.shape[1]
    prefix = np.zeros((rows.shape[0], n_bins + 1), dtype=np.int64)
    np.cumsum(rows, axis=1, out=prefix[:, 1:])
    total = int(prefix[:, -1].sum())
    if total < min_size:
        return []

    # fits[a, b]: bins a .. b-1 may form a band (a < b); every slice holds 0 or >= min_size
    per_slice = prefix[:, None, :] - prefix[:, :, None]
    fits = (per_slice.sum(axis=0) >= min_size) & ((per_slice == 0) | (per_slice >= min_size)).all(
        axis=0
    )
    fits &= np.triu(np.ones_like(fits), k=1)
    # distance of each possible cut to the nearest multiple of 1/bands (the preferred cuts)
    cuts = edges[: n_bins + 1] * bands
    nice = np.abs(cuts - np.round(cuts)) / bands
    nice[0] = 0.0
    cost = np.full(n_bins + 1, np.inf)
    cost[0] = 0.0  # cost[j]: the best partition of bins 0 .. j-1 into k bands (k = step)
    steps: list[NDArray[np.int64]] = []
    most, chosen = 0, steps
    for k in range(1, max(bands, 1) + 1):
        options = np.where(fits, (cost + nice)[:, None], np.inf)
        came_from = np.argmin(options, axis=0)
        cost = options[came_from, np.arange(n_bins + 1)]
        if not np.isfinite(cost).any():
            break
        steps.append(came_from)
        if np.isfinite(cost[n_bins]):
            most, chosen = k, list(steps)
    if most < 2:
        return [(0, n_bins)]
    out, end = [], n_bins
    for came_from in reversed(chosen):
        start = int(came_from[end])
        out.append((start, end))
        end = start
    return out[::-1]


def threshold_bin(edges: FloatArray, threshold: float) -> int:
    """Index of the first bin at or above the threshold (predicted positive)."""
    return int(np.argmin(np.abs(edges - threshold)))


def round_counts(counts: FloatArray, base: int, sizes: FloatArray | float) -> FloatArray:
    """Counts rounded to the nearest multiple of ``base`` (half up), kept in ``[0, size]``."""
    rounded = np.floor(np.asarray(counts, dtype=np.float64) / base + 0.5) * base
    return np.asarray(np.clip(rounded, 0.0, sizes), dtype=np.float64)


def threshold_metrics(
    negative_part: FloatArray, positive_part: FloatArray, sizes: tuple[float, float]
) -> dict[str, FloatArray]:
    """Confusion matrix, accuracy, precision, recall and F1 of one cell from the positives of
    its predicted-negative and predicted-positive parts (``sizes``: their labelled records).

    Counts are clamped to ``[0, part size]`` first (a noisy count can leave that range).
    """
    below, above = float(sizes[0]), float(sizes[1])
    fn = np.clip(negative_part, 0.0, below)
    tp = np.clip(positive_part, 0.0, above)
    tn, fp = below - fn, above - tp
    n = max(below + above, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1e-12), 0.0)
        recall = np.where(tp + fn > 0, tp / np.maximum(tp + fn, 1e-12), 0.0)
        f1 = np.where(
            precision + recall > 0,
            2 * precision * recall / np.maximum(precision + recall, 1e-12),
            0.0,
        )
    return {
        "accuracy": (tp + tn) / n,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
    }


def band_metrics(
    positives: FloatArray, sizes: FloatArray, mean_scores: FloatArray
) -> dict[str, FloatArray]:
    """ROC AUC and log loss of the band histogram (bands in ascending score order).

    Each band's records are scored with the band's mean score; counts are clamped to
    ``[0, band size]`` first. With fewer than two bands the AUC is not estimated (NaN,
    released as null): one band cannot rank records.
    """
    n_band = np.asarray(sizes, dtype=np.float64)
    pos = np.clip(positives, 0.0, n_band)
    neg = n_band - pos
    n = max(float(n_band.sum()), 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        total_pos = pos.sum(axis=-1)
        total_neg = neg.sum(axis=-1)
        above = np.cumsum(pos[..., ::-1], axis=-1)[..., ::-1] - pos  # positives in higher bands
        pairs = (neg * (above + 0.5 * pos)).sum(axis=-1)
        auc = np.where(
            total_pos * total_neg > 0, pairs / np.maximum(total_pos * total_neg, 1e-12), np.nan
        )
    if pos.shape[-1] < 2:  # one band ranks nothing: its "AUC" would be 0.5 by construction
        auc = np.full(np.shape(total_pos), np.nan)
    p = np.clip(mean_scores, CLIP, 1 - CLIP)
    loss = -(pos * np.log(p) + neg * np.log(1 - p)).sum(axis=-1) / n
    return {"roc_auc": auc, "log_loss": loss}


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
