"""Assemble the feedback of one submission: cells, exact or DP counts, calibration bands.

Pure given its inputs and an injected generator (used only to size DP intervals). A
*cell* is the whole submission or one declared group; each is split at the threshold into
its predicted-negative and predicted-positive parts, and the whole submission into
calibration bands. Everything released is post-processing of label counts over those sets
(see ``_metrics``): exact counts rounded to a multiple of ``count_rounding``, or counts
with DP noise. Set *structure* (bands, parts) depends only on the ML party's own scores
over every record it sent; sizes are labelled records of audited sets. Labels arrive as
0/1 with a flag per record saying whether the owner has one; nothing per record is ever
returned.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from collabzone.techniques.validator import _dp, _metrics

FloatArray = NDArray[np.float64]
Mask = NDArray[np.bool_]


@dataclass(frozen=True)
class Options:
    """What the plan fixed: task, threshold, binning, DP epsilon, rounding, bounds."""

    task: str = "binary"
    threshold: float = 0.5
    bins: int = 20
    bands: int = 10
    min_band_size: int = 20
    """Bands are merged until each holds this many sent records (the audit's minimum plus
    its jitter width, so a band alone is never a borderline atom)."""
    epsilon: float | None = None
    count_rounding: int = 1
    error_bound: float | None = None
    label_bounds: tuple[float, float] | None = None


@dataclass
class Feedback:
    """The released metrics (JSON-ready), the sets they describe, how they were protected."""

    payload: dict[str, Any]
    released_sets: list[Mask] = field(default_factory=list)
    """Membership (over every submitted record) of each set a count is released over."""
    band_masks: list[Mask] = field(default_factory=list)
    noise_scale: float | None = None
    mechanism: str | None = None


def cells_of(groups: Sequence[str] | None, n: int) -> list[tuple[str | None, Mask]]:
    """The whole submission, then each declared group in a stable order."""
    cells: list[tuple[str | None, Mask]] = [(None, np.ones(n, dtype=bool))]
    if groups is not None:
        array = np.asarray(groups, dtype=object)
        cells += [(g, array == g) for g in sorted(set(groups))]
    return cells


def _place(payload: dict[str, Any], name: str | None, metrics: dict[str, Any]) -> None:
    if name is None:
        payload["overall"] = metrics
    else:
        payload.setdefault("groups", {})[name] = metrics


@dataclass(frozen=True)
class _Layout:
    """Fine score bins, the threshold's bin, the bands (ranges of fine bins)."""

    edges: FloatArray
    index: NDArray[np.int64]
    split: int
    ranges: list[tuple[int, int]]

    @property
    def n_bins(self) -> int:
        return len(self.edges) - 1


def _layout(scores: FloatArray, groups: Sequence[str] | None, options: Options) -> _Layout:
    """Bins, threshold and bands; bands are cut from what was sent, per group and side."""
    edges = _metrics.fine_edges(options.threshold, options.bins, options.bands)
    index = _metrics.bin_index(scores, edges)
    split = _metrics.threshold_bin(edges, options.threshold)
    n_bins = len(edges) - 1
    slices = []
    for _, mask in cells_of(groups, len(scores))[1 if groups is not None else 0 :]:
        sent = np.bincount(index[mask], minlength=n_bins).astype(np.int64)
        below = sent.copy()
        below[split:] = 0
        slices += [below, sent - below]
    ranges = _metrics.band_ranges(np.array(slices), edges, options.bands, options.min_band_size)
    return _Layout(edges, index, split, ranges)


