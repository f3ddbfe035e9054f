"""MST: differentially private synthetic data from a maximum spanning tree of 2-way marginals.

McKenna, Miklau, Sheldon, "Winning the NIST Contest: A scalable and general approach to
differentially private synthetic data", J. Privacy and Confidentiality 11(3), 2021.
The zCDP budget ``rho`` is split in thirds: (1) every 1-way marginal is measured with the
Gaussian mechanism, (2) ``d - 1`` pairs are chosen one by one (Kruskal order, never closing a
cycle) by the exponential mechanism scored on how badly the 1-way model gets the pair's
2-way marginal wrong, (3) the chosen 2-way marginals are measured with the Gaussian
mechanism. Private-PGM (``mbi``) then fits a graphical model to the noisy marginals and
samples the synthetic table: pure post-processing.

Every mechanism is OpenDP's (discrete Gaussian; noisy max in zCDP) and its own privacy map
is summed into :class:`Spend`, which must not exceed ``rho``.
"""

from __future__ import annotations

import itertools
import math
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from collabzone._opendp import dp
from collabzone.errors import InternalError

os.environ.setdefault("JAX_ENABLE_COMPILATION_CACHE", "false")
XLA_LEAN = "--xla_cpu_use_fusion_emitters=false"
"""XLA's CPU fusion emitters (MLIR) off: compiling mbi's mirror descent then peaks about
0.2 GB lower on Adult (MST 1.02 -> 0.81 GB) at the same CPU time (docs/benchmarks.md).
Read when JAX creates its CPU backend, so it is set before mbi is first imported; a flag
the operator set in XLA_FLAGS wins."""
if "xla_cpu_use_fusion_emitters" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {XLA_LEAN}".strip()


@dataclass
class Spend:
    """The zCDP loss of each mechanism run, as OpenDP's privacy maps report it."""

    budget: float
    parts: list[tuple[str, float]] = field(default_factory=list)

    @property
    def rho(self) -> float:
        return math.fsum(r for _, r in self.parts)

    def charge(self, what: str, rho: float) -> None:
        self.parts.append((what, rho))
        if self.rho > self.budget * (1 + 1e-9):
            raise InternalError(
                f"the mechanism would spend rho {self.rho} beyond its {self.budget}"
            )


def _marginal(
    codes: Mapping[str, np.ndarray], shape: Mapping[str, int], clique: tuple[str, ...]
) -> np.ndarray:
    sizes = [shape[a] for a in clique]
    flat = np.ravel_multi_index(tuple(codes[a] for a in clique), sizes)
    return np.bincount(flat, minlength=int(np.prod(sizes))).astype(np.int64)


def gaussian_measure(
    counts: np.ndarray, rho: float, spend: Spend, what: str
) -> tuple[np.ndarray, float]:
    """Noisy ``counts`` with rho-zCDP (one record moves one cell by one: L2 sensitivity 1)."""
    scale = math.sqrt(1 / (2 * rho))
    measurement = dp.m.make_gaussian(
        dp.vector_domain(dp.atom_domain(T=int)), dp.l2_distance(T=int), scale=scale
    )
    spend.charge(what, float(measurement.map(1)))
    return np.asarray(measurement(counts.tolist()), dtype=float), scale


def noisy_max(scores: list[float], rho: float, spend: Spend, what: str) -> int:
    """Index of a high score by the exponential mechanism (OpenDP noisy max, zCDP);
    each score moves by at most 1 when one record is added or removed."""
    scale = math.sqrt(1 / (2 * rho))
    measurement = dp.m.make_noisy_max(
        dp.vector_domain(dp.atom_domain(T=float, nan=False)),
        dp.linf_distance(T=float, monotonic=False),
        dp.zero_concentrated_divergence(),
        scale=scale,
    )
    spend.charge(what, float(measurement.map(1.0)))
    return int(measurement([float(s) for s in scores]))


