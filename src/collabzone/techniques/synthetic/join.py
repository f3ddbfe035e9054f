"""Synthetic data of a join of datasets over their linked tokens, bounded per person.

The request names two or more datasets (``"datasets": [...]``) and, optionally, each one's
token column (``"on": {dataset: column}``; default: its entity column, the first join key,
as governed SQL uses). The protected entity is the **person** the token stands for: two
inputs are neighbours when one person's rows (in every joined dataset) are added or
removed. Before joining, each side keeps **one row per token**, picked at random (a draw
per row, so which row a person keeps depends only on that person's rows and fresh public
randomness); rows without a token are dropped. The inner join then holds at most one row
per person, so adding or removing a person moves the joined table by at most one row,
which is exactly the one-row sensitivity MST and AIM are calibrated to. The released table
is therefore (epsilon, delta)-DP for each person of each owner, and every owner's budget
is charged the request's cost. A side with many rows per token (an owner duplicating a
person to weigh them up) still counts that person once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from collabzone.errors import InvalidInputError
from collabzone.model import ColumnClass, Dataset

if TYPE_CHECKING:  # imported where the data is read: the catalogue's plan needs neither
    import numpy as np
    import pandas as pd


@dataclass(frozen=True)
class Source:
    """One dataset of the request: its token column (None: a single dataset, no join) and
    the columns synthesised from it, each with the name it gets in the synthetic table."""

    dataset: str
    key: str | None
    columns: tuple[tuple[str, str], ...]
    """(column in the dataset, column in the synthetic table)."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "key": self.key,
            "columns": [list(c) for c in self.columns],
        }

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> Source:
        return cls(
            data["dataset"], data["key"], tuple((str(a), str(b)) for a, b in data["columns"])
        )


def token_column(dataset: Dataset, on: Mapping[str, Any]) -> str:
    """The column of ``dataset`` holding the linked tokens: the one ``on`` names (it must be
    a join key), else the dataset's first join key (its entity column, as in governed SQL)."""
    named = on.get(dataset.name)
    keys = [c.name for c in dataset.columns_of(ColumnClass.JOIN_KEY)]
    if named is None:
        if not keys:
            raise InvalidInputError(
                f"{dataset.name!r} has no join_key column: a join needs each dataset's linked "
                "token column (run `collabzone link prepare`, or name it in `on`)"
            )
        return keys[0]
    if named not in keys:
        raise InvalidInputError(
            f"`on` names {named!r} for {dataset.name!r}, which is not one of its join_key "
            f"columns ({', '.join(keys) or 'none'}): only linked tokens join datasets"
        )
    return str(named)


def join_sources(
    datasets: Sequence[Dataset], on: Mapping[str, Any], columns: Any, eligible: Any
) -> tuple[Source, ...]:
    """The sources of a join request. ``columns`` (optional) lists ``dataset.column`` or
    plain names; by default every eligible column of every dataset. A name found in more
    than one dataset is written ``<dataset>_<column>`` in the synthetic table."""
    names = [d.name for d in datasets]
    if len(set(names)) != len(names):
        raise InvalidInputError("each dataset may appear once in `datasets`")
    unknown_on = set(on) - set(names)
    if unknown_on:
        raise InvalidInputError(f"`on` names datasets not joined: {', '.join(sorted(unknown_on))}")
    keys = {d.name: token_column(d, on) for d in datasets}
    if columns is None:
        picked = [(d.name, c.name) for d in datasets for c in d.columns if eligible(c)]
    else:
        if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
            raise InvalidInputError("`columns` must be a list of column names")
        picked = [_resolve(datasets, c) for c in columns]
    if len(set(picked)) != len(picked):
        raise InvalidInputError("`columns` names a column twice")
    counts: dict[str, int] = {}
    for _, column in picked:
        counts[column] = counts.get(column, 0) + 1
    sources = tuple(
        Source(
            d.name,
            keys[d.name],
            tuple(
                (column, f"{d.name}_{column}" if counts[column] > 1 else column)
                for name, column in picked
                if name == d.name
            ),
        )
        for d in datasets
    )
    out = [new for s in sources for _, new in s.columns]
    if len(set(out)) != len(out):
        raise InvalidInputError(f"the synthetic table's column names clash: {out}")
    return sources


def _resolve(datasets: Sequence[Dataset], name: str) -> tuple[str, str]:
    dataset_name, dot, column = name.partition(".")
    if dot:
        match = [d for d in datasets if d.name == dataset_name]
        if not match:
            raise InvalidInputError(f"column {name!r}: {dataset_name!r} is not joined")
        if match[0].column(column) is None:
            raise InvalidInputError(f"{dataset_name!r} has no column {column!r}")
        return dataset_name, column
    holders = [d.name for d in datasets if d.column(name) is not None]
    if not holders:
        raise InvalidInputError(f"no joined dataset has a column {name!r}")
    if len(holders) > 1:
        raise InvalidInputError(
            f"column {name!r} is in {', '.join(holders)}: write it as <dataset>.{name}"
        )
    return holders[0], name


def one_row_per_token(frame: pd.DataFrame, key: str, rng: np.random.Generator) -> pd.DataFrame:
    """``frame`` with one row per non-null ``key``, chosen uniformly at random among that
    token's rows (a random draw per row, smallest kept): the person-level bound."""
    import numpy as np

    frame = frame[frame[key].notna()]
    order = np.argsort(rng.random(len(frame)), kind="stable")
    return frame.iloc[order].drop_duplicates(subset=[key], keep="first")


def one_row_per_person(frame: pd.DataFrame, key: str, rng: np.random.Generator) -> pd.DataFrame:
    """A single dataset bounded per person: each non-null ``key`` keeps one random row (as
    :func:`one_row_per_token`), rows without a token stay (each stands for no one else), and
    the original row order is kept. A dataset already holding one row per token is returned
    as it is (no randomness drawn)."""
    import pandas as pd

    tokens = frame[key]
    if not tokens[tokens.notna()].duplicated().any():
        return frame
    kept = one_row_per_token(frame, key, rng)
    return pd.concat([kept, frame[tokens.isna()]]).sort_index()


def bounded_join(
    frames: Mapping[str, pd.DataFrame], sources: Sequence[Source], rng: np.random.Generator
) -> pd.DataFrame:
    """The inner join of every source on its token, each side first bounded to one row
    per token; the columns are the synthetic table's names (the tokens are dropped)."""
    joined: pd.DataFrame | None = None
    for source in sources:
        assert source.key is not None
        side = one_row_per_token(frames[source.dataset], source.key, rng)
        side = side[[source.key, *(c for c, _ in source.columns)]]
        side = side.rename(columns={source.key: "__token__", **dict(source.columns)})
        side["__token__"] = side["__token__"].astype(str)
        joined = side if joined is None else joined.merge(side, on="__token__", how="inner")
    assert joined is not None
    return joined.drop(columns="__token__").reset_index(drop=True)
