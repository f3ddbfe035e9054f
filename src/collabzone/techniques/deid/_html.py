"""The owner's visual report of a de-identification: one HTML page and its PNG charts.

``collabzone deid run CONFIG --html report.html`` writes ``report.html`` and, beside it,
``report-<chart>.png``: the equivalence class size distribution before and after, the
re-identification risk of the records before and after (prosecutor; journalist with a
population table; the marketer's expected share as a figure), the information loss of
each quasi-identifier, where the chosen transformation sits in the lattice, and (with
``--target COLUMN``) the accuracy of a classifier trained on the original versus the
de-identified quasi-identifiers (ARX's "classification accuracy" view). Charts are drawn
with matplotlib (Agg backend, no display); the page has no script and no remote resource.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from collabzone.errors import InvalidInputError

BUCKETS = ((1, 1), (2, 2), (3, 4), (5, 9), (10, 19), (20, 49), (50, 99), (100, None))
"""Class-size buckets: a record in a class of size s has prosecutor risk 1 / s."""


def _bucket_labels() -> list[str]:
    return [
        f"{lo}" if lo == hi else (f"{lo}+" if hi is None else f"{lo}-{hi}") for lo, hi in BUCKETS
    ]


def records_by_class_size(sizes: np.ndarray) -> list[float]:
    """Share of records in classes of each :data:`BUCKETS` size range."""
    sizes = np.asarray(sizes, dtype=float)
    total = float(sizes.sum()) or 1.0
    out = []
    for lo, hi in BUCKETS:
        mask = (sizes >= lo) & (sizes <= (hi if hi is not None else np.inf))
        out.append(float(sizes[mask].sum()) / total)
    return out


def classification_accuracy(
    prepared: pa.Table,
    released: pa.Table,
    rows: np.ndarray,
    features: list[str],
    target: str,
    seed: int = 0,
) -> dict[str, float]:
    """Accuracy of a logistic regression predicting ``target`` from the quasi-identifiers,
    trained and tested (70 / 30 split, fixed seed) on the released records: once on their
    original values, once on their released (generalised) values; with the majority-class
    baseline."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import OneHotEncoder

    if target not in released.column_names or target in features:
        raise InvalidInputError(
            f"--target {target!r} must be a released column that is not a quasi-identifier "
            f"(one of: {', '.join(c for c in released.column_names if c not in features)})"
        )
    y = np.array([str(v) for v in released.column(target).to_pylist()])
    if len(set(y.tolist())) < 2 or len(y) < 10:
        raise InvalidInputError(f"--target {target!r} needs at least 2 classes and 10 records")
    original = np.column_stack(
        [[str(v) for v in prepared.column(c).take(pa.array(rows)).to_pylist()] for c in features]
    )
    generalised = np.column_stack(
        [[str(v) for v in released.column(c).to_pylist()] for c in features]
    )
    index = np.arange(len(y))
    train, test = train_test_split(index, test_size=0.3, random_state=seed)
    out = {"majority": float((y[test] == max(set(y[train]), key=list(y[train]).count)).mean())}
    for name, x in (("original", original), ("de-identified", generalised)):
        enc = OneHotEncoder(handle_unknown="ignore")
        model = LogisticRegression(max_iter=300)
        model.fit(enc.fit_transform(x[train]), y[train])
        out[name] = float((model.predict(enc.transform(x[test])) == y[test]).mean())
    return out


