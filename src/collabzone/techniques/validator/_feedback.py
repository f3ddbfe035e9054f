"""Assemble the feedback of one submission: cells, exact or DP metrics, calibration bands.

Pure given its inputs and an injected generator (used only to size DP intervals). A *cell*
is the whole submission or one declared group; confidence bands come from the whole
submission. Labels arrive here as 0/1 (binary) or numbers (regression), aligned with the
predictions; nothing per record is ever returned.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from collabzone.techniques.validator import _dp, _metrics

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class Options:
    """What the plan fixed: task, threshold, binning, DP epsilon and regression bounds."""

    task: str = "binary"
    threshold: float = 0.5
    bins: int = 20
    bands: int = 10
    min_group_size: int = 20
    epsilon: float | None = None
    error_bound: float | None = None
    label_bounds: tuple[float, float] | None = None


@dataclass
class Feedback:
    """The released metrics (JSON-ready) and how they were protected."""

    payload: dict[str, Any]
    band_masks: list[NDArray[np.bool_]] = field(default_factory=list)
    noise_scale: float | None = None
    mechanism: str | None = None


def _cells(groups: Sequence[str] | None, n: int) -> list[tuple[str | None, NDArray[np.bool_]]]:
    cells: list[tuple[str | None, NDArray[np.bool_]]] = [(None, np.ones(n, dtype=bool))]
    if groups is not None:
        array = np.asarray(groups, dtype=object)
        cells += [(g, array == g) for g in sorted(set(groups))]
    return cells


def _place(payload: dict[str, Any], name: str | None, metrics: dict[str, Any]) -> None:
    if name is None:
        payload["overall"] = metrics
    else:
        payload.setdefault("groups", {})[name] = metrics


def binary(
    labels: NDArray[np.int64],
    scores: FloatArray,
    groups: Sequence[str] | None,
    options: Options,
    rng: np.random.Generator,
) -> Feedback:
    """Classification feedback overall, per group and per confidence band."""
    edges = _metrics.fine_edges(options.threshold, options.bins, options.bands)
    index = _metrics.bin_index(scores, edges)
    n_bins = len(edges) - 1
    split = _metrics.threshold_bin(edges, options.threshold)
    midpoints = (edges[:-1] + edges[1:]) / 2
    cells = _cells(groups, len(labels))
    payload: dict[str, Any] = {"task": "binary", "threshold": options.threshold}
    sizes, means, positives = [], [], []
    for _, mask in cells:
        size = np.bincount(index[mask], minlength=n_bins).astype(np.int64)
        total = np.bincount(index[mask], weights=scores[mask], minlength=n_bins)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(size > 0, total / np.maximum(size, 1), midpoints)
        sizes.append(size)
        means.append(mean)
        positives.append(np.bincount(index[mask], weights=labels[mask], minlength=n_bins))
    overall_sizes = sizes[0]
    ranges = _metrics.band_ranges(overall_sizes, edges, options.bands, options.min_group_size)
    band_masks = [(index >= a) & (index < b) for a, b in ranges]
    feedback = Feedback(payload, band_masks)
    if options.epsilon is None:
        for name, mask in cells:
            metrics = _metrics.exact_binary(labels[mask], scores[mask], options.threshold)
            metrics["records"] = int(mask.sum())
            _place(payload, name, metrics)
        payload["calibration"] = [
            {
                "band": [float(edges[a]), float(edges[b])],
                "records": int(m.sum()),
                "mean_score": float(scores[m].mean()),
                "observed_rate": float(labels[m].mean()),
            }
            for (a, b), m in zip(ranges, band_masks, strict=True)
        ]
        return feedback
    exact = np.concatenate(positives).round().astype(np.int64).tolist()
    noisy, scale = _dp.noisy_counts(exact, sensitivity=len(cells), epsilon=options.epsilon)
    noisy_pos = np.asarray(noisy, dtype=np.float64).reshape(len(cells), n_bins)

    def noise(generator: np.random.Generator, shape: tuple[int, ...]) -> FloatArray:
        return _dp.sample_discrete_laplace(generator, scale, shape)

    for c, (name, mask) in enumerate(cells):
        size, mean = sizes[c], means[c]

        def metrics_of(
            pos: FloatArray, size: Any = size, mean: Any = mean
        ) -> dict[str, FloatArray]:
            return _metrics.binned_binary(pos, size, mean, split)

        released = metrics_of(noisy_pos[c])
        cis = _dp.intervals(noisy_pos[c], noise, metrics_of, rng)
        metrics = _binary_payload(released, cis, int(mask.sum()))
        _place(payload, name, metrics)
    payload["calibration"] = _bands(
        noisy_pos[0], overall_sizes, means[0], ranges, edges, noise, rng
    )
    feedback.noise_scale = scale
    feedback.mechanism = (
        "discrete Laplace (OpenDP) on positive counts per score bin, pure epsilon-DP"
    )
    return feedback


UNIT_METRICS = frozenset({"accuracy", "precision", "recall", "f1", "roc_auc"})


def _clip(name: str, interval: tuple[float, float]) -> list[float]:
    """An interval clipped to the metric's range (post-processing: coverage is unchanged,
    since the true value lies in that range)."""
    low, high = interval
    if name in UNIT_METRICS or name == "rate":
        return [max(0.0, low), min(1.0, high)]
    if name == "log_loss":
        return [max(0.0, low), high]
    return [low, high]


def _binary_payload(
    released: Mapping[str, FloatArray], cis: Mapping[str, tuple[float, float]], records: int
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss"):
        value = float(released[name])
        out[name] = value if np.isfinite(value) else None
    out["confusion"] = {k: round(float(released[k])) for k in ("tn", "fp", "fn", "tp")}
    out["ci95"] = {k: _clip(k, v) for k, v in cis.items() if k in out}
    out["records"] = records
    return out


def _bands(
    noisy_pos: FloatArray,
    sizes: NDArray[np.int64],
    means: FloatArray,
    ranges: Sequence[tuple[int, int]],
    edges: FloatArray,
    noise: Any,
    rng: np.random.Generator,
) -> list[dict[str, Any]]:
    def rates(pos: FloatArray) -> dict[str, FloatArray]:
        clipped = np.clip(pos, 0.0, sizes.astype(np.float64))
        return {
            str(i): clipped[..., a:b].sum(axis=-1) / max(int(sizes[a:b].sum()), 1)
            for i, (a, b) in enumerate(ranges)
        }

    released = rates(noisy_pos)
    cis = _dp.intervals(noisy_pos, noise, rates, rng)
    out = []
    for i, (a, b) in enumerate(ranges):
        count = int(sizes[a:b].sum())
        out.append(
            {
                "band": [float(edges[a]), float(edges[b])],
                "records": count,
                "mean_score": float((means[a:b] * sizes[a:b]).sum() / max(count, 1)),
                "observed_rate": float(released[str(i)]),
                "ci95": _clip("rate", cis.get(str(i), (float("nan"), float("nan")))),
            }
        )
    return out


def regression(
    targets: FloatArray,
    values: FloatArray,
    groups: Sequence[str] | None,
    options: Options,
    rng: np.random.Generator,
) -> Feedback:
    """Regression feedback (MAE, RMSE, R^2) overall and per group."""
    cells = _cells(groups, len(targets))
    payload: dict[str, Any] = {"task": "regression"}
    feedback = Feedback(payload)
    if options.epsilon is None:
        for name, mask in cells:
            metrics = _metrics.exact_regression(targets[mask], values[mask])
            metrics["records"] = int(mask.sum())
            _place(payload, name, metrics)
        return feedback
    assert options.error_bound is not None and options.label_bounds is not None
    low, high = options.label_bounds
    bound = float(options.error_bound)
    square = max(low * low, high * high) - (
        0.0 if low <= 0 <= high else min(low * low, high * high)
    )
    per_record = np.array([bound, bound * bound, high - low, max(square, 1e-12)])
    clipped = np.clip(targets, low, high)
    sums = [
        _metrics.regression_sums(clipped[mask], values[mask], bound) / per_record
        for _, mask in cells
    ]
    sensitivity = 4.0 * len(cells)
    noisy, scale = _dp.noisy_unit_sums(
        np.concatenate(sums).tolist(), sensitivity=sensitivity, epsilon=options.epsilon
    )
    noisy_sums = np.asarray(noisy).reshape(len(cells), 4)

    def noise(generator: np.random.Generator, shape: tuple[int, ...]) -> FloatArray:
        return generator.laplace(0.0, scale, shape)

    for c, (name, mask) in enumerate(cells):
        n = int(mask.sum())

        def metrics_of(unit: FloatArray, n: int = n) -> dict[str, FloatArray]:
            return _metrics.regression_from_sums(unit * per_record, n)

        released = metrics_of(noisy_sums[c])
        cis = _dp.intervals(noisy_sums[c], noise, metrics_of, rng)
        out: dict[str, Any] = {
            k: (float(v) if np.isfinite(float(v)) else None) for k, v in released.items()
        }
        out["ci95"] = {k: list(v) for k, v in cis.items()}
        out["records"] = n
        _place(payload, name, out)
    feedback.noise_scale = scale
    feedback.mechanism = "Laplace (OpenDP) on clipped error and label sums, pure epsilon-DP"
    return feedback
