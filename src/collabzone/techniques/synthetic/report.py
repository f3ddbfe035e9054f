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
    from collabzone.techniques.synthetic.fidelity import cramers_v
    from collabzone.techniques.synthetic.figures import association_png, marginals_png, shares

    names = list(shape)
    panels = [
        (
            name,
            shares(np.bincount(real[name], minlength=shape[name])),
            shares(np.bincount(synthetic[name], minlength=shape[name])),
        )
        for name in names
    ]
    (out / "marginals.png").write_bytes(marginals_png(panels))
    cv_real, cv_syn = cramers_v(real, shape), cramers_v(synthetic, shape)
    matrices = [
        ("real (Cramér's V)", cv_real),
        ("synthetic", cv_syn),
        ("|difference|", np.abs(cv_real - cv_syn)),
    ]
    (out / "correlations.png").write_bytes(association_png(names, matrices))
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
