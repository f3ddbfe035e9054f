"""AIM: an adaptive and iterative mechanism for DP synthetic data, on Private-PGM.

McKenna, Mullins, Sheldon, Miklau, "AIM: An Adaptive and Iterative Mechanism for
Differentially Private Synthetic Data", PVLDB 15(11), 2022; the reference implementation is
``mechanisms/aim.py`` of Private-PGM. This one follows it step for step with every noisy
step an OpenDP measurement whose privacy map is summed into :class:`Spend`:

1. every 1-way marginal is measured with the Gaussian mechanism (scale ``sigma``);
2. each round picks the candidate marginal the current model gets most wrong by the
   exponential mechanism (OpenDP noisy max in zCDP, scores of sensitivity 1 after dividing
   by the largest workload weight), measures it with the Gaussian mechanism and refits the
   model (warm started); when the refit barely moved the picked marginal, ``sigma`` is
   halved ("annealing"), and the last round takes whatever budget remains.

Bounds that keep it in memory (the reference's defaults ran out of memory on Adult here):
the workload is the ``degree``-way marginals (2 or 3) of at most ``max_cells`` cells; the
candidates are their downward closure; a candidate is considered only if the model with it
stays under ``max_model_size`` megabytes scaled by the share of budget used (as the
reference's ``max_model_size``), or if the model already contains it.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from collabzone.errors import InternalError
from collabzone.techniques.synthetic.mst import (
    Spend,
    _linear,
    _marginal,
    _mbi,
    gaussian_measure,
    noisy_max,
    released,
)

Clique = tuple[str, ...]
log = logging.getLogger(__name__)


def workload_candidates(
    shape: Mapping[str, int], degree: int, max_cells: int
) -> dict[Clique, float]:
    """The candidates of AIM with their weights: every subset of a ``degree``-way workload
    marginal of at most ``max_cells`` cells, weighted by how many workload attributes it
    shares (the reference's ``compile_workload``, all workload weights 1)."""
    if degree not in (2, 3):
        raise InternalError("AIM's workload is the 2-way or the 3-way marginals")
    names = list(shape)
    workload = [
        cl
        for cl in itertools.combinations(names, min(degree, len(names)))
        if math.prod(shape[a] for a in cl) <= max_cells
    ]
    closure = {
        sub
        for cl in workload
        for r in range(1, len(cl) + 1)
        for sub in itertools.combinations(cl, r)
    }
    return {
        cl: float(sum(len(set(cl) & set(w)) for w in workload))
        for cl in sorted(closure, key=lambda c: (len(c), c))
    }


@dataclass(frozen=True)
class AIMResult:
    codes: dict[str, np.ndarray]
    spend: Spend
    measured: tuple[Clique, ...]
    """The marginals measured after the 1-way ones, in order."""
    model_mb: float
    """Size of the final model's junction tree (megabytes, as ``max_model_size``)."""
    measurements: tuple[tuple[Clique, np.ndarray], ...] = ()
    """Every noisy marginal measured (1-way, then one per round), flattened."""


def _model_size(domain: Any, cliques: list[Clique]) -> float:
    size: float = _mbi().junction_tree.hypothetical_model_size(domain, cliques)
    return size


class _Projector:
    """The model's marginal of any clique, in NumPy: jax's variable elimination compiles one
    program per clique (0.75 s each, hundreds per round); here a clique inside a fitted
    marginal is a sum, any other one an einsum of the exponentiated potentials."""

    def __init__(self, model: Any, shape: Mapping[str, int]) -> None:
        self.total = float(model.total)
        self.index = {name: i for i, name in enumerate(shape)}
        self.marginals = {
            tuple(f.domain.attributes): np.asarray(f.values, dtype=float)
            for f in model.marginals.tables.values()
        }
        self.factors = []
        for f in model.potentials.tables.values():
            values = np.asarray(f.values, dtype=float)
            self.factors.append((np.exp(values - values.max()), tuple(f.domain.attributes)))

    def __call__(self, clique: Clique) -> np.ndarray:
        for attrs, table in self.marginals.items():
            if set(clique) <= set(attrs):
                summed = table.sum(axis=tuple(i for i, a in enumerate(attrs) if a not in clique))
                kept = [a for a in attrs if a in clique]
                ordered = np.transpose(summed, [kept.index(a) for a in clique])
                return np.asarray(ordered, dtype=float).ravel()
        operands: list[Any] = []
        for table, attrs in self.factors:
            operands += [table, [self.index[a] for a in attrs]]
        joint = np.einsum(*operands, [self.index[a] for a in clique], optimize="greedy")
        flat: np.ndarray = np.asarray(joint, dtype=float).ravel()
        scaled: np.ndarray = flat * (self.total / max(float(flat.sum()), 1e-300))
        return scaled


def aim(
    codes: Mapping[str, np.ndarray],
    shape: Mapping[str, int],
    rho: float,
    *,
    rows: int | None = None,
    degree: int = 3,
    max_cells: int = 10_000,
    max_model_size: float = 16.0,
    rounds: int | None = None,
    round_iters: int = 100,
    iters: int = 500,
    seed: int | None = None,
) -> AIMResult:
    """Synthetic codes for ``codes`` (one int array per column) under rho-zCDP by AIM."""
    names = list(shape)
    if len(names) < 2:
        raise InternalError("AIM needs at least two columns")
    mbi = _mbi()
    domain = mbi.Domain(tuple(names), tuple(shape.values()))
    estimator = mbi.estimation.MirrorDescent()
    candidates = workload_candidates(shape, degree, max_cells)
    answers = {cl: _marginal(codes, shape, cl).astype(float) for cl in candidates}
    rounds = rounds or 16 * len(names)
    spend = Spend(rho)
    sigma = math.sqrt(rounds / (2 * 0.9 * rho))
    epsilon = math.sqrt(8 * 0.1 * rho / rounds)
    if len(names) * 0.5 / sigma**2 >= rho:
        raise InternalError("AIM's budget does not cover its 1-way measurements")
    measurements = []
    for name in names:
        noisy, scale = gaussian_measure(
            answers[(name,)].astype(np.int64), 0.5 / sigma**2, spend, f"1-way {name}"
        )
        measurements.append(_linear(noisy, (name,), scale))
    model = estimator.estimate(domain, measurements, iters=round_iters)
    measured: list[Clique] = []
    step = 0
    while True:
        step += 1
        remaining = rho - spend.rho
        last = remaining < 2 * (0.5 / sigma**2 + epsilon**2 / 8)
        if last:  # spend whatever is left in one last round, split as the others
            sigma = math.sqrt(1 / (2 * 0.9 * remaining))
            epsilon = math.sqrt(8 * 0.1 * remaining)
        used = spend.rho + 0.5 / sigma**2 + epsilon**2 / 8
        size_limit = max_model_size * used / rho
        cliques = [m.clique for m in measurements]
        free = {
            sub
            for cl in cliques
            for r in range(1, len(cl) + 1)
            for sub in itertools.combinations(cl, r)
        }
        eligible = [
            cl
            for cl in candidates
            if cl in free or _model_size(domain, [*cliques, cl]) <= size_limit
        ]
        weights = np.array([candidates[cl] for cl in eligible])
        project = _Projector(model, shape)
        scores = []
        for cl, weight in zip(eligible, weights, strict=True):
            bias = math.sqrt(2 / math.pi) * sigma * answers[cl].size
            error = float(np.abs(answers[cl] - project(cl)).sum())
            scores.append(weight * (error - bias) / weights.max())
        chosen = eligible[noisy_max(scores, epsilon**2 / 8, spend, f"select {step}")]
        noisy, scale = gaussian_measure(
            answers[chosen].astype(np.int64), 0.5 / sigma**2, spend, f"measure {chosen}"
        )
        measurements.append(_linear(noisy, chosen, scale))
        measured.append(chosen)
        log.debug(
            "AIM round %d: %s, sigma %.4g, rho %.6g of %.6g", step, chosen, sigma, spend.rho, rho
        )
        before = project(chosen)
        model = estimator.estimate(domain, measurements, iters=round_iters, warm_start=model)
        if last:
            break
        after = _Projector(model, shape)(chosen)
        if np.abs(after - before).sum() <= sigma * math.sqrt(2 / math.pi) * answers[chosen].size:
            sigma /= 2
            epsilon *= 2
    model = estimator.estimate(domain, measurements, iters=iters, warm_start=model)
    if seed is not None:
        np.random.seed(seed)  # mbi samples from numpy's global generator (post-processing only)
    synthetic = model.synthetic_data(rows)
    out = {name: np.asarray(synthetic.data[name], dtype=np.int64) for name in names}
    return AIMResult(
        out,
        spend,
        tuple(measured),
        _model_size(domain, [m.clique for m in measurements]),
        released(measurements),
    )