def binary(
    labels: NDArray[np.int64],
    labelled: Mask,
    scores: FloatArray,
    groups: Sequence[str] | None,
    options: Options,
    rng: np.random.Generator,
) -> Feedback:
    """Classification feedback overall, per group and per confidence band."""
    layout = _layout(scores, groups, options)
    index, split, n_bins = layout.index, layout.split, layout.n_bins
    cells = cells_of(groups, len(scores))
    predicted = index >= split
    band_masks = [(index >= a) & (index < b) for a, b in layout.ranges]
    positives: list[FloatArray] = []
    part_sizes: list[tuple[float, float]] = []
    for _, mask in cells:
        known = mask & labelled
        counted = np.bincount(index[known], weights=labels[known], minlength=n_bins)
        positives.append(counted.astype(np.float64))
        part_sizes.append((float((known & ~predicted).sum()), float((known & predicted).sum())))
    band_sizes = np.array([float((m & labelled).sum()) for m in band_masks])
    band_means = np.array([float(scores[m].mean()) for m in band_masks])
    payload: dict[str, Any] = {"task": "binary", "threshold": options.threshold}
    released = [mask for _, mask in cells]
    released += [p for _, m in cells for p in (m & ~predicted, m & predicted) if p.any()]
    feedback = Feedback(payload, released + band_masks, band_masks)

    def summarise(fine: FloatArray, c: int, exact: bool) -> dict[str, FloatArray]:
        """Metrics of cell ``c`` from its (noisy or exact) positives per fine bin."""
        parts = [fine[..., :split].sum(axis=-1), fine[..., split:].sum(axis=-1)]
        bands = np.stack([fine[..., a:b].sum(axis=-1) for a, b in layout.ranges], axis=-1)
        if exact:
            parts = [
                _metrics.round_counts(p, options.count_rounding, s)
                for p, s in zip(parts, part_sizes[c], strict=True)
            ]
            bands = _metrics.round_counts(bands, options.count_rounding, band_sizes)
        out = _metrics.threshold_metrics(parts[0], parts[1], part_sizes[c])
        if c == 0:
            out.update(_metrics.band_metrics(bands, band_sizes, band_means))
            clipped = np.clip(bands, 0.0, band_sizes)
            for i in range(len(layout.ranges)):
                out[f"band{i}"] = clipped[..., i] / max(band_sizes[i], 1.0)
        return out

    def release_cells(
        fine_of: Callable[[int], FloatArray], intervals: Callable[[int], Mapping[str, Any]]
    ) -> None:
        for c, (name, mask) in enumerate(cells):
            values = summarise(fine_of(c), c, options.epsilon is None)
            metrics = _binary_payload(values, intervals(c), int((mask & labelled).sum()))
            _place(payload, name, metrics)
            if c == 0:
                payload["calibration"] = _bands(values, intervals(c), layout, band_sizes,
                                                band_means)  # fmt: skip

    if options.epsilon is None:
        release_cells(lambda c: positives[c], lambda c: {})
        base = options.count_rounding
        feedback.mechanism = (
            f"exact label counts over audited sets, rounded to multiples of {base}"
            if base > 1
            else "exact label counts over audited sets"
        )
        return feedback
    exact = np.concatenate(positives).round().astype(np.int64).tolist()
    noisy, scale = _dp.noisy_counts(exact, sensitivity=len(cells), epsilon=options.epsilon)
    noisy_pos = np.asarray(noisy, dtype=np.float64).reshape(len(cells), n_bins)

    def noise(generator: np.random.Generator, shape: tuple[int, ...]) -> FloatArray:
        return _dp.sample_discrete_laplace(generator, scale, shape)

    cis: dict[int, Mapping[str, Any]] = {}
    for c in range(len(cells)):

        def metrics_of(pos: FloatArray, c: int = c) -> dict[str, FloatArray]:
            return summarise(pos, c, False)

        cis[c] = _dp.intervals(noisy_pos[c], noise, metrics_of, rng)
    release_cells(lambda c: noisy_pos[c], lambda c: cis[c])
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
        value = float(released[name]) if name in released else float("nan")
        out[name] = value if np.isfinite(value) else None
    out["confusion"] = {k: round(float(released[k])) for k in ("tn", "fp", "fn", "tp")}
    if cis:
        out["ci95"] = {k: _clip(k, v) for k, v in cis.items() if out.get(k) is not None}
    out["records"] = records
    return out


def _bands(
    released: Mapping[str, FloatArray],
    cis: Mapping[str, tuple[float, float]],
    layout: _Layout,
    sizes: FloatArray,
    means: FloatArray,
) -> list[dict[str, Any]]:
    out = []
    for i, (a, b) in enumerate(layout.ranges):
        band: dict[str, Any] = {
            "band": [float(layout.edges[a]), float(layout.edges[b])],
            "records": int(sizes[i]),
            "mean_score": float(means[i]),
            "observed_rate": float(released[f"band{i}"]),
        }
        if cis:
            band["ci95"] = _clip("rate", cis.get(f"band{i}", (float("nan"), float("nan"))))
        out.append(band)
    return out


def regression(
    targets: FloatArray,
    labelled: Mask,
    values: FloatArray,
    groups: Sequence[str] | None,
    options: Options,
    rng: np.random.Generator,
) -> Feedback:
    """DP regression feedback (MAE, RMSE, R^2) overall and per group.

    DP only: each error is weighted by the ML party's own prediction, so an exact MAE or
    RMSE of one chosen wild prediction would say that record's value (a magnifier).
    """
    if options.epsilon is None:
        raise ValueError("regression feedback is released with DP noise only")
    cells = cells_of(groups, len(targets))
    payload: dict[str, Any] = {"task": "regression"}
    feedback = Feedback(payload, [mask for _, mask in cells])
    assert options.error_bound is not None and options.label_bounds is not None
    low, high = options.label_bounds
    bound = float(options.error_bound)
    square = max(low * low, high * high) - (
        0.0 if low <= 0 <= high else min(low * low, high * high)
    )
    per_record = np.array([bound, bound * bound, high - low, max(square, 1e-12)])
    clipped = np.clip(targets, low, high)
    sums = [
        _metrics.regression_sums(clipped[mask & labelled], values[mask & labelled], bound)
        / per_record
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
        n = max(int((mask & labelled).sum()), 1)

        def metrics_of(unit: FloatArray, n: int = n) -> dict[str, FloatArray]:
            return _metrics.regression_from_sums(unit * per_record, n)

        released = metrics_of(noisy_sums[c])
        cis = _dp.intervals(noisy_sums[c], noise, metrics_of, rng)
        out: dict[str, Any] = {
            k: (float(v) if np.isfinite(float(v)) else None) for k, v in released.items()
        }
        out["ci95"] = {k: list(v) for k, v in cis.items()}
        out["records"] = int((mask & labelled).sum())
        _place(payload, name, out)
    feedback.noise_scale = scale
    feedback.mechanism = "Laplace (OpenDP) on clipped error and label sums, pure epsilon-DP"
    return feedback
