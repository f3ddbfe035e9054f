"""A federated job's spec: validated, canonical, hashed and signed by the zone.

The spec is everything that decides what runs at an owner's node: the task (``train`` or
``analytics``), the datasets (one per owner, registered at its node), the feature and label
columns, the model family (from the allow-list), the strategy, rounds, local epochs,
minimum clients and the privacy settings. Owners approve the plan that shows it; the zone
signs the SHA-256 of its canonical JSON with an Ed25519 key, and a node runs a job only if
the spec it receives hashes to a value the zone signed (:func:`verify`): a spec changed
after approval (one more round, one more column) is refused at the node.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from collabzone.errors import InvalidInputError, NotAuthorisedError
from collabzone.techniques.federated._models import FAMILIES

STRATEGIES = ("FedAvg", "FedProx", "FedAdam")
TASKS = ("train", "analytics")
ANALYTICS = ("count", "histogram", "mean", "quantile")
QUANTILE_BINS = (2, 1000)
"""Bounds on a quantile query's ``bins`` (public, equal-width over the declared domain)."""
MAX_ROUNDS = 200
SIGNING_PURPOSE = "federated-job-signing"


@dataclass(frozen=True)
class Privacy:
    """Client-level DP settings: fixed clipping and Gaussian noise on the aggregate."""

    clipping_norm: float = 1.0
    noise_multiplier: float = 1.0
    delta: float = 1e-5
    sampling_rate: float = 1.0
    """Share of the job's clients sampled per round (1.0: all of them)."""


@dataclass(frozen=True)
class JobSpec:
    """One federated job, as approved (see the module docstring)."""

    task: str
    datasets: tuple[str, ...]
    features: tuple[str, ...] = ()
    label: str | None = None
    model: str = "logreg"
    strategy: str = "FedAvg"
    rounds: int = 5
    local_epochs: int = 1
    min_clients: int = 2
    learning_rate: float = 0.1
    proximal_mu: float = 0.0
    secure_aggregation: bool = True
    privacy: Privacy = field(default_factory=Privacy)
    queries: tuple[Mapping[str, Any], ...] = ()
    """For ``analytics``: ``{"kind": "count"|"histogram"|"mean", "column": ...}`` or
    ``{"kind": "quantile", "column": ..., "quantiles": [0.5, ...], "bins": 64}``."""
    evaluation: str | None = None
    """A dataset the analyst owns in the zone, scored by the global model after each round
    (the per-round accuracy and loss; the models are DP outputs, so this costs nothing)."""

    def as_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["queries"] = [dict(q) for q in self.queries]
        return doc

    def canonical(self) -> bytes:
        return json.dumps(self.as_json(), sort_keys=True, separators=(",", ":")).encode()

    def digest(self) -> str:
        """SHA-256 (hex) of the canonical JSON: what the zone signs and owners approve."""
        return hashlib.sha256(self.canonical()).hexdigest()


def _number(doc: Mapping[str, Any], name: str, default: float, low: float, high: float) -> float:
    value = doc.get(name, default)
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not low <= value <= high
    ):
        raise InvalidInputError(f"`{name}` must be a number from {low:g} to {high:g}")
    return float(value)