def _mbi() -> Any:
    """mbi, imported without its float32 warning: it concerns fits on over 100k rows of one
    marginal's cells; our marginals hold noisy counts of at most the dataset's rows and
    float64 would double the model's memory."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="JAX is running in float32 mode")
        import mbi
    return mbi


def _estimate(shape: Mapping[str, int], measurements: list[Any], iters: int) -> Any:
    mbi = _mbi()
    domain = mbi.Domain(tuple(shape), tuple(shape.values()))
    estimator = mbi.estimation.MirrorDescent()
    return estimator.estimate(domain, measurements, iters=iters)


def _linear(noisy: np.ndarray, clique: tuple[str, ...], scale: float) -> Any:
    mbi = _mbi()
    return mbi.LinearMeasurement(noisy, clique, stddev=scale)


def released(measurements: list[Any]) -> tuple[tuple[tuple[str, ...], np.ndarray], ...]:
    """The noisy marginals the mechanism measured, by clique: part of what the privacy
    budget paid for, so showing them to the requester costs nothing more."""
    return tuple(
        (tuple(m.clique), np.asarray(m.noisy_measurement, dtype=float)) for m in measurements
    )


@dataclass(frozen=True)
class MSTResult:
    codes: dict[str, np.ndarray]
    spend: Spend
    tree: tuple[tuple[str, str], ...]
    measurements: tuple[tuple[tuple[str, ...], np.ndarray], ...] = ()
    """Every noisy marginal measured (1-way, then the tree's 2-way), flattened."""


def mst(
    codes: Mapping[str, np.ndarray],
    shape: Mapping[str, int],
    rho: float,
    *,
    rows: int | None = None,
    iters: int = 500,
    seed: int | None = None,
) -> MSTResult:
    """Synthetic codes for ``codes`` (one int array per column) under rho-zCDP."""
    names = list(shape)
    spend = Spend(rho)
    if len(names) < 2:
        raise InternalError("MST needs at least two columns")
    third = rho / 3
    measurements = []
    rho_one = third / len(names)
    for name in names:
        noisy, scale = gaussian_measure(
            _marginal(codes, shape, (name,)), rho_one, spend, f"1-way {name}"
        )
        measurements.append(_linear(noisy, (name,), scale))
    # selection: d - 1 exponential-mechanism rounds, each over the pairs not closing a cycle
    parent = {n: n for n in names}

    def root(n: str) -> str:
        while parent[n] != n:
            parent[n] = parent[parent[n]]
            n = parent[n]
        return n

    pairs = list(itertools.combinations(names, 2))
    # the 1-way model is a product of independent columns, each noisy 1-way marginal
    # clipped at zero (post-processing); its 2-way marginals are outer products, computed
    # here directly (asking mbi would compile one program per pair)
    one_way = {
        n: np.clip(np.asarray(m.noisy_measurement, dtype=float), 0, None)
        for n, m in zip(names, measurements, strict=True)
    }
    error = {}
    for a, b in pairs:
        truth = _marginal(codes, shape, (a, b)).astype(float)
        fitted = np.outer(one_way[a], one_way[b]).ravel() / max(one_way[a].sum(), 1e-9)
        error[(a, b)] = float(np.abs(truth - fitted).sum())
    rho_pick = third / (len(names) - 1)
    tree: list[tuple[str, str]] = []
    for step in range(len(names) - 1):
        candidates = [p for p in pairs if root(p[0]) != root(p[1])]
        chosen = candidates[
            noisy_max([error[p] for p in candidates], rho_pick, spend, f"select {step}")
        ]
        parent[root(chosen[0])] = root(chosen[1])
        tree.append(chosen)
    rho_two = third / len(tree)
    for pair in tree:
        noisy, scale = gaussian_measure(
            _marginal(codes, shape, pair), rho_two, spend, f"2-way {pair}"
        )
        measurements.append(_linear(noisy, pair, scale))
    model = _estimate(shape, measurements, iters)
    if seed is not None:
        np.random.seed(seed)  # mbi samples from numpy's global generator (post-processing only)
    synthetic = model.synthetic_data(rows)
    out = {name: np.asarray(synthetic.data[name], dtype=np.int64) for name in names}
    return MSTResult(out, spend, tuple(tree), released(measurements))
