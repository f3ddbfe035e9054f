"""Mondrian: local (multidimensional) recoding, the alternative to full-domain recoding.

LeFevre, DeWitt and Ramakrishnan (2006), strict partitioning: split the rows recursively
at the median of the quasi-identifier with the widest normalised range, as long as both
halves still satisfy every privacy model. Each final partition is one class; its values
are released as the range ``lo-hi`` (numeric hierarchies) or the lowest common ancestor in
the hierarchy (categorical ones). Nothing is suppressed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from collabzone.techniques.deid._encode import Encoded
from collabzone.techniques.deid._hierarchy import format_value
from collabzone.techniques.deid._models import ClassStats, PrivacyModel


@dataclass(frozen=True)
class LocalRecoding:
    """Per row: the class (partition) it fell in and its released label per attribute."""

    row_class: np.ndarray
    sizes: np.ndarray
    labels: tuple[np.ndarray, ...]
    levels: tuple[np.ndarray, ...]
    """Per attribute and row: the hierarchy level of the lowest common ancestor."""
    covered: tuple[np.ndarray, ...]
    """Per attribute and row: how many hierarchy leaves the released value covers."""


def _satisfies(
    rows: np.ndarray,
    encoded: Encoded,
    models: Sequence[PrivacyModel],
    overall: dict[str, np.ndarray],
) -> bool:
    hists = {
        s.name: np.bincount(s.codes[rows], minlength=len(s.values))[None, :].astype(float)
        for s in encoded.sensitive
    }
    stats = ClassStats(
        np.array([len(rows)]), hists, overall, {s.name: s.values for s in encoded.sensitive}
    )
    return all(bool(m.passes(stats)[0]) for m in models)


def mondrian(encoded: Encoded, models: Sequence[PrivacyModel]) -> LocalRecoding | None:
    """Partition the rows with Mondrian; None if even the whole table fails the models."""
    n = encoded.n_rows
    overall = {s.name: np.bincount(s.codes, minlength=len(s.values)) / n for s in encoded.sensitive}
    everything = np.arange(n)
    if not _satisfies(everything, encoded, models, overall):
        return None
    codes = [q.codes for q in encoded.qis]
    spans = [max(q.maps.shape[1] - 1, 1) for q in encoded.qis]
    stack, done = [everything], []
    while stack:
        part = stack.pop()
        widths = [
            (int(c[part].max() - c[part].min()) / s, i)
            for i, (c, s) in enumerate(zip(codes, spans, strict=True))
        ]
        split = False
        for width, i in sorted(widths, reverse=True):
            if width == 0:
                break
            values = codes[i][part]
            median = np.median(values)
            left = values <= median
            if left.all():
                left = values < median
            if not left.any() or left.all():
                continue
            lhs, rhs = part[left], part[~left]
            if _satisfies(lhs, encoded, models, overall) and _satisfies(
                rhs, encoded, models, overall
            ):
                stack.extend([lhs, rhs])
                split = True
                break
        if not split:  # no attribute splits without breaking a model
            done.append(part)
    return _label(encoded, done)


def _label(encoded: Encoded, parts: list[np.ndarray]) -> LocalRecoding:
    n = encoded.n_rows
    row_class = np.empty(n, dtype=np.int64)
    sizes = np.array([len(p) for p in parts], dtype=np.int64)
    labels, levels, covered = [], [], []
    for q in encoded.qis:
        lab = np.empty(n, dtype=object)
        lev = np.zeros(n, dtype=np.int64)
        cov = np.zeros(n, dtype=np.int64)
        under = [np.bincount(q.maps[level]) for level in range(q.height + 1)]
        for c, part in enumerate(parts):
            leaves = q.codes[part]
            lo, hi = int(leaves.min()), int(leaves.max())
            level = next(
                lv for lv in range(q.height + 1) if np.all(q.maps[lv][leaves] == q.maps[lv][lo])
            )
            if q.hierarchy.numeric and q.floor == 0:
                first, last = q.hierarchy.rows[lo][0], q.hierarchy.rows[hi][0]
                text = (
                    first
                    if lo == hi
                    else f"{format_value(float(first))}-{format_value(float(last))}"
                )
                count = hi - lo + 1
            else:
                text = q.labels[level][q.maps[level][lo]]
                count = int(under[level][q.maps[level][lo]])
            lab[part], lev[part], cov[part] = text, level, count
            row_class[part] = c
        labels.append(lab)
        levels.append(lev)
        covered.append(cov)
    return LocalRecoding(row_class, sizes, tuple(labels), tuple(levels), tuple(covered))
