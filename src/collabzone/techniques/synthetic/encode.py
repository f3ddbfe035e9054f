"""Discretise a table onto a public domain, and decode synthetic codes back to values.

DP synthesis works on categorical codes. The bins must not come from the data (that
would leak, e.g., the exact minimum): categories come from the column's declared domain,
numbers are cut into ``bins`` equal-width intervals of the declared ``{"min", "max"}``
range. Values outside the declared domain map to an extra "other" code (categories) or
are clipped (numbers), so the domain stays public whatever the data holds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from collabzone.errors import InvalidInputError

OTHER = "__other__"


@dataclass(frozen=True)
class ColumnCodec:
    """How one column maps to codes ``0..size-1`` and back."""

    name: str
    categories: tuple[Any, ...] = ()
    """For categorical columns: the public categories (plus ``OTHER`` last)."""
    edges: tuple[float, ...] = ()
    """For numeric columns: ``bins + 1`` public bin edges."""

    @property
    def size(self) -> int:
        return len(self.categories) if self.categories else len(self.edges) - 1

    def encode(self, values: pd.Series) -> np.ndarray:
        if self.categories:
            index = {str(c): i for i, c in enumerate(self.categories)}
            other = index[OTHER]
            return np.fromiter(
                (index.get(str(v), other) for v in values.tolist()),
                dtype=np.int64,
                count=len(values),
            )
        numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
        numbers = np.where(np.isnan(numbers), self.edges[0], numbers)
        codes = np.searchsorted(np.asarray(self.edges[1:-1]), numbers, side="right")
        return codes.astype(np.int64)

    def decode(self, codes: np.ndarray, rng: np.random.Generator) -> list[Any]:
        """Values for ``codes``; numbers are drawn uniformly inside their bin."""
        if self.categories:
            return [self.categories[int(c)] for c in codes]
        low = np.asarray(self.edges[:-1])[codes]
        high = np.asarray(self.edges[1:])[codes]
        return [float(v) for v in rng.uniform(low, high)]


def codec_for(
    name: str, domain: Sequence[Any] | Mapping[str, Any] | None, bins: int
) -> ColumnCodec:
    """The codec of one column from its declared public domain (never from the data)."""
    if isinstance(domain, Mapping) and "min" in domain and "max" in domain:
        low, high = float(domain["min"]), float(domain["max"])
        if not high > low:
            raise InvalidInputError(f"column {name!r}: declared domain needs max > min")
        return ColumnCodec(name, edges=tuple(np.linspace(low, high, bins + 1).tolist()))
    if isinstance(domain, Sequence) and not isinstance(domain, str) and len(domain) > 0:
        return ColumnCodec(name, categories=(*domain, OTHER))
    raise InvalidInputError(
        f"column {name!r} has no declared public domain: declare its categories or "
        '{"min": ..., "max": ...} in the schema so bins do not depend on the data'
    )


@dataclass(frozen=True)
class TableCodec:
    """The codecs of every synthesised column, in order."""

    columns: tuple[ColumnCodec, ...]

    @property
    def shape(self) -> dict[str, int]:
        return {c.name: c.size for c in self.columns}

    def encode(self, frame: pd.DataFrame) -> dict[str, np.ndarray]:
        return {c.name: c.encode(frame[c.name]) for c in self.columns}

    def decode(self, codes: Mapping[str, np.ndarray], rng: np.random.Generator) -> pd.DataFrame:
        return pd.DataFrame(
            {c.name: c.decode(np.asarray(codes[c.name]), rng) for c in self.columns}
        )


def table_codec(
    domains: Mapping[str, Sequence[Any] | Mapping[str, Any] | None], bins: int = 16
) -> TableCodec:
    return TableCodec(tuple(codec_for(name, d, bins) for name, d in domains.items()))


def public_domains_of(frame: pd.DataFrame, bins_numeric: bool = True) -> dict[str, Any]:
    """Domains read off ``frame`` itself: ONLY for public data (tests, benchmarks on
    published data sets). A release must use the owner's declared domains instead."""
    out: dict[str, Any] = {}
    for name in frame.columns:
        column = frame[name]
        if bins_numeric and pd.api.types.is_numeric_dtype(column) and column.nunique() > 20:
            out[name] = {"min": float(column.min()), "max": float(column.max())}
        else:
            out[name] = sorted(column.astype(str).unique().tolist())
    return out
