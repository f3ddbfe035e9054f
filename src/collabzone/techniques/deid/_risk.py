"""Re-identification risk of a released table, from its equivalence class sizes.

Three attacker models (El Emam; ARX):

* **prosecutor**: knows the target is in the released table; a record in a class of size
  |E| is re-identified with probability 1/|E|.
* **journalist**: knows only that the target is in a larger population (``population``
  class sizes F_E >= |E|); risk 1/F_E. Without a population the table is its own
  population and the figures equal the prosecutor's.
* **marketer**: wants to re-identify as many records as possible; the expected share
  re-identified is (1/n) * sum over classes of |E| / F_E.
"""

from __future__ import annotations

import numpy as np


def _summary(sizes: np.ndarray, reference: np.ndarray, threshold: float) -> dict[str, float]:
    n = float(sizes.sum())
    risk = 1.0 / reference
    return {
        "highest_risk": float(risk.max()) if len(risk) else 0.0,
        "average_risk": float((sizes * risk).sum() / n) if n else 0.0,
        "records_at_risk": float(sizes[risk > threshold].sum() / n) if n else 0.0,
    }


def risk_report(
    sizes: np.ndarray, threshold: float = 0.2, population: np.ndarray | None = None
) -> dict[str, object]:
    """Prosecutor, journalist and marketer risk for classes of ``sizes`` rows.

    ``population`` gives, per class, its size in the population the table was drawn from.
    ``records_at_risk`` is the share of records whose risk exceeds ``threshold``.

    Example:
        >>> risk_report(np.array([1, 4]))["prosecutor"]["highest_risk"]
        1.0
    """
    sizes = np.asarray(sizes, dtype=np.int64)
    pop = sizes if population is None else np.maximum(np.asarray(population, dtype=np.int64), sizes)
    n = float(sizes.sum())
    prosecutor = _summary(sizes, sizes, threshold)
    journalist = _summary(sizes, pop, threshold)
    return {
        "threshold": threshold,
        "prosecutor": prosecutor,
        "journalist": journalist,
        "marketer": {"expected_reidentified": journalist["average_risk"]},
        "sample_uniqueness": float(sizes[sizes == 1].sum() / n) if n else 0.0,
        "population_uniqueness": float(sizes[pop == 1].sum() / n) if n else 0.0,
        "population_model": "sample" if population is None else "population table",
    }
