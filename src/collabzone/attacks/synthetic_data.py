"""Privacy report of a synthetic table: anonymeter-style attacks, distances, rare copies.

The attacks follow Giomi, Boenisch, Wehmeyer, Tasnádi, "A Unified Framework for Quantifying
Privacy Risk in Synthetic Data", PoPETs 2023(2) (the method of the ``anonymeter`` library,
which pins numpy<1.27 and cannot be installed here). Each attack is run twice with the same
synthetic table: against records that trained the generator (``original``) and against a
``control`` set from the same population that it never saw. Only the excess of the first
over the second is the generator's fault:

    risk = (rate_original - rate_control) / (1 - rate_control)

with success rates and their 95% Wilson score intervals. Three attacks:

* singling out: predicates built from synthetic records (equality on a few columns) that
  match exactly one record of the attacked set;
* linkability: the attacker holds two halves of a target's columns; they are linked if the
  nearest synthetic records of both halves coincide;
* inference: the attacker knows every column but a secret one and guesses it from the
  nearest synthetic record.

Plus the distance to the closest record (DCR: share of synthetic rows nearer to a training
row than to any control row; about one half when nothing is copied) and exact copies of
rare original rows (rows unique in the original, found verbatim in the synthetic table).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

Z95 = 1.959963984540054


@dataclass(frozen=True)
class Rate:
    """A success rate with its 95% Wilson score interval."""

    value: float
    low: float
    high: float
    n: int


def wilson(successes: int, n: int) -> Rate:
    """The success rate of ``successes`` out of ``n`` with its Wilson score interval."""
    if n == 0:
        return Rate(0.0, 0.0, 1.0, 0)
    p = successes / n
    denom = 1 + Z95**2 / n
    centre = (p + Z95**2 / (2 * n)) / denom
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n)) / denom
    return Rate(p, max(0.0, centre - half), min(1.0, centre + half), n)


@dataclass(frozen=True)
class AttackResult:
    attack: str
    original: Rate
    control: Rate

    @property
    def risk(self) -> float:
        """Excess success on the training records over the control (0: none)."""
        if self.control.value >= 1:
            return 0.0
        return max(0.0, (self.original.value - self.control.value) / (1 - self.control.value))

    @property
    def within_control(self) -> bool:
        """Whether the attack rate on training records lies inside the control's interval
        (or below it): the attack learns nothing the population would not tell."""
        return self.original.value <= self.control.high

    def as_dict(self) -> dict[str, Any]:
        return {
            "attack": self.attack,
            "original": asdict(self.original),
            "control": asdict(self.control),
            "risk": self.risk,
            "within_control": self.within_control,
        }


class _Space:
    """Mixed-type rows as numbers for a Gower-style distance: numeric columns scaled by
    their range over all three tables, categorical ones compared for equality."""

    def __init__(self, frames: Sequence[pd.DataFrame], columns: Sequence[str]) -> None:
        self.columns = list(columns)
        self.numeric = [bool(pd.api.types.is_numeric_dtype(frames[0][c])) for c in columns]
        self.ranges = []
        self.codes: list[dict[str, int]] = []
        for c, is_num in zip(columns, self.numeric, strict=True):
            if is_num:
                values = pd.concat([pd.to_numeric(f[c]) for f in frames])
                self.ranges.append(float(values.max() - values.min()) or 1.0)
                self.codes.append({})
            else:
                cats = sorted({str(v) for f in frames for v in f[c].tolist()})
                self.ranges.append(1.0)
                self.codes.append({v: i for i, v in enumerate(cats)})

    def matrix(self, frame: pd.DataFrame, columns: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        idx = [self.columns.index(c) for c in columns]
        out = np.empty((len(frame), len(idx)))
        for j, i in enumerate(idx):
            c = self.columns[i]
            if self.numeric[i]:
                out[:, j] = pd.to_numeric(frame[c]).to_numpy(dtype=float) / self.ranges[i]
            else:
                out[:, j] = [self.codes[i][str(v)] for v in frame[c].tolist()]
        return out, np.asarray([self.numeric[i] for i in idx])

    def nearest(
        self, queries: pd.DataFrame, pool: pd.DataFrame, columns: Sequence[str]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Index in ``pool`` of each query's nearest row on ``columns``, and the distance."""
        q, numeric = self.matrix(queries, columns)
        p, _ = self.matrix(pool, columns)
        best = np.empty(len(q), dtype=np.int64)
        dist = np.empty(len(q))
        for start in range(0, len(q), 256):
            block = q[start : start + 256, None, :] - p[None, :, :]
            d = np.where(numeric, np.abs(block), block != 0).sum(axis=2) / max(len(columns), 1)
            best[start : start + 256] = d.argmin(axis=1)
            dist[start : start + 256] = d.min(axis=1)
        return best, dist


