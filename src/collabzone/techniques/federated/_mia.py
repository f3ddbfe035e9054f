"""The membership-inference check of a federated training job, for the owners' risk summary.

Before approval the zone holds no row of the owners, so it attacks a **stand-in**: the job's
exact configuration (model family, strategy, rounds, local epochs, learning rate, clipping,
noise) trained in-process on rows drawn uniformly from the declared public domains with
**random labels**, so that whatever the model learns about a record is memorisation: the
worst case for membership. The loss-threshold attacker
(:func:`collabzone.attacks.loss_threshold_advantage`) then tells the training rows from
fresh rows of the same draw, once with the job's noise and once without it; its
``chance_level`` (the same attack between two sets of non-members) is the floor below which
an advantage means nothing. The owners also
see the bound DP puts on *any* attacker at the job's epsilon
(:func:`collabzone.attacks.dp_advantage_bound`): client-level DP protects an owner's whole
dataset, hence each of its records too.

The figures for UCI Adult (members: the owners' training rows; non-members: held-out rows)
are in docs/federated.md ("Membership inference"), from benchmarks/federated.py.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from collabzone.attacks import dp_advantage_bound, loss_threshold_advantage
from collabzone.techniques.federated import _data, _federation, _models
from collabzone.techniques.federated._federation import ClientData
from collabzone.techniques.federated._models import Array, Params
from collabzone.techniques.federated._spec import JobSpec

STAND_IN_ROWS = 100
"""Rows per owner in the stand-in (small owners memorise most: the cautious side)."""


def record_losses(params: Params, x: Array, y: Array) -> Array:
    """Each record's binary cross-entropy under the model (what the attacker thresholds)."""
    p = np.clip(_models.predict_proba(params, x), 1e-12, 1 - 1e-12)
    losses: Array = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    return losses


def _stand_in(
    spec: JobSpec, domains: Mapping[str, Any], rows: int, rng: np.random.Generator
) -> ClientData:
    frame: dict[str, Any] = {}
    for name in spec.features:
        domain = domains[name]
        if isinstance(domain, list):
            frame[name] = rng.choice([str(c) for c in domain], rows)
        else:
            frame[name] = rng.uniform(float(domain["min"]), float(domain["max"]), rows)
    table = pd.DataFrame(frame)
    x = _data.encode(table, spec.features, domains)
    return ClientData("stand-in", x, rng.integers(0, 2, rows).astype(np.float64))


def membership_check(
    spec: JobSpec, domains: Mapping[str, Any], epsilon: float, seed: int = 0
) -> dict[str, Any]:
    """The stand-in attack with and without the job's noise, and the DP bound."""
    rng = np.random.default_rng(seed)
    clients = {
        str(i): _stand_in(spec, domains, STAND_IN_ROWS, rng) for i in range(len(spec.datasets))
    }
    fresh = _stand_in(spec, domains, STAND_IN_ROWS * len(clients), rng)
    other = _stand_in(spec, domains, STAND_IN_ROWS * len(clients), rng)
    members_x = np.vstack([c.x for c in clients.values()])
    members_y = np.concatenate([c.y for c in clients.values()])
    out: dict[str, Any] = {
        "attack": "loss threshold (Yeom et al. 2018), best threshold in hindsight",
        "stand_in": f"{STAND_IN_ROWS} rows per owner drawn from the declared domains, "
        "random labels",
        "dp_bound": dp_advantage_bound(epsilon, spec.privacy.delta),
    }
    for label, noise in (("with_dp", spec.privacy.noise_multiplier), ("without_dp", 0.0)):
        privacy = dataclasses.replace(spec.privacy, noise_multiplier=noise)
        job = dataclasses.replace(spec, privacy=privacy, secure_aggregation=False)
        params = _federation.train(job, clients, float("inf"), seed=seed).params
        out[f"advantage_{label}"] = loss_threshold_advantage(
            record_losses(params, members_x, members_y), record_losses(params, fresh.x, fresh.y)
        )
        if label == "with_dp":  # two sets of non-members: what the attack "finds" by chance
            out["chance_level"] = loss_threshold_advantage(
                record_losses(params, other.x, other.y), record_losses(params, fresh.x, fresh.y)
            )
    return out