def _charts(
    report: Mapping[str, Any],
    diag: Mapping[str, Any],
    utility: Mapping[str, float] | None,
    stem: Path,
) -> list[tuple[Path, str, str]]:
    """Draw the PNGs; returns (path, title, description) per chart."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = _bucket_labels()
    x = np.arange(len(labels))
    out: list[tuple[Path, str, str]] = []

    def save(fig: Any, name: str, title: str, text: str) -> None:
        path = stem.with_name(f"{stem.name}-{name}.png")
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        out.append((path, title, text))

    before = records_by_class_size(diag["sizes_before"])
    after = records_by_class_size(diag["sizes_after"])
    fig, ax = plt.subplots(figsize=(7, 3.4))
    ax.bar(x - 0.2, before, 0.4, label="before", color="#b0b0b0")
    ax.bar(x + 0.2, after, 0.4, label="after", color="#1f77b4")
    ax.set_xticks(x, labels)
    ax.set_xlabel("equivalence class size")
    ax.set_ylabel("share of records")
    ax.legend()
    save(
        fig,
        "class-sizes",
        "Equivalence class sizes",
        f"{before[0]:.1%} of records were unique before; {after[0]:.1%} after.",
    )

    risk_labels = [
        f"{1 / lo:.2g}" if hi is None else f"{1 / hi:.2g}-{1 / lo:.2g}" for lo, hi in BUCKETS
    ]
    fig, ax = plt.subplots(figsize=(7, 3.4))
    ax.bar(x - 0.27, before, 0.27, label="prosecutor, before", color="#b0b0b0")
    ax.bar(x, after, 0.27, label="prosecutor, after", color="#1f77b4")
    pop = diag.get("population_after")
    if pop is not None:
        ax.bar(
            x + 0.27,
            records_by_class_size(np.maximum(pop, 1)),
            0.27,
            label="journalist, after",
            color="#ff7f0e",
        )
    ax.set_xticks(x, risk_labels, rotation=30)
    ax.set_xlabel("re-identification risk of a record (1 / class size)")
    ax.set_ylabel("share of records")
    ax.legend(fontsize=8)
    risk = report["risk"]
    save(
        fig,
        "risk",
        "Re-identification risk, before and after",
        "Highest prosecutor risk {:.3g} before, {:.3g} after; marketer: {:.2%} of records "
        "expected re-identified after.".format(
            risk["before"]["prosecutor"]["highest_risk"],
            risk["after"]["prosecutor"]["highest_risk"],
            risk["after"]["marketer"]["expected_reidentified"],
        ),
    )

    qis = list(report["transformation"])
    loss = report.get("metric_per_attribute", {}).get("loss", {})
    precision = report.get("metric_per_attribute", {}).get("precision", {})
    fig, ax = plt.subplots(figsize=(7, 0.5 * len(qis) + 1.4))
    y = np.arange(len(qis))
    ax.barh(y - 0.2, [loss.get(q, 0.0) for q in qis], 0.4, label="loss", color="#d62728")
    ax.barh(y + 0.2, [precision.get(q, 0.0) for q in qis], 0.4, label="precision", color="#9467bd")
    ax.set_yticks(y, qis)
    ax.set_xlim(0, 1)
    ax.set_xlabel("information loss (0 = original, 1 = fully generalised or suppressed)")
    ax.legend(fontsize=8)
    save(
        fig,
        "loss",
        "Information loss per quasi-identifier",
        "ARX's loss and precision, per attribute.",
    )

    heights = diag["heights"]
    levels = [report["transformation"][q] for q in qis]
    fig, ax = plt.subplots(figsize=(7, 0.5 * len(qis) + 1.4))
    if all(isinstance(v, int) for v in levels):
        ax.barh(y, [heights[q] for q in qis], color="#e0e0e0", label="hierarchy height")
        ax.barh(y, levels, color="#2ca02c", label="chosen level")
        node = f"node {levels} at height {sum(levels)} of {sum(heights.values())}"
    else:
        node = "local recoding (Mondrian): no lattice node"
    ax.set_yticks(y, qis)
    ax.set_xlabel("generalisation level")
    ax.legend(fontsize=8)
    save(
        fig,
        "lattice",
        "Position of the chosen transformation in the lattice",
        f"{node}; {report.get('nodes_checked')} of {report.get('lattice_size')} nodes checked.",
    )

    if utility is not None:
        fig, ax = plt.subplots(figsize=(5, 3))
        names = ["majority", "original", "de-identified"]
        ax.bar(names, [utility[n] for n in names], color=["#b0b0b0", "#7f7f7f", "#1f77b4"])
        ax.set_ylim(0, 1)
        ax.set_ylabel("accuracy on held-out records")
        save(
            fig,
            "utility",
            "Classification accuracy, original vs de-identified",
            "Logistic regression on the quasi-identifiers: original {original:.3f}, "
            "de-identified {de-identified:.3f}, majority class {majority:.3f}.".format(**utility),
        )
    return out


def write_html(
    path: Path,
    report: Mapping[str, Any],
    diag: Mapping[str, Any],
    released: pa.Table,
    target: str | None = None,
) -> list[Path]:
    """Write the HTML report at ``path`` and its PNGs beside it; returns every file."""
    qis = list(report["transformation"])
    utility = None
    if target is not None:
        utility = classification_accuracy(diag["prepared"], released, diag["rows"], qis, target)
    path.parent.mkdir(parents=True, exist_ok=True)
    charts = _charts(report, diag, utility, path.with_suffix(""))
    rows = [
        (
            "rows in / released / suppressed",
            f"{report['rows_in']} / {report['rows_out']} / {report['suppressed_rows']}",
        ),
        (
            "equivalence classes (smallest)",
            f"{report['equivalence_classes']} ({report['min_class_size']})",
        ),
        ("transformation", ", ".join(f"{q} {v}" for q, v in report["transformation"].items())),
        (
            "metric",
            f"{report['metric']} ({report.get('aggregate') or 'single value'}): {report['score']:.6g}",
        ),
        ("requirements", ", ".join(f"{k} {v}" for k, v in report["requirements"].items())),
    ]
    table = "\n".join(
        f'<tr><th scope="row">{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>'
        for k, v in rows
    )
    figures = "\n".join(
        f'<figure><h2>{html.escape(title)}</h2><img src="{html.escape(p.name)}" '
        f'alt="{html.escape(title)}: {html.escape(text)}"><figcaption>{html.escape(text)}'
        "</figcaption></figure>"
        for p, title, text in charts
    )
    path.write_text(
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        "<title>De-identification report</title><style>body{font-family:sans-serif;"
        "max-width:900px;margin:2em auto;padding:0 1em}th{text-align:left;padding-right:1em}"
        "img{max-width:100%}figure{margin:2em 0}</style></head><body>"
        f"<h1>De-identification report</h1><table>{table}</table>{figures}</body></html>\n",
        encoding="utf-8",
    )
    return [path, *(p for p, _, _ in charts)]
