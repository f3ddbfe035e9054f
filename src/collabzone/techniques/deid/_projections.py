"""Bounds from projections: what a node must suppress and score, without evaluating it.

A node's classes split the classes of its projection onto any two quasi-identifiers, so
per-pair contingency tables (one per attribute pair at the lowest levels, rolled up to
every level pair) bound every node of the lattice at once:

* rows that the monotone models force out (a projected class too small for k, or with
  fewer than l distinct sensitive values, only holds rows the node must suppress);
* the number of classes (at most the non-empty combinations of a pair times the other
  attributes' value counts), hence a lower bound n^2 / C of discernibility.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from collabzone.techniques.deid._lattice import Lattice
from collabzone.techniques.deid._metrics import combine
from collabzone.techniques.deid._models import DistinctLDiversity, KAnonymity


def _factorize(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dense ids of ``keys`` and, per id, the index of its first occurrence (hashing, no
    sort and no table as large as the key space)."""
    ids, uniques = pd.factorize(keys)
    first = np.empty(len(uniques), dtype=np.int64)
    first[ids[::-1]] = np.arange(len(ids) - 1, -1, -1)
    return np.asarray(ids, dtype=np.int64), first


class Projections:
    """Pair-projection bounds for the nodes of ``lattice`` (tables computed once)."""

    def __init__(self, lattice: Lattice) -> None:
        self.lattice = lattice
        self._pairs: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] | None = None
        self._forced: tuple[np.ndarray, np.ndarray] | None = None

    def pair_tables(self) -> dict[tuple[int, int], tuple[np.ndarray, np.ndarray]]:
        """Per attribute pair and level pair: rows the monotone models force out, and the
        number of non-empty combinations. The non-empty combinations of a pair at the
        lowest levels are listed once (index arrays, never a dense leaves x leaves table)
        and regrouped at every level pair by lifting their codes."""
        lat = self.lattice
        if self._pairs is not None:
            return self._pairs
        k = 1
        diverse: list[DistinctLDiversity] = []
        for model in lat.monotone:
            if isinstance(model, KAnonymity):
                k = max(k, model.k)
            elif isinstance(model, DistinctLDiversity):
                diverse.append(model)
        w = lat.encoded.weights.astype(float)
        d = len(lat.heights)
        pairs = {}
        for i in range(d):
            for j in range(i + 1, d):
                nj = lat.n_codes[j][0]
                combo, first = _factorize(lat.gen[i][0].astype(np.int64) * nj + lat.gen[j][0])
                n_combos = int(first.shape[0])
                weight = np.bincount(combo, weights=w, minlength=n_combos)
                ci, cj = lat.gen[i][0][first], lat.gen[j][0][first]  # index lifts only
                # per l-model: the (combination, sensitive value) pairs present
                present = []
                for model in diverse:
                    codes, m = lat.sens[model.attribute]
                    _, at = _factorize(combo * m + codes)
                    present.append((model.l, combo[at], codes[at], m))
                shape = (lat.heights[i] + 1, lat.heights[j] + 1)
                forced = np.zeros(shape, dtype=np.int64)
                count = np.zeros(shape, dtype=np.int64)
                for vi in range(shape[0]):
                    li = lat.lifts[i][0][vi][ci]
                    for vj in range(shape[1]):
                        lj = lat.lifts[j][0][vj][cj]
                        cell, cells = _factorize(li * lat.n_codes[j][vj] + lj)
                        n_cells = int(cells.shape[0])
                        sizes = np.bincount(cell, weights=weight, minlength=n_cells)
                        bad = sizes < k
                        for l_needed, pc, sens, m in present:
                            _, distinct = _factorize(cell[pc] * m + sens)
                            values = np.bincount(cell[pc][distinct], minlength=n_cells)
                            bad |= values < l_needed
                        forced[vi, vj] = round(float(sizes[bad].sum()))
                        count[vi, vj] = n_cells
                pairs[(i, j)] = (forced, count)
        self._pairs = pairs
        return pairs

    def surely_failing(self, nodes: np.ndarray) -> np.ndarray:
        """Nodes (rows of levels) that certainly fail the monotone part, from projections.

        A node's classes split the classes of its projection onto any two attributes, so a
        projected class too small for k (or with fewer than l distinct sensitive values)
        only holds rows that the node must suppress. If some pair already forces more
        suppression than the limit allows, the node fails without being evaluated.
        """
        lat = self.lattice
        return np.asarray(self.forced_rows(nodes) > lat.limit_rows)

    def forced_rows(self, nodes: np.ndarray) -> np.ndarray:
        """Rows each node must suppress (a lower bound, from pair projections)."""
        lat = self.lattice
        if self._forced is not None and self._forced[0] is nodes:
            return self._forced[1]
        forced = np.zeros(nodes.shape[0], dtype=np.int64)
        if not any(isinstance(m, KAnonymity | DistinctLDiversity) for m in lat.monotone):
            return forced
        for (i, j), (table, _) in self.pair_tables().items():
            forced = np.maximum(forced, table[nodes[:, i], nodes[:, j]])
        self._forced = (nodes, forced)
        return forced

    def own_bounds(self, nodes: np.ndarray) -> np.ndarray:
        """A lower bound of each node's own score (not of its successors'): the cheap bound
        raised by the rows it must suppress, each costing |D| under discernibility."""
        lat = self.lattice
        cheap = self.cheap_bounds(nodes)
        if lat.metric != "discernibility":
            return cheap
        n = float(lat.encoded.n_rows)
        forced = self.forced_rows(nodes).astype(float)
        return np.asarray(np.maximum(cheap, n * forced))

    def cheap_bounds(self, nodes: np.ndarray) -> np.ndarray:
        """A lower bound of the score of each node (rows of levels) without evaluating it.

        Attribute-wise metrics: their exact no-suppression value (nothing under RANK).
        Discernibility (either variant): n^2 / C,
        where C bounds the number of classes (distinct rows; product of the attributes'
        value counts; for each pair, its non-empty combinations times the others' counts).
        """
        lat = self.lattice
        if lat.ranked:
            return np.full(nodes.shape[0], -np.inf)
        if lat.costs is not None:
            values = np.column_stack([t[nodes[:, i]] for i, t in enumerate(lat.costs.totals)])
            return np.asarray(combine(values, lat.costs.aggregate), dtype=float)
        counts = np.column_stack(
            [np.asarray(lat.n_codes[i], dtype=float)[nodes[:, i]] for i in range(len(lat.heights))]
        )
        product = counts.prod(axis=1)
        classes = np.minimum(product, float(lat.encoded.groups.shape[0]))
        if len(lat.heights) > 1:
            for (i, j), (_, count) in self.pair_tables().items():
                pair_bound = (
                    count[nodes[:, i], nodes[:, j]] * product / (counts[:, i] * counts[:, j])
                )
                classes = np.minimum(classes, pair_bound)
        n = float(lat.encoded.n_rows)
        return np.asarray(n * n / np.maximum(classes, 1.0))
