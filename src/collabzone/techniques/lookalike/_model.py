"""The look-alike model: allowlisted scikit-learn pipelines, label protection, quality and
the audience draw, as pure functions on arrays (the technique feeds them from the zone).

* :data:`MODELS` is the allowlist: a request names a model, never supplies one.
* :func:`randomized_response` flips each seed label with OpenDP's vetted boolean
  randomized response (epsilon-DP per label), so the scores leak little about any one
  seed member; the cost is charged to the seed dataset's budget.
* :func:`quality` gives the bank aggregate quality on a held-out part of the overlap (AUC
  and top-decile lift, rounded), never per-row scores; :func:`dp_quality` adds OpenDP
  Laplace noise to both when an agreement sets ``quality_epsilon``.
* :func:`draw_audience` walks the non-overlap candidates by score and keeps those whose
  *delivery coin* (a keyed hash of the token, the same in every request) shows heads, so
  a customer's absence from the audience says little about whether it is a seed member:
  a non-member look-alike is absent with probability ``1 - delivery_rate`` too, and
  asking again draws the same coins (repetition does not average the coin away).
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from collabzone.errors import InternalError, InvalidInputError

MODELS: tuple[str, ...] = ("logistic_regression", "gradient_boosting")
"""The allowlist of model names a look-alike request may choose."""


def build_model(name: str, measures: Sequence[str], dimensions: Sequence[str], seed: int) -> Any:
    """The scikit-learn pipeline for ``name``: measures scaled, dimensions one-hot encoded.

    ``gradient_boosting`` is scikit-learn's histogram gradient boosting (the one that
    trains on 100k rows in seconds); both are deterministic for a fixed ``seed`` when run
    under :func:`single_threaded`.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    if name not in MODELS:
        raise InvalidInputError(f"model {name!r} is not allowlisted; choose one of {MODELS}")
    steps: list[tuple[str, Any, list[str]]] = []
    if measures:
        steps.append(("measures", StandardScaler(), list(measures)))
    if dimensions:
        steps.append(("dimensions", OneHotEncoder(handle_unknown="ignore"), list(dimensions)))
    prepare = ColumnTransformer(steps, sparse_threshold=0.0)
    classifier: Any
    if name == "logistic_regression":
        classifier = LogisticRegression(max_iter=1000)
    else:
        classifier = HistGradientBoostingClassifier(random_state=seed, max_iter=100)
    return Pipeline([("prepare", prepare), ("model", classifier)])


