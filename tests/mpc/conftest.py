"""Fixtures of the MPC tests: one or three compute-server stores with shares of Adult."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from collabzone.keys import new_master_key
from collabzone.techniques import registry
from collabzone.techniques.mpc import (
    REPORTS,
    HESum,
    RecipientKeys,
    ShareStore,
    deposit,
    encrypt,
    publish_context,
    split_upload,
)
from tests.conftest import Parties

ADULT = Path("/work/shared/data/uci_adult_full")


def adult_columns(rows: int = 400) -> dict[str, np.ndarray]:
    """Numeric columns of the shared UCI Adult data (its first ``rows`` records)."""
    frame = np.loadtxt(ADULT / "adult.data", delimiter=",", usecols=(0, 4, 12), max_rows=rows)
    return {"age": frame[:, 0], "education_num": frame[:, 1], "hours": frame[:, 2]}


BOUNDS = {"age": (0.0, 100.0), "education_num": (0.0, 20.0), "hours": (0.0, 100.0)}

HE_SPEC = {
    "columns": [
        {"name": "category", "type": "string", "class": "dimension", "domain": ["a", "b", "c"]},
        {"name": "count", "type": "float", "class": "measure", "domain": {"min": 0, "max": 1e6}},
    ]
}
HE_CATEGORIES = 40
HE_DATASETS = (("partner", "counts_p"), ("insurer", "counts_i"))
HEWorld = tuple[Parties, dict[str, np.ndarray], Path]


@pytest.fixture(scope="module")
def keys() -> RecipientKeys:
    """Bank's CKKS keys (generated once per module: key generation is the slow part)."""
    return RecipientKeys.generate()


def he_deposit(inbox: Path, keys: RecipientKeys, dataset: str, vector: np.ndarray) -> None:
    """A provider's vector encrypted under bank's public context and deposited."""
    deposit(inbox, "bank", dataset, encrypt(keys.public_context(), list(vector)))


def he_world(
    parties: Parties, tmp_path: Path, keys: RecipientKeys, *, seed: int, high: int
) -> Iterator[HEWorld]:
    """Partner and insurer deposited vectors (integers below ``high``) encrypted under
    bank's key, with ``he_sum`` registered on an inbox of its own for the test."""
    inbox = tmp_path / "he-inbox"
    registry.register("he_sum", HESum(inbox))
    publish_context(inbox, "bank", keys.public_context())
    rng = np.random.default_rng(seed)
    vectors = {}
    for party, dataset in HE_DATASETS:
        getattr(parties, party).register_dataset(dataset, HE_SPEC, row_count=HE_CATEGORIES)
        vectors[dataset] = rng.integers(0, high, HE_CATEGORIES).astype(float)
        he_deposit(inbox, keys, dataset, vectors[dataset])
    yield parties, vectors, inbox
    registry.register("he_sum", "collabzone.techniques.mpc:HESum")


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