def _singling_out_rate(predicates: list[dict[str, str]], target: pd.DataFrame) -> int:
    as_text = target.astype(str)
    hits = 0
    for predicate in predicates:
        mask = np.ones(len(as_text), dtype=bool)
        for c, v in predicate.items():
            mask &= (as_text[c] == v).to_numpy()
        hits += int(mask.sum() == 1)
    return hits


def singling_out(
    original: pd.DataFrame,
    synthetic: pd.DataFrame,
    control: pd.DataFrame,
    *,
    n_attacks: int = 200,
    n_cols: int = 3,
    seed: int = 0,
) -> AttackResult:
    """Multivariate singling out: equality predicates on ``n_cols`` columns of a random
    synthetic row; success if it isolates one record. The control set is cut to the size
    of the original so both face the same odds of uniqueness."""
    rng = np.random.default_rng(seed)
    text = synthetic.astype(str)
    columns = list(synthetic.columns)
    predicates = []
    for _ in range(n_attacks):
        row = text.iloc[int(rng.integers(len(text)))]
        chosen = rng.choice(len(columns), size=min(n_cols, len(columns)), replace=False)
        predicates.append({columns[i]: row[columns[i]] for i in chosen})
    size = min(len(original), len(control))
    ori = original.sample(size, random_state=seed) if len(original) > size else original
    ctl = control.sample(size, random_state=seed) if len(control) > size else control
    return AttackResult(
        "singling_out",
        wilson(_singling_out_rate(predicates, ori), n_attacks),
        wilson(_singling_out_rate(predicates, ctl), n_attacks),
    )


def linkability(
    original: pd.DataFrame,
    synthetic: pd.DataFrame,
    control: pd.DataFrame,
    aux_a: Sequence[str],
    aux_b: Sequence[str],
    *,
    n_attacks: int = 200,
    seed: int = 0,
) -> AttackResult:
    """Link two halves of a target through the synthetic table (nearest neighbour each)."""
    space = _Space([original, synthetic, control], list(synthetic.columns))

    def rate(targets: pd.DataFrame) -> int:
        sample = targets.sample(min(n_attacks, len(targets)), random_state=seed)
        a, _ = space.nearest(sample, synthetic, aux_a)
        b, _ = space.nearest(sample, synthetic, aux_b)
        return int((a == b).sum())

    n = min(n_attacks, len(original), len(control))
    return AttackResult("linkability", wilson(rate(original), n), wilson(rate(control), n))


def inference(
    original: pd.DataFrame,
    synthetic: pd.DataFrame,
    control: pd.DataFrame,
    secret: str,
    *,
    n_attacks: int = 200,
    seed: int = 0,
) -> AttackResult:
    """Guess ``secret`` from the nearest synthetic record on every other column."""
    aux = [c for c in synthetic.columns if c != secret]
    space = _Space([original, synthetic, control], list(synthetic.columns))
    guesses_from = synthetic[secret].astype(str).to_numpy()

    def rate(targets: pd.DataFrame) -> int:
        sample = targets.sample(min(n_attacks, len(targets)), random_state=seed)
        nearest, _ = space.nearest(sample, synthetic, aux)
        return int((guesses_from[nearest] == sample[secret].astype(str).to_numpy()).sum())

    n = min(n_attacks, len(original), len(control))
    return AttackResult(f"inference:{secret}", wilson(rate(original), n), wilson(rate(control), n))


