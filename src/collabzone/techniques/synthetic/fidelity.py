"""Fidelity report: how closely a synthetic table reproduces the real one, in aggregate.

Measured on the discretised codes (the same public bins the generator used):

* k-way marginal total variation distance (TVD, half the L1 distance between the two
  normalised histograms), averaged over every (or a fixed-seed sample of) k-column sets
  for k = 1, 2, 3, as in the NIST differential privacy synthetic data challenges;
* correlation differences: the largest and mean absolute difference between the two
  Cramér's V association matrices;
* ML efficacy: a classifier trained on the synthetic table and one trained on real data,
  both scored on a real hold-out the owner keeps (only the two scores are reported).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd


def _histogram(
    codes: Mapping[str, np.ndarray], shape: Mapping[str, int], cols: Sequence[str]
) -> np.ndarray:
    sizes = [shape[c] for c in cols]
    flat = np.ravel_multi_index(tuple(np.asarray(codes[c]) for c in cols), sizes)
    counts = np.bincount(flat, minlength=int(np.prod(sizes))).astype(float)
    shares: np.ndarray = counts / max(counts.sum(), 1.0)
    return shares


def marginal_tvd(
    real: Mapping[str, np.ndarray],
    synthetic: Mapping[str, np.ndarray],
    shape: Mapping[str, int],
    k: int,
    *,
    max_sets: int = 200,
    seed: int = 0,
) -> float:
    """Mean TVD over k-column marginals (a fixed-seed sample of at most ``max_sets``)."""
    sets = list(itertools.combinations(list(shape), k))
    if len(sets) > max_sets:
        rng = np.random.default_rng(seed)
        sets = [sets[i] for i in sorted(rng.choice(len(sets), max_sets, replace=False))]
    if not sets:
        return 0.0
    return float(
        np.mean(
            [
                0.5 * np.abs(_histogram(real, shape, s) - _histogram(synthetic, shape, s)).sum()
                for s in sets
            ]
        )
    )


def cramers_v(codes: Mapping[str, np.ndarray], shape: Mapping[str, int]) -> np.ndarray:
    """Cramér's V between every two columns (1 on the diagonal)."""
    names = list(shape)
    out = np.eye(len(names))
    for i, j in itertools.combinations(range(len(names)), 2):
        table = _histogram(codes, shape, (names[i], names[j])).reshape(
            shape[names[i]], shape[names[j]]
        )
        rows, cols = table.sum(axis=1), table.sum(axis=0)
        expected = np.outer(rows, cols)
        mask = expected > 0
        chi2 = float((((table - expected) ** 2)[mask] / expected[mask]).sum())
        r, c = int((rows > 0).sum()), int((cols > 0).sum())
        v = float(np.sqrt(chi2 / max(min(r, c) - 1, 1))) if min(r, c) > 1 else 0.0
        out[i, j] = out[j, i] = min(v, 1.0)
    return out


def ml_efficacy(
    train_real: pd.DataFrame,
    synthetic: pd.DataFrame,
    holdout: pd.DataFrame,
    target: str,
    seed: int = 0,
) -> dict[str, float]:
    """Accuracy on the real hold-out of a model trained on synthetic vs on real data."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    features = [c for c in synthetic.columns if c != target]

    def prepare(frame: pd.DataFrame) -> pd.DataFrame:
        out = frame[features].copy()
        for c in features:
            if not pd.api.types.is_numeric_dtype(out[c]):
                out[c] = out[c].astype(str).astype("category")
        return out

    def score(train: pd.DataFrame) -> float:
        x_train, x_test = prepare(train), prepare(holdout)
        for c in features:
            if isinstance(x_train[c].dtype, pd.CategoricalDtype):
                cats = sorted(set(x_train[c].astype(str)) | set(x_test[c].astype(str)))
                x_train[c] = pd.Categorical(x_train[c].astype(str), categories=cats)
                x_test[c] = pd.Categorical(x_test[c].astype(str), categories=cats)
        y = train[target].astype(str)
        if y.nunique() < 2:
            majority = y.iloc[0]
            return float((holdout[target].astype(str) == majority).mean())
        model = HistGradientBoostingClassifier(
            max_iter=50, random_state=seed, categorical_features="from_dtype"
        )
        model.fit(x_train, y)
        return float((model.predict(x_test) == holdout[target].astype(str).to_numpy()).mean())

    return {"accuracy_synthetic": score(synthetic), "accuracy_real": score(train_real)}


def fidelity_report(
    real: Mapping[str, np.ndarray],
    synthetic: Mapping[str, np.ndarray],
    shape: Mapping[str, int],
    *,
    seed: int = 0,
) -> dict[str, Any]:
    """TVDs and correlation differences, JSON-ready (ML efficacy is added by the caller,
    who holds the hold-out)."""
    diff = np.abs(cramers_v(real, shape) - cramers_v(synthetic, shape))
    return {
        "tvd_1way": marginal_tvd(real, synthetic, shape, 1, seed=seed),
        "tvd_2way": marginal_tvd(real, synthetic, shape, 2, seed=seed),
        "tvd_3way": marginal_tvd(real, synthetic, shape, 3, seed=seed),
        "cramers_v_max_diff": float(diff.max()),
        "cramers_v_mean_diff": float(diff[np.triu_indices(len(shape), 1)].mean())
        if len(shape) > 1
        else 0.0,
    }