def single_threaded() -> Any:
    """A context limiting BLAS and OpenMP to one thread (threadpoolctl): reproducible
    scores and a fair share of a small machine."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)


def rr_keep_probability(epsilon: float) -> float:
    """Probability that randomized response keeps a label at ``epsilon``."""
    return math.exp(epsilon) / (1.0 + math.exp(epsilon))


def randomized_response(labels: np.ndarray, epsilon: float) -> np.ndarray:
    """Each boolean label kept with probability e^eps / (1 + e^eps), else flipped (OpenDP
    ``make_randomized_response_bool``): the released model is eps-label-DP."""
    from collabzone._opendp import dp

    if not epsilon > 0:
        raise InvalidInputError("label_epsilon must be positive")
    measurement = dp.m.make_randomized_response_bool(prob=rr_keep_probability(epsilon))
    return np.fromiter((measurement(bool(v)) for v in labels), dtype=bool, count=len(labels))


def debias_rate(observed: float, epsilon: float) -> float:
    """The unbiased estimate of a positive rate measured on randomized-response labels."""
    keep = rr_keep_probability(epsilon)
    return (observed - (1.0 - keep)) / (2.0 * keep - 1.0)


def auc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    """Area under the ROC curve (None when one class is missing)."""
    from sklearn.metrics import roc_auc_score

    if labels.all() or not labels.any():
        return None
    return float(roc_auc_score(labels, scores))


def lift(labels: np.ndarray, scores: np.ndarray, top: float = 0.1) -> float | None:
    """Positive rate among the top ``top`` share by score over the base rate."""
    base = float(labels.mean()) if labels.size else 0.0
    if base == 0.0:
        return None
    n = max(1, round(labels.size * top))
    best = np.argsort(-scores, kind="stable")[:n]
    return float(labels[best].mean()) / base


def quality(labels: np.ndarray, scores: np.ndarray, min_rows: int) -> dict[str, float | None]:
    """AUC and top-decile lift on the held-out overlap, rounded to two decimals; withheld
    (None) when fewer than ``min_rows`` rows or positives/negatives back them."""
    positives = int(labels.sum())
    if labels.size < min_rows or min(positives, labels.size - positives) < max(1, min_rows // 10):
        return {"auc": None, "lift_top_decile": None}
    area, ratio = auc(labels, scores), lift(labels, scores)
    return {
        "auc": None if area is None else round(area, 2),
        "lift_top_decile": None if ratio is None else round(ratio, 2),
    }


def quality_sensitivity(labels: np.ndarray, top: float = 0.1) -> tuple[float, float]:
    """L1 sensitivities of (AUC, lift) to one held-out member's feature values.

    The neighbouring relation: one partner customer's features differ; the held-out set,
    its labels (the seed owner's own) and so its class counts P and N are fixed. Moving one
    score moves at most N (a positive) or P (a negative) of the P*N pairs behind the AUC, so
    1 / min(P, N); it moves at most one positive into or out of the top ``n_top``, so the
    lift ``(positives in top / n_top) / (P / n)`` moves by at most ``n / (n_top * P)``.
    """
    n = int(labels.size)
    positives = int(labels.sum())
    n_top = max(1, round(n * top))
    return 1.0 / min(positives, n - positives), n / (n_top * positives)


def laplace(value: float, sensitivity: float, epsilon: float) -> float:
    """``value`` plus OpenDP's Laplace noise of scale sensitivity / epsilon; the measurement's
    own privacy map is checked against ``epsilon`` before it runs."""
    from collabzone._opendp import dp

    measurement = dp.m.make_laplace(
        dp.atom_domain(T=float, nan=False),
        dp.absolute_distance(T=float),
        scale=sensitivity / epsilon,
    )
    if measurement.map(sensitivity) > epsilon * (1 + 1e-9):
        raise InternalError("the quality noise would spend more than the priced epsilon")
    return float(measurement(float(value)))


def dp_quality(
    labels: np.ndarray, scores: np.ndarray, min_rows: int, epsilon: float
) -> dict[str, float | None]:
    """AUC and top-decile lift with Laplace noise at ``epsilon`` (half each, basic
    composition), clamped to their ranges and rounded (post-processing); withheld like
    :func:`quality` on small held-out sets (the release is then charged all the same: the
    cost is fixed before the data is read)."""
    exact = quality(labels, scores, min_rows)
    if exact["auc"] is None or exact["lift_top_decile"] is None:
        return {"auc": None, "lift_top_decile": None}
    area, ratio = auc(labels, scores), lift(labels, scores)
    assert area is not None and ratio is not None  # quality() saw both classes
    auc_sensitivity, lift_sensitivity = quality_sensitivity(labels)
    most_lift = labels.size / float(labels.sum())
    noisy_auc = min(1.0, max(0.0, laplace(area, auc_sensitivity, epsilon / 2)))
    noisy_lift = min(most_lift, max(0.0, laplace(ratio, lift_sensitivity, epsilon / 2)))
    return {"auc": round(noisy_auc, 2), "lift_top_decile": round(noisy_lift, 2)}


def coin(key: bytes, delivery_rate: float) -> Callable[[str], bool]:
    """The delivery coin: heads for ``token`` iff HMAC-SHA256(key, token) falls below the
    rate (the same answer in every request made under the same zone key)."""
    threshold = int(delivery_rate * 2**64)

    def heads(token: str) -> bool:
        digest = hmac.new(key, token.encode(), hashlib.sha256).digest()
        return int.from_bytes(digest[:8], "big") < threshold

    return heads


def draw_audience(
    tokens: Sequence[str],
    scores: np.ndarray,
    size: int,
    heads: Callable[[str], bool],
    threshold: float | None = None,
) -> list[str]:
    """The first ``size`` candidates by descending score whose coin shows heads (and whose
    score reaches ``threshold`` if given). ``tokens`` must hold no overlap member."""
    order = np.argsort(-scores, kind="stable")
    chosen: list[str] = []
    for i in order:
        if threshold is not None and scores[i] < threshold:
            break
        if heads(tokens[i]):
            chosen.append(tokens[i])
            if len(chosen) == size:
                break
    return chosen
