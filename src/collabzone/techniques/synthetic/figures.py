"""The report's two figures as PNG bytes: 1-way marginals side by side, association heat maps.

Used by the offline report (real vs synthetic, on the owner's machine) and by the console
(what the mechanism measured, with noise, vs synthetic: all of it already paid for).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    _pyplot().close(fig)
    return buffer.getvalue()


def shares(counts: Any) -> np.ndarray:
    """A histogram as shares of its total, negative noisy counts clipped to zero first."""
    values = np.clip(np.asarray(counts, dtype=float), 0, None)
    out: np.ndarray = values / max(float(values.sum()), 1e-12)
    return out


def marginals_png(
    panels: Sequence[tuple[str, Any, Any]],
    labels: tuple[str, str] = ("real", "synthetic"),
) -> bytes:
    """One bar chart per column, the two distributions (shares) side by side."""
    plt = _pyplot()
    cols = 3
    rows = max(1, (len(panels) + cols - 1) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 2.6 * rows), squeeze=False)
    for ax, (title, left, right) in zip(axes.ravel(), panels, strict=False):
        x = np.arange(len(left))
        ax.bar(x - 0.2, left, 0.4, label=labels[0])
        ax.bar(x + 0.2, right, 0.4, label=labels[1])
        ax.set_title(title, fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in axes.ravel()[len(panels) :]:
        ax.axis("off")
    axes.ravel()[0].legend(fontsize=7)
    fig.tight_layout()
    return _png(fig)


def association_png(names: Sequence[str], matrices: Sequence[tuple[str, np.ndarray]]) -> bytes:
    """Heat maps of association matrices (Cramér's V, 0 to 1) over the same columns."""
    plt = _pyplot()
    fig, axes = plt.subplots(
        1, len(matrices), figsize=(4.4 * len(matrices) + 0.6, 4.2), squeeze=False
    )
    image = None
    for ax, (title, matrix) in zip(axes.ravel(), matrices, strict=True):
        image = ax.imshow(np.asarray(matrix), vmin=0, vmax=1, cmap="viridis")
        ax.set_xticks(range(len(names)), list(names), rotation=90, fontsize=7)
        ax.set_yticks(range(len(names)), list(names), fontsize=7)
        ax.set_title(title, fontsize=9)
    fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8)
    return _png(fig)
