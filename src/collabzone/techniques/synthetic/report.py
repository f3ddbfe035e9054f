"""The fidelity and privacy report as JSON, an HTML page and PNG figures.

Figures: 1-way marginals side by side (real vs synthetic) for every column, and the two
Cramér's V association heat maps with their difference. The HTML page embeds the PNGs by
file name (they sit next to it) and shows only aggregates: no real row is ever printed.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np


def _plots(
    real: Mapping[str, np.ndarray],
    synthetic: Mapping[str, np.ndarray],
    shape: Mapping[str, int],
    out: Path,
) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from collabzone.techniques.synthetic.fidelity import cramers_v

    names = list(shape)
    cols = 3
    rows = (len(names) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 2.6 * rows), squeeze=False)
    for ax, name in zip(axes.ravel(), names, strict=False):
        size = shape[name]
        r = np.bincount(real[name], minlength=size) / max(len(real[name]), 1)
        s = np.bincount(synthetic[name], minlength=size) / max(len(synthetic[name]), 1)
        x = np.arange(size)
        ax.bar(x - 0.2, r, 0.4, label="real")
        ax.bar(x + 0.2, s, 0.4, label="synthetic")
        ax.set_title(name, fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in axes.ravel()[len(names) :]:
        ax.axis("off")
    axes.ravel()[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "marginals.png", dpi=90)
    plt.close(fig)

    cv_real, cv_syn = cramers_v(real, shape), cramers_v(synthetic, shape)
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.2))
    for ax, matrix, title in (
        (axes[0], cv_real, "real (Cramér's V)"),
        (axes[1], cv_syn, "synthetic"),
        (axes[2], np.abs(cv_real - cv_syn), "|difference|"),
    ):
        image = ax.imshow(matrix, vmin=0, vmax=1, cmap="viridis")
        ax.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
        ax.set_yticks(range(len(names)), names, fontsize=7)
        ax.set_title(title, fontsize=9)
    fig.colorbar(image, ax=axes, shrink=0.8)
    fig.savefig(out / "correlations.png", dpi=90)
    plt.close(fig)
    return ["marginals.png", "correlations.png"]


def _table(rows: list[tuple[str, str]]) -> str:
    body = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def write_report(
    out: Path,
    fidelity: Mapping[str, Any],
    privacy: Mapping[str, Any] | None,
    real: Mapping[str, np.ndarray],
    synthetic: Mapping[str, np.ndarray],
    shape: Mapping[str, int],
    title: str = "Synthetic data report",
) -> Path:
    """Write report.json, report.html and the PNGs into ``out``; returns the HTML path."""
    out.mkdir(parents=True, exist_ok=True)
    figures = _plots(real, synthetic, shape, out)
    document = {"fidelity": dict(fidelity), "privacy": dict(privacy) if privacy else None}
    (out / "report.json").write_text(json.dumps(document, indent=2, default=str), encoding="utf-8")
    parts = [f"<h1>{html.escape(title)}</h1>", "<h2>Fidelity</h2>"]
    parts.append(
        _table([(k, f"{v:.4f}" if isinstance(v, float) else str(v)) for k, v in fidelity.items()])
    )
    if privacy:
        parts.append("<h2>Privacy (attack success on training records vs control)</h2>")
        rows = []
        for attack in privacy["attacks"]:
            o, c = attack["original"], attack["control"]
            rows.append(
                (
                    attack["attack"],
                    f"{o['value']:.3f} [{o['low']:.3f}, {o['high']:.3f}] vs control "
                    f"{c['value']:.3f} [{c['low']:.3f}, {c['high']:.3f}]; risk {attack['risk']:.3f}"
                    + ("" if attack["within_control"] else "  ABOVE CONTROL"),
                )
            )
        rows += [
            (k, f"{v:.4f}" if isinstance(v, float) else str(v)) for k, v in privacy["dcr"].items()
        ]
        rows += [(k, str(v)) for k, v in privacy["rare_copies"].items()]
        parts.append(_table(rows))
        parts.append(f"<p>{html.escape(str(privacy.get('method', '')))}</p>")
    parts += [
        f'<h2>{html.escape(f.removesuffix(".png"))}</h2><img src="{f}" alt="{f}">' for f in figures
    ]
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>"
        + html.escape(title)
        + "</title><style>body{font-family:sans-serif;max-width:1100px;margin:auto}"
        "th{text-align:left;padding-right:1em}img{max-width:100%}</style></head><body>"
        + "".join(parts)
        + "</body></html>"
    )
    path = out / "report.html"
    path.write_text(page, encoding="utf-8")
    return path
