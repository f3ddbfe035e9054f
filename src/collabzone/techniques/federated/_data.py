"""Turning an owner's own rows into model inputs, using only the catalogue's public domains.

Nothing here is learnt from the data: numbers are scaled by the ``{"min", "max"}`` the owner
declared for the column, categories are one-hot encoded over the declared list, and the
label's positive class is the last category of its declared domain. Every node therefore
encodes alike without exchanging statistics, and the zone can show the owners the exact
encoding before they approve.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from collabzone.errors import InvalidInputError
from collabzone.techniques.federated._models import Array

Domain = list[Any] | dict[str, Any]


def width(domain: Domain) -> int:
    """How many model inputs one column becomes."""
    return len(domain) if isinstance(domain, list) else 1


def check_domain(column: str, domain: object) -> Domain:
    """The column's declared domain, or a clear error asking the owner to declare one."""
    if isinstance(domain, list) and domain:
        return domain
    if isinstance(domain, dict) and {"min", "max"} <= set(domain):
        low, high = domain["min"], domain["max"]
        if isinstance(low, int | float) and isinstance(high, int | float) and high > low:
            return domain
    raise InvalidInputError(
        f"column {column!r} has no usable declared domain (categories, or min < max); "
        "its owner must declare one before it can be used in a federated job"
    )


def encode(frame: pd.DataFrame, features: Sequence[str], domains: Mapping[str, Domain]) -> Array:
    """Model inputs for ``frame``: scaled numbers and one-hot categories, in spec order."""
    parts = []
    for name in features:
        domain = domains[name]
        if isinstance(domain, list):
            values = frame[name].astype(str).str.strip().to_numpy()
            cats = np.array([str(c) for c in domain])
            parts.append((values[:, None] == cats[None, :]).astype(np.float64))
        else:
            low, high = float(domain["min"]), float(domain["max"])
            x = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=np.float64)
            x = np.clip(np.nan_to_num((x - low) / (high - low), nan=0.0), 0.0, 1.0)
            parts.append(x[:, None])
    return np.hstack(parts) if parts else np.zeros((len(frame), 0))


def encode_label(frame: pd.DataFrame, label: str, domain: Domain) -> Array:
    """1.0 where the label is the last declared category (e.g. ``>50K``), else 0.0."""
    if not isinstance(domain, list) or len(domain) != 2:
        raise InvalidInputError(f"label {label!r} must declare exactly two categories")
    positive = str(domain[-1]).strip()
    values = frame[label].astype(str).str.strip().str.rstrip(".")
    labels: Array = (values == positive).to_numpy(dtype=np.float64)
    return labels
