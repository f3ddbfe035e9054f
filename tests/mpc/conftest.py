"""Fixtures of the MPC tests: one or three compute-server stores with shares of Adult."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from collabzone.keys import new_master_key
from collabzone.techniques.mpc import REPORTS, ShareStore, split_upload

ADULT = Path("/work/shared/data/uci_adult_full")


def adult_columns(rows: int = 400) -> dict[str, np.ndarray]:
    """Numeric columns of the shared UCI Adult data (its first ``rows`` records)."""
    frame = np.loadtxt(ADULT / "adult.data", delimiter=",", usecols=(0, 4, 12), max_rows=rows)
    return {"age": frame[:, 0], "education_num": frame[:, 1], "hours": frame[:, 2]}


BOUNDS = {"age": (0.0, 100.0), "education_num": (0.0, 20.0), "hours": (0.0, 100.0)}


@pytest.fixture
def master_key() -> str:
    return new_master_key()


def make_stores(
    root: Path,
    master_key: str,
    servers: int,
    threshold: int,
    *,
    rows: int = 400,
    min_group_size: int = 10,
    recipients: tuple[str, ...] = ("ministry",),
    provider: str = "census",
) -> tuple[list[ShareStore], dict[str, np.ndarray]]:
    """``servers`` stores, each holding its shares of Adult's numeric columns."""
    data = adult_columns(rows)
    packages = split_upload(
        "adult",
        provider,
        data,
        BOUNDS,
        reports=list(REPORTS),
        recipients=list(recipients),
        min_group_size=min_group_size,
        servers=servers,
        threshold=threshold,
    )
    stores = []
    for index, package in enumerate(packages):
        store = ShareStore(root / f"server{index}", master_key)
        store.put(package)
        stores.append(store)
    return stores, data
