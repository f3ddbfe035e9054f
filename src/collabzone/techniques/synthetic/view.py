"""What the requester sees of a synthetic release: a report made only of released things.

The real table's marginals, its fidelity scores against the synthetic table and the
attacks of the privacy report are functions of the raw data that the DP guarantee does not
cover, so they are never put in the payload (the owner runs ``collabzone synth report``
on its own machine for those). The console's report compares the synthetic table with the
**noisy marginals the mechanism measured** instead: they were paid for by the same budget
(the guarantee covers every measurement), so showing them is post-processing. Its figures:

* the 1-way marginals, measured (noisy) vs synthetic, side by side;
* the synthetic table's Cramér's V association heat map;
* the mean total variation distance between the synthetic table and the measured 1-way
  and multi-way marginals (how closely the model fits what it was given; not the distance
  to the real data, which differs from the measurements by the noise);
* the privacy facts: the budget (epsilon, delta, rho), the number of OpenDP measurements.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from collabzone.techniques.synthetic.encode import OTHER, TableCodec
from collabzone.techniques.synthetic.fidelity import cramers_v
from collabzone.techniques.view import ImageView, ResultView, cell, default_view


def _labels(codec: TableCodec, name: str) -> list[str]:
    column = next(c for c in codec.columns if c.name == name)
    if column.categories:
        return ["other" if c == OTHER else str(c) for c in column.categories]
    edges = column.edges
    return [f"[{edges[i]:.4g}, {edges[i + 1]:.4g})" for i in range(len(edges) - 1)]


def _share(counts: Any) -> list[float]:
    from collabzone.techniques.synthetic.figures import shares

    return [float(v) for v in shares(counts)]


def report_payload(
    codec: TableCodec,
    synthetic: Mapping[str, np.ndarray],
    measurements: Sequence[tuple[tuple[str, ...], np.ndarray]],
    privacy: Mapping[str, Any],
) -> dict[str, Any]:
    """The JSON report of a release: synthetic codes against the measured noisy marginals."""
    shape = codec.shape

    def synthetic_share(clique: tuple[str, ...]) -> list[float]:
        sizes = [shape[a] for a in clique]
        flat = np.ravel_multi_index(tuple(np.asarray(synthetic[a]) for a in clique), sizes)
        return _share(np.bincount(flat, minlength=int(np.prod(sizes))))

    one_way = []
    tvd: dict[int, list[float]] = {}
    for clique, noisy in measurements:
        measured, fitted = _share(noisy), synthetic_share(clique)
        tvd.setdefault(len(clique), []).append(
            0.5 * float(np.abs(np.asarray(measured) - np.asarray(fitted)).sum())
        )
        if len(clique) == 1:
            (name,) = clique
            one_way.append(
                {
                    "column": name,
                    "labels": _labels(codec, name),
                    "measured": measured,
                    "synthetic": fitted,
                }
            )
    fidelity = {f"tvd_{k}way_vs_measured": float(np.mean(v)) for k, v in sorted(tvd.items())} | {
        f"measured_{k}way_marginals": len(v) for k, v in sorted(tvd.items())
    }
    return {
        "one_way": one_way,
        "association": {
            "columns": list(shape),
            "cramers_v": cramers_v(synthetic, shape).round(4).tolist(),
        },
        "fidelity": fidelity,
        "privacy": dict(privacy),
    }


def result_view(payload: Mapping[str, Any]) -> ResultView:
    """Facts (method, budget, fidelity to the measurements), a sample of the rows, and the
    report's two figures as PNGs."""
    from collabzone.techniques.synthetic.figures import association_png, marginals_png

    base = default_view({k: v for k, v in payload.items() if k != "report"})
    report = payload.get("report")
    if not isinstance(report, Mapping):
        return base
    facts = list(base.facts)
    for section in ("privacy", "fidelity"):
        for key, value in dict(report.get(section) or {}).items():
            facts.append((key.replace("_", " "), cell(value)))
    images = []
    one_way = list(report.get("one_way") or [])
    if one_way:
        panels = [(m["column"], m["measured"], m["synthetic"]) for m in one_way]
        images.append(
            ImageView(
                "1-way marginals: measured (noisy) vs synthetic",
                marginals_png(panels, ("measured (noisy)", "synthetic")),
                "bar charts, one per column, of the noisy measured shares next to the "
                "synthetic table's shares: " + ", ".join(str(m["column"]) for m in one_way),
            )
        )
    association = report.get("association") or {}
    names, matrix = association.get("columns"), association.get("cramers_v")
    if names and matrix:
        images.append(
            ImageView(
                "Association heat map (Cramér's V) of the synthetic table",
                association_png(names, [("synthetic (Cramér's V)", np.asarray(matrix))]),
                "heat map of Cramér's V between every two columns of the synthetic table",
            )
        )
    return ResultView(facts=tuple(facts), tables=base.tables, images=tuple(images))