def dcr(
    original: pd.DataFrame,
    synthetic: pd.DataFrame,
    control: pd.DataFrame,
    *,
    n: int = 500,
    seed: int = 0,
) -> dict[str, float]:
    """Distance to closest record: median DCR to the training set, and the share of
    synthetic rows closer to a training row than to a control row (about 0.5 if safe).
    Training and control sets are cut to the same size so the share is fair."""
    size = min(len(original), len(control))
    ori = original.sample(size, random_state=seed)
    ctl = control.sample(size, random_state=seed)
    space = _Space([original, synthetic, control], list(synthetic.columns))
    queries = synthetic.sample(min(n, len(synthetic)), random_state=seed)
    _, to_train = space.nearest(queries, ori, list(synthetic.columns))
    _, to_control = space.nearest(queries, ctl, list(synthetic.columns))
    closer = float(np.mean(to_train < to_control) + 0.5 * np.mean(to_train == to_control))
    return {
        "median_dcr_train": float(np.median(to_train)),
        "median_dcr_control": float(np.median(to_control)),
        "share_closer_to_train": closer,
    }


def rare_copies(
    original: pd.DataFrame, synthetic: pd.DataFrame, control: pd.DataFrame
) -> dict[str, int]:
    """Rows unique in the original found verbatim in the synthetic table, next to the
    same count for the control's unique rows (chance coincidences)."""

    def unique_rows(frame: pd.DataFrame) -> set[tuple[str, ...]]:
        keys = [tuple(r) for r in frame.astype(str).itertuples(index=False)]
        counts: dict[tuple[str, ...], int] = {}
        for k in keys:
            counts[k] = counts.get(k, 0) + 1
        return {k for k, c in counts.items() if c == 1}

    synthetic_rows = {tuple(r) for r in synthetic.astype(str).itertuples(index=False)}
    size = min(len(original), len(control))
    ori_unique = unique_rows(original.sample(size, random_state=0))
    ctl_unique = unique_rows(control.sample(size, random_state=0))
    return {
        "rare_original_rows": len(ori_unique),
        "copied_rare_original": len(ori_unique & synthetic_rows),
        "copied_rare_control": len(ctl_unique & synthetic_rows),
    }


def privacy_report(
    original: pd.DataFrame,
    synthetic: pd.DataFrame,
    control: pd.DataFrame,
    *,
    secret: str | None = None,
    n_attacks: int = 200,
    seed: int = 0,
) -> dict[str, Any]:
    """Every privacy measure above, JSON-ready."""
    columns = list(synthetic.columns)
    half = len(columns) // 2
    secret = secret or columns[-1]
    attacks = [
        singling_out(original, synthetic, control, n_attacks=n_attacks, seed=seed),
        linkability(
            original,
            synthetic,
            control,
            columns[:half],
            columns[half:],
            n_attacks=n_attacks,
            seed=seed,
        ),
        inference(original, synthetic, control, secret, n_attacks=n_attacks, seed=seed),
    ]
    return {
        "attacks": [a.as_dict() for a in attacks],
        "dcr": dcr(original, synthetic, control, seed=seed),
        "rare_copies": rare_copies(original, synthetic, control),
        "method": "Giomi et al., PoPETs 2023 (anonymeter's method, reimplemented)",
    }


def copying_generator(
    original: pd.DataFrame, rows: int | None = None, seed: int = 0
) -> pd.DataFrame:
    """The non-private strawman: "synthetic" rows drawn with replacement from the original.
    Every report above must flag it (the tests hold it to that)."""
    return original.sample(rows or len(original), replace=True, random_state=seed).reset_index(
        drop=True
    )