def _integer(doc: Mapping[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = doc.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInputError(f"`{name}` must be an integer from {low} to {high}")
    return value


def _names(doc: Mapping[str, Any], name: str) -> tuple[str, ...]:
    value = doc.get(name, [])
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise InvalidInputError(f"`{name}` must be a list of names")
    if not all(isinstance(v, str) and v for v in value) or len(set(value)) != len(value):
        raise InvalidInputError(f"`{name}` must list distinct, non-empty names")
    return tuple(value)


def parse(doc: Mapping[str, Any]) -> JobSpec:
    """Validate a submitted spec; raises InvalidInputError naming what to change."""
    task = doc.get("task", "train")
    if task not in TASKS:
        raise InvalidInputError(f"`task` must be one of {', '.join(TASKS)}")
    datasets = _names(doc, "datasets")
    if len(datasets) < 2:
        raise InvalidInputError("a federated job needs `datasets` of at least two owners")
    raw_privacy = doc.get("privacy", {})
    if not isinstance(raw_privacy, Mapping):
        raise InvalidInputError("`privacy` must be an object")
    privacy = Privacy(
        clipping_norm=_number(raw_privacy, "clipping_norm", 1.0, 1e-6, 1e6),
        noise_multiplier=_number(raw_privacy, "noise_multiplier", 1.0, 0.0, 1e4),
        delta=_number(raw_privacy, "delta", 1e-5, 1e-12, 0.1),
        sampling_rate=_number(raw_privacy, "sampling_rate", 1.0, 1e-6, 1.0),
    )
    common = {
        "task": task,
        "datasets": datasets,
        "min_clients": _integer(doc, "min_clients", len(datasets), 2, len(datasets)),
        "secure_aggregation": bool(doc.get("secure_aggregation", True)),
        "privacy": privacy,
    }
    if task == "analytics":
        queries = doc.get("queries")
        if not isinstance(queries, list) or not queries:
            raise InvalidInputError("analytics needs `queries`: [{kind, column}, ...]")
        for q in queries:
            if not isinstance(q, Mapping) or q.get("kind") not in ANALYTICS:
                raise InvalidInputError(f"each query needs `kind` in {', '.join(ANALYTICS)}")
            if q["kind"] != "count" and not isinstance(q.get("column"), str):
                raise InvalidInputError(f"a {q['kind']} query needs `column`")
            if q["kind"] == "quantile":
                _check_quantile(q)
        return JobSpec(queries=tuple(dict(q) for q in queries), rounds=1, **common)
    model = doc.get("model", "logreg")
    if model not in FAMILIES:
        raise InvalidInputError(f"`model` must be one of {', '.join(FAMILIES)}")
    strategy = doc.get("strategy", "FedAvg")
    if strategy not in STRATEGIES:
        raise InvalidInputError(f"`strategy` must be one of {', '.join(STRATEGIES)}")
    label = doc.get("label")
    features = _names(doc, "features")
    if not isinstance(label, str) or not features or label in features:
        raise InvalidInputError("name `features` (a list) and a `label` column not among them")
    evaluation = doc.get("evaluation")
    if evaluation is not None and (not isinstance(evaluation, str) or evaluation in datasets):
        raise InvalidInputError("`evaluation` names one dataset of yours, not a training one")
    return JobSpec(
        evaluation=evaluation,
        features=features,
        label=label,
        model=model,
        strategy=strategy,
        rounds=_integer(doc, "rounds", 5, 1, MAX_ROUNDS),
        local_epochs=_integer(doc, "local_epochs", 1, 1, 50),
        learning_rate=_number(doc, "learning_rate", 0.1, 1e-6, 10.0),
        proximal_mu=_number(doc, "proximal_mu", 0.01 if strategy == "FedProx" else 0.0, 0, 10),
        **common,
    )


def from_json(doc: Mapping[str, Any]) -> JobSpec:
    """Rebuild a spec from :meth:`JobSpec.as_json` (what the plan stores)."""
    fields = dict(doc)
    fields["privacy"] = Privacy(**fields["privacy"])
    for name in ("datasets", "features", "queries"):
        fields[name] = tuple(fields.get(name, ()))
    return JobSpec(**fields)


def signing_key(seed: bytes) -> Ed25519PrivateKey:
    """The zone's job-signing key from a 32-byte derived secret."""
    return Ed25519PrivateKey.from_private_bytes(seed[:32])


def sign(spec: JobSpec, key: Ed25519PrivateKey) -> str:
    """The zone's signature (hex) over the spec's digest."""
    return key.sign(spec.digest().encode()).hex()


def verify(spec: JobSpec, approved_digest: str, signature: str, zone_key: Ed25519PublicKey) -> None:
    """At the node: refuse a spec that is not exactly what was approved and signed."""
    if spec.digest() != approved_digest:
        raise NotAuthorisedError(
            "the job spec differs from the one its owner approved; the node refuses to run it"
        )
    try:
        zone_key.verify(bytes.fromhex(signature), approved_digest.encode())
    except (InvalidSignature, ValueError):
        raise NotAuthorisedError("the job spec is not signed by the zone; refused") from None


def _check_quantile(query: Mapping[str, Any]) -> None:
    """A quantile query: ``quantiles`` in (0, 1), ``bins`` (default 64) within bounds, no
    other key (an unknown key is an error, not ignored)."""
    unknown = set(query) - {"kind", "column", "quantiles", "bins"}
    if unknown:
        raise InvalidInputError(f"a quantile query has no {', '.join(sorted(unknown))}")
    qs = query.get("quantiles")
    if (
        not isinstance(qs, list)
        or not qs
        or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in qs)
        or not all(0.0 < float(v) < 1.0 for v in qs)
    ):
        raise InvalidInputError("a quantile query needs `quantiles`: numbers in (0, 1)")
    bins = query.get("bins", 64)
    low, high = QUANTILE_BINS
    if isinstance(bins, bool) or not isinstance(bins, int) or not low <= bins <= high:
        raise InvalidInputError(f"a quantile query's `bins` must be an integer in [{low}, {high}]")
