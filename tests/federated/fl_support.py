"""Helpers of the federated tests: UCI Adult split non-IID across three owners."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from collabzone.techniques.federated._data import encode, encode_label
from collabzone.techniques.federated._federation import ClientData

ADULT = Path("/work/shared/data/uci_adult_full/adult.data")
NAMES = [
    "age", "workclass", "fnlwgt", "education", "education_num", "marital_status",
    "occupation", "relationship", "race", "sex", "capital_gain", "capital_loss",
    "hours_per_week", "native_country", "income",
]  # fmt: skip
FEATURES = ["age", "education_num", "hours_per_week", "capital_gain", "sex"]
LABEL = "income"
DOMAINS: dict[str, Any] = {
    "age": {"min": 17, "max": 90},
    "education_num": {"min": 1, "max": 16},
    "hours_per_week": {"min": 1, "max": 99},
    "capital_gain": {"min": 0, "max": 99999},
    "sex": ["Female", "Male"],
    "income": ["<=50K", ">50K"],
    "marital_status": ["Married-civ-spouse", "Never-married", "Divorced", "Other"],
}
OWNERS = ("bank", "partner", "insurer")
DATASET_SPEC = {
    "columns": [
        {"name": "age", "type": "integer", "class": "measure", "domain": DOMAINS["age"]},
        {"name": "education_num", "type": "integer", "class": "measure",
         "domain": DOMAINS["education_num"]},
        {"name": "hours_per_week", "type": "integer", "class": "measure",
         "domain": DOMAINS["hours_per_week"]},
        {"name": "capital_gain", "type": "integer", "class": "measure",
         "domain": DOMAINS["capital_gain"]},
        {"name": "sex", "type": "string", "class": "dimension", "domain": DOMAINS["sex"]},
        {"name": "marital_status", "type": "string", "class": "dimension",
         "domain": DOMAINS["marital_status"]},
        {"name": "income", "type": "string", "class": "label", "domain": DOMAINS["income"]},
    ]
}  # fmt: skip


def adult(rows: int | None = None) -> pd.DataFrame:
    """UCI Adult (training file), stripped; ``rows`` first rows only."""
    frame = pd.read_csv(ADULT, names=NAMES, skipinitialspace=True, nrows=rows)
    frame = frame.dropna()
    return frame[frame["income"].isin(DOMAINS["income"])].reset_index(drop=True)


def split_non_iid(frame: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Three owners split by marital status: married / never married / the rest."""
    status = frame["marital_status"]
    parts = {
        "bank": frame[status == "Married-civ-spouse"],
        "partner": frame[status == "Never-married"],
        "insurer": frame[~status.isin(["Married-civ-spouse", "Never-married"])],
    }
    return {k: v.reset_index(drop=True) for k, v in parts.items()}


def client_data(frames: dict[str, pd.DataFrame]) -> dict[str, ClientData]:
    return {
        owner: ClientData(
            owner, encode(f, FEATURES, DOMAINS), encode_label(f, LABEL, DOMAINS[LABEL])
        )
        for owner, f in frames.items()
    }


def centralised(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    return encode(frame, FEATURES, DOMAINS), encode_label(frame, LABEL, DOMAINS[LABEL])


def write_owner_files(frames: dict[str, pd.DataFrame], folder: Path) -> dict[str, Path]:
    """Each owner's rows as its own CSV (what its node reads)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for owner, f in frames.items():
        path = folder / f"{owner}.csv"
        f.assign(marital_status=f["marital_status"].where(
            f["marital_status"].isin(DOMAINS["marital_status"]), "Other"
        ))[[*FEATURES, "marital_status", LABEL]].to_csv(path, index=False)  # fmt: skip
        out[owner] = path
    return out
