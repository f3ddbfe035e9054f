"""Federated analytics: counts, histograms, means and quantiles over the owners' rows, by
secure sum with distributed DP noise.

Why not the Flower machinery: an analytics query is one round of sums, so a SuperLink, a
ServerApp and SecAgg+'s four message rounds add seconds and nothing the owner can check.
Each owner's node computes its local vector (a count, the histogram over the column's
declared domain, a clamped sum and count for a mean), adds its share of the Gaussian noise
(std ``noise * sensitivity / sqrt(n_clients)``, so the sum carries the full std), masks it
pairwise (:mod:`._secure_sum`) and sends it. The zone adds the masked vectors and learns
only the noisy total: neither one owner's figures nor the un-noised sum.

Privacy unit: one record. Sensitivities: 1 for a count and for a histogram (a record sits in
one bin), ``max(|min|, |max|)`` of the declared domain for a sum. Each released vector is
one Gaussian mechanism; the job composes them with the RDP accountant
(:func:`._accounting.epsilon` with sampling rate 1). A mean is released as its noisy sum
over its noisy count.

Quantiles: one noisy histogram over ``bins`` equal-width bins of the column's declared
``[min, max]`` (public bins, sensitivity 1, one mechanism whatever the number of quantiles
asked), then post-processing in the zone: negative counts clamped to 0, the cumulative sum,
and each quantile read off it by linear interpolation inside the bin where the cumulative
count crosses ``q * total`` (uniform within a bin). The error is at most a bin width plus
what the noise moves the crossing by (about ``noise * sqrt(bins) / density``).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from collabzone.techniques.federated import _accounting, _secure_sum
from collabzone.techniques.federated._data import Domain
from collabzone.techniques.federated._federation import gaussian_noise
from collabzone.techniques.federated._models import Array
from collabzone.techniques.federated._spec import JobSpec

BINS = 10
"""Equal-width bins of a numeric histogram over the declared ``[min, max]``."""


def mechanisms(spec: JobSpec) -> int:
    """How many Gaussian mechanisms the job releases (a mean is two: sum and count)."""
    return sum(2 if q["kind"] == "mean" else 1 for q in spec.queries)


def analytics_epsilon(spec: JobSpec) -> float:
    p = spec.privacy
    return _accounting.epsilon(mechanisms(spec), 1.0, p.noise_multiplier, p.delta)


def _edges(domain: Domain, bins: int) -> Array:
    if isinstance(domain, list):
        raise ValueError("histogram edges need a numeric domain")
    return np.linspace(float(domain["min"]), float(domain["max"]), bins + 1)


def _numeric(column: pd.Series) -> Array:
    values: Array = pd.to_numeric(column, errors="coerce").dropna().to_numpy(dtype=np.float64)
    return values


def quantiles_from_histogram(counts: Array, edges: Array, qs: Sequence[float]) -> list[float]:
    """The quantiles ``qs`` of a (noisy) histogram over ``edges``: negative counts clamped to
    0, linear interpolation inside the crossing bin; non-decreasing in ``q`` by construction
    (pure post-processing of the DP histogram: no privacy cost)."""
    clean = np.clip(np.asarray(counts, dtype=np.float64), 0.0, None)
    total = float(clean.sum())
    if total <= 0.0:
        return [float("nan")] * len(qs)
    cumulative = np.concatenate([[0.0], np.cumsum(clean)])
    # cumulative is non-decreasing: np.interp inverts it (flat stretches: their left edge)
    return [float(np.interp(q * total, cumulative, edges)) for q in qs]


def _bins(domain: Domain) -> list[str]:
    if isinstance(domain, list):
        return [str(c) for c in domain]
    low, high = float(domain["min"]), float(domain["max"])
    edges = np.linspace(low, high, BINS + 1)
    return [f"[{a:g}, {b:g})" for a, b in itertools.pairwise(edges)]


def local_vectors(
    spec: JobSpec, frame: pd.DataFrame, domains: Mapping[str, Domain]
) -> list[tuple[Array, float]]:
    """At a node: per mechanism, the local (vector, sensitivity)."""
    out: list[tuple[Array, float]] = []
    for q in spec.queries:
        if q["kind"] == "count":
            out.append((np.array([float(len(frame))]), 1.0))
            continue
        domain = domains[q["column"]]
        column = frame[q["column"]]
        if q["kind"] == "quantile":
            if isinstance(domain, list):
                raise ValueError(f"quantile needs a numeric column; {q['column']!r} is categorical")
            edges = _edges(domain, int(q.get("bins", 64)))
            x = np.clip(_numeric(column), edges[0], edges[-1])
            out.append((np.histogram(x, edges)[0].astype(np.float64), 1.0))
        elif q["kind"] == "histogram":
            if isinstance(domain, list):
                values = column.astype(str).str.strip()
                counts = [float((values == str(c)).sum()) for c in domain]
            else:
                x = pd.to_numeric(column, errors="coerce").dropna().to_numpy(dtype=np.float64)
                edges = np.linspace(float(domain["min"]), float(domain["max"]), BINS + 1)
                counts = (
                    np.histogram(np.clip(x, edges[0], edges[-1]), edges)[0].astype(float).tolist()
                )
            out.append((np.array(counts), 1.0))
        else:  # mean
            if isinstance(domain, list):
                raise ValueError(f"mean needs a numeric column; {q['column']!r} is categorical")
            low, high = float(domain["min"]), float(domain["max"])
            x = np.clip(
                pd.to_numeric(column, errors="coerce").dropna().to_numpy(dtype=np.float64),
                low,
                high,
            )
            out.append((np.array([float(x.sum())]), max(abs(low), abs(high))))
            out.append((np.array([float(len(x))]), 1.0))
    return out


def run(
    spec: JobSpec, frames: Mapping[str, pd.DataFrame], domains: Mapping[str, Domain]
) -> tuple[dict[str, Any], list[list[Any]]]:
    """Run the analytics job over every owner's frame; returns (payload, server's view)."""
    owners = sorted(frames)
    per_owner = [local_vectors(spec, frames[o], domains) for o in owners]
    scale = spec.privacy.noise_multiplier / math.sqrt(len(owners))
    noisy: list[Array] = []
    views: list[list[Any]] = []
    for m in range(len(per_owner[0])):
        shares = [
            vecs[m][0] + gaussian_noise(len(vecs[m][0]), scale * vecs[m][1]) for vecs in per_owner
        ]
        total, seen = _secure_sum.secure_sum(shares, round_id=m)
        noisy.append(total)
        views.append(list(seen))
    results: list[dict[str, Any]] = []
    at = 0
    for q in spec.queries:
        if q["kind"] == "count":
            results.append({"kind": "count", "value": float(noisy[at][0])})
            at += 1
        elif q["kind"] == "histogram":
            bins = _bins(domains[q["column"]])
            counts = dict(zip(bins, (float(v) for v in noisy[at]), strict=True))
            results.append({"kind": "histogram", "column": q["column"], "counts": counts})
            at += 1
        elif q["kind"] == "quantile":
            qs = [float(v) for v in q["quantiles"]]
            edges = _edges(domains[q["column"]], int(q.get("bins", 64)))
            values = quantiles_from_histogram(noisy[at], edges, qs)
            results.append({"kind": "quantile", "column": q["column"],
                            "value": dict(zip((f"{v:g}" for v in qs), values, strict=True))})  # fmt: skip
            at += 1
        else:
            noisy_sum, count = float(noisy[at][0]), float(noisy[at + 1][0])
            results.append(
                {
                    "kind": "mean",
                    "column": q["column"],
                    "value": noisy_sum / count if count >= 1 else None,
                    "noisy_count": count,
                }
            )
            at += 2
    payload = {"results": results, "clients": owners, "epsilon": analytics_epsilon(spec)}
    return payload, views


def vectors_of(seen: Sequence[Any]) -> list[Array]:
    """The server's view as float arrays (for tests comparing it with the true vectors)."""
    return [_secure_sum.decode(v) for v in seen]
