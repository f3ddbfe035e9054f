"""The round loop of a federated training job, in one process (tests, benchmarks, demo).

Same arithmetic as the Flower deployment (:mod:`._flower`): each sampled client trains
from the global parameters on its own rows, clips its update (new - global) to the job's
L2 ``clipping_norm``, and the updates are summed by secure aggregation (pairwise masks,
:mod:`._secure_sum`); Gaussian noise of std ``noise_multiplier * clipping_norm`` (OpenDP's
sampler) is added to the sum, which is divided by the number of clients (FedAvg/FedProx)
or fed to the server's Adam optimiser (FedAdam).

Budget: before the first round the job computes how many rounds fit in the epsilon it may
spend (:func:`._accounting.max_rounds`); it stops before the round that would exceed it,
and says so in ``stopped``. Every round leaves an audit record (who took part, clipping,
noise, epsilon so far), never an update.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from collabzone._opendp import dp
from collabzone.techniques.federated import _accounting, _models, _secure_sum
from collabzone.techniques.federated._models import Array, Params
from collabzone.techniques.federated._spec import JobSpec


@dataclass
class ClientData:
    """One owner's encoded rows (held by its node; never leaves it)."""

    owner: str
    x: Array
    y: Array


@dataclass
class TrainingResult:
    """What a training job produced: the model, per-round records and the privacy spent."""

    params: Params
    rounds: list[dict[str, Any]] = field(default_factory=list)
    epsilon: float = 0.0
    stopped: str | None = None
    server_view: list[list[_secure_sum.U64]] = field(default_factory=list)
    """What the aggregator received, per round (masked vectors): kept for the tests."""


def gaussian_noise(size: int, std: float) -> Array:
    """Gaussian noise of standard deviation ``std`` from OpenDP's vetted sampler."""
    if std <= 0:
        return np.zeros(size)
    measurement = dp.m.make_gaussian(
        dp.vector_domain(dp.atom_domain(T=float, nan=False)), dp.l2_distance(T=float), std
    )
    return np.asarray(measurement([0.0] * size), dtype=np.float64)


def clip(update: Array, norm: float) -> Array:
    """Scale ``update`` down to L2 norm ``norm`` (never up)."""
    length = float(np.linalg.norm(update))
    return update if length <= norm else update * (norm / length)


class _Adam:
    """Flower's FedAdam server optimiser (eta 0.1, beta1 0.9, beta2 0.99, tau 1e-9)."""

    def __init__(self, size: int, eta: float = 0.1) -> None:
        self.m = np.zeros(size)
        self.v = np.zeros(size)
        self.eta = eta

    def step(self, delta: Array) -> Array:
        self.m = 0.9 * self.m + 0.1 * delta
        self.v = 0.99 * self.v + 0.01 * delta * delta
        return self.eta * self.m / (np.sqrt(self.v) + 1e-9)


def client_update(
    spec: JobSpec, global_flat: Array, like: Sequence[Array], data: ClientData, seed: int
) -> Array:
    """One client's clipped update for one round (runs at the owner's node)."""
    how = _models.LocalTraining(
        epochs=spec.local_epochs,
        learning_rate=spec.learning_rate,
        proximal_mu=spec.proximal_mu if spec.strategy == "FedProx" else 0.0,
    )
    start = _models.unflatten(global_flat, like)
    new = _models.flatten(_models.train_local(start, data.x, data.y, how, seed))
    return clip(new - global_flat, spec.privacy.clipping_norm)


def train(
    spec: JobSpec,
    clients: Mapping[str, ClientData],
    epsilon_budget: float,
    seed: int = 0,
    on_round: Callable[[dict[str, Any], Params], None] | None = None,
) -> TrainingResult:
    """Run the job's rounds over ``clients`` (see the module docstring); ``on_round`` is
    called after each round with its record and the (DP) global parameters."""
    privacy = spec.privacy
    n_features = next(iter(clients.values())).x.shape[1]
    like = _models.init_params(spec.model, n_features, seed=seed)
    flat = _models.flatten(like)
    planned = _accounting.max_rounds(
        epsilon_budget, privacy.sampling_rate, privacy.noise_multiplier, privacy.delta, spec.rounds
    )
    result = TrainingResult(params=like)
    if planned < spec.rounds:
        result.stopped = (
            f"privacy budget: {planned} of {spec.rounds} rounds fit in epsilon {epsilon_budget:g}"
        )
    adam = _Adam(flat.size) if spec.strategy == "FedAdam" else None
    rng = np.random.default_rng(secrets.randbits(64))  # client sampling only
    names = sorted(clients)
    maskers = {n: _secure_sum.MaskingClient(i) for i, n in enumerate(names)}
    for round_no in range(1, planned + 1):
        chosen = (
            names
            if privacy.sampling_rate >= 1.0
            else [n for n in names if rng.random() < privacy.sampling_rate]
        )
        epsilon_now = _accounting.epsilon(
            round_no, privacy.sampling_rate, privacy.noise_multiplier, privacy.delta
        )
        record: dict[str, Any] = {
            "round": round_no,
            "clients": chosen,
            "clipping_norm": privacy.clipping_norm,
            "noise_std": privacy.noise_multiplier * privacy.clipping_norm,
            "epsilon": epsilon_now,
        }
        if len(chosen) < spec.min_clients:
            record["skipped"] = f"fewer than {spec.min_clients} clients sampled"
            result.rounds.append(record)
            if on_round is not None:
                on_round(record, _models.unflatten(flat, like))
            continue
        updates = [
            client_update(spec, flat, like, clients[n], seed * 1000 + round_no * 31 + i)
            for i, n in enumerate(chosen)
        ]
        if spec.secure_aggregation:
            total, seen = _secure_sum.secure_sum(
                updates, round_id=round_no, clients=[maskers[n] for n in chosen]
            )
            result.server_view.append(list(seen))
        else:
            total = np.sum(updates, axis=0)
        total = total + gaussian_noise(flat.size, privacy.noise_multiplier * privacy.clipping_norm)
        mean = total / len(chosen)
        flat = flat + (adam.step(mean) if adam is not None else mean)
        result.rounds.append(record)
        result.epsilon = epsilon_now
        if on_round is not None:
            on_round(record, _models.unflatten(flat, like))
    result.params = _models.unflatten(flat, like)
    return result
