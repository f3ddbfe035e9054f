"""The model families the zone ships for federated jobs: numpy code the owners can read.

Only families listed in :data:`FAMILIES` can be named by a job (an analyst cannot send
code to the owners' nodes). Parameters are a list of float64 arrays, the form Flower's
``ArrayRecord``/``ndarrays`` carry; every client starts a round from the global parameters
and returns its new parameters after ``epochs`` passes of mini-batch gradient descent on
its own rows. FedProx adds ``mu/2 * ||w - w_global||^2`` to the local loss.

Binary classification (labels 0/1) with a logistic output; features are standardised by the
job's public bounds before they reach these functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]
Params = list[Array]

FAMILIES = ("logreg", "mlp")
"""Allow-list of model families (see :func:`init_params`)."""


def _sigmoid(z: Array) -> Array:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -30.0, 30.0)))


def init_params(family: str, n_features: int, hidden: int = 16, seed: int = 0) -> Params:
    """Initial global parameters (fixed seed: every run of a job starts alike)."""
    if family == "logreg":
        return [np.zeros(n_features), np.zeros(1)]
    if family == "mlp":
        rng = np.random.default_rng(seed)
        scale = np.sqrt(2.0 / n_features)
        return [
            rng.normal(0.0, scale, (n_features, hidden)),
            np.zeros(hidden),
            rng.normal(0.0, np.sqrt(1.0 / hidden), hidden),
            np.zeros(1),
        ]
    raise ValueError(f"unknown model family {family!r}; allowed: {', '.join(FAMILIES)}")


def predict_proba(params: Sequence[Array], x: Array) -> Array:
    """P(label = 1) for each row of ``x``."""
    if len(params) == 2:
        return _sigmoid(x @ params[0] + params[1][0])
    w1, b1, w2, b2 = params
    hidden = np.maximum(x @ w1 + b1, 0.0)
    return _sigmoid(hidden @ w2 + b2[0])


def _gradients(params: Sequence[Array], x: Array, y: Array) -> Params:
    """Gradients of the mean binary cross-entropy on (x, y)."""
    n = max(len(y), 1)
    if len(params) == 2:
        err = _sigmoid(x @ params[0] + params[1][0]) - y
        return [x.T @ err / n, np.array([err.sum() / n])]
    w1, b1, w2, b2 = params
    pre = x @ w1 + b1
    hidden = np.maximum(pre, 0.0)
    err = _sigmoid(hidden @ w2 + b2[0]) - y
    g_w2 = hidden.T @ err / n
    g_b2 = np.array([err.sum() / n])
    back = np.outer(err, w2) * (pre > 0)
    return [x.T @ back / n, back.sum(axis=0) / n, g_w2, g_b2]


@dataclass(frozen=True)
class LocalTraining:
    """How a client trains in one round (all from the signed job spec)."""

    epochs: int = 1
    batch_size: int = 64
    learning_rate: float = 0.1
    proximal_mu: float = 0.0


def train_local(
    params: Sequence[Array], x: Array, y: Array, how: LocalTraining, seed: int
) -> Params:
    """``how.epochs`` passes of mini-batch SGD from ``params``; returns new parameters."""
    start = [p.copy() for p in params]
    current = [p.copy() for p in params]
    rng = np.random.default_rng(seed)
    for _ in range(how.epochs):
        order = rng.permutation(len(y))
        for at in range(0, len(y), how.batch_size):
            batch = order[at : at + how.batch_size]
            grads = _gradients(current, x[batch], y[batch])
            for i, g in enumerate(grads):
                if how.proximal_mu:
                    g = g + how.proximal_mu * (current[i] - start[i])
                current[i] = current[i] - how.learning_rate * g
    return current


def log_loss(params: Sequence[Array], x: Array, y: Array) -> float:
    """Mean binary cross-entropy of the model on (x, y)."""
    p = np.clip(predict_proba(params, x), 1e-12, 1 - 1e-12)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def accuracy(params: Sequence[Array], x: Array, y: Array) -> float:
    """Share of rows classified right at threshold 0.5."""
    return float(np.mean((predict_proba(params, x) >= 0.5) == (y >= 0.5)))


def flatten(params: Sequence[Array]) -> Array:
    """All parameters as one vector (for clipping and norms)."""
    return np.concatenate([np.ravel(p) for p in params])


def unflatten(vector: Array, like: Sequence[Array]) -> Params:
    """The inverse of :func:`flatten` for parameters shaped like ``like``."""
    out, at = [], 0
    for p in like:
        out.append(vector[at : at + p.size].reshape(p.shape).astype(np.float64))
        at += p.size
    return out
