"""The generalisation lattice and the evaluation of one node (one full-domain recoding).

A node gives one generalisation level per quasi-identifier. Evaluating it groups the
(distinct, weighted) rows into equivalence classes by combining the generalised integer
codes into one key, checks every privacy model on every class, and prices the result with
the quality metric. Nodes are cached: the search counts each node evaluated once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from collabzone.errors import InvalidInputError
from collabzone.techniques.deid._encode import Encoded, row_groups
from collabzone.techniques.deid._metrics import (
    SINGLE_DIMENSIONAL,
    AggregateName,
    MetricName,
    attribute_costs,
    discernibility,
    discernibility_bound,
    discernibility_monotonic,
    rank_key,
)
from collabzone.techniques.deid._models import (
    ClassStats,
    DistinctLDiversity,
    EntropyLDiversity,
    KAnonymity,
    PrivacyModel,
    RecursiveCLDiversity,
)
from collabzone.techniques.deid._risk_models import AverageRisk, DeltaPresence, PopulationUniqueness

Node = tuple[int, ...]
_MAX_KEY = 2**62
_SNAPSHOTS = 512
_EMPTY = np.iinfo(np.int64).max
"""How many evaluated nodes keep their class table for rolling up coarser nodes."""
_HALVES = 512
"""How many compressed half-keys (prefix or suffix attributes at given levels) to keep."""
_CACHE_BYTES = 96 * 2**20
"""Memory the class tables may take, and the half-keys likewise: on a million rows a
class table is megabytes, so fewer are kept (the oldest go first)."""


@dataclass(frozen=True)
class NodeResult:
    """What one node achieves: pass/fail, suppression, score and its monotone bound."""

    levels: Node
    passes: bool
    passes_monotone: bool
    """Whether the monotone part of the model holds (pruning uses this)."""
    suppressed_rows: int
    classes: int
    score: float
    bound: float
    """A lower bound of the score of this node and of every more general node."""
    rank: tuple[float, ...] | None = None
    """Under the RANK aggregate: the per-attribute values sorted descending (compared
    lexicographically instead of ``score``)."""
    per_attribute: tuple[float, ...] = ()
    """Attribute-wise metrics: the value of each quasi-identifier before aggregation."""

    @property
    def order(self) -> tuple[float, ...]:
        """What the search minimises: ``rank`` under RANK, else ``(score,)``."""
        return self.rank if self.rank is not None else (self.score,)

    def as_dict(self) -> dict[str, object]:
        return {
            "levels": list(self.levels),
            "passes": self.passes,
            "suppressed_rows": self.suppressed_rows,
            "classes": self.classes,
            "score": self.score,
        }

    @property
    def height(self) -> int:
        return sum(self.levels)


class _Snapshot:
    """A node's classes: sizes, sensitive histograms, and (lazily, only if the node is
    rolled up from) each class's generalised code per attribute, read off one of its rows."""

    def __init__(
        self,
        levels: np.ndarray,
        sizes: np.ndarray,
        hists: dict[str, np.ndarray],
        row_class: np.ndarray,
        row_codes: Sequence[np.ndarray],
    ) -> None:
        self.levels, self.sizes, self.hists = levels, sizes, hists
        self._row_class, self._row_codes = row_class, row_codes
        self.first: np.ndarray | None = None
        """Each class's first input row (ARX's representative: ties in the order risk
        models suppress classes go to the class that appears first); only kept when a
        table-level risk model needs it."""
        self._member: np.ndarray | None = None
        self._columns: dict[int, np.ndarray] = {}

    def column(self, i: int) -> np.ndarray:
        """The code of attribute ``i`` of every class."""
        out = self._columns.get(i)
        if out is None:
            if self._member is None:  # one row per class (any: its rows share all codes)
                self._member = np.empty(self.sizes.shape[0], dtype=np.int64)
                self._member[self._row_class] = np.arange(self._row_class.shape[0])
            out = self._columns[i] = self._row_codes[i][self._member]
        return out


_FREE = _Snapshot(np.zeros(0), np.zeros(0, dtype=np.int64), {}, np.zeros(0, dtype=np.int64), [])
"""A released slot (its levels are impossible, so it is never chosen)."""


def _lifts(maps: np.ndarray) -> list[list[np.ndarray]]:
    """``out[a][b][code]``: the level-``b`` code of a level-``a`` code (a <= b)."""
    out = []
    for a in range(maps.shape[0]):
        row = []
        for b in range(maps.shape[0]):
            lift = np.zeros(int(maps[a].max()) + 1, dtype=np.int64)
            if b >= a:
                lift[maps[a]] = maps[b]
            row.append(lift)
        out.append(row)
    return out


@dataclass(frozen=True)
class Partition:
    """The classes of one node: class per distinct row, class sizes, kept classes."""

    group_class: np.ndarray
    sizes: np.ndarray
    kept: np.ndarray
    stats: ClassStats


class Lattice:
    """Evaluates nodes of the lattice of ``encoded`` under ``models`` and ``metric``."""

    def __init__(
        self,
        encoded: Encoded,
        models: Sequence[PrivacyModel],
        suppression_limit: float,
        metric: MetricName = "discernibility",
        aggregate: AggregateName | None = None,
    ) -> None:
        self.encoded = encoded
        self.models = tuple(models)
        self.metric = metric
        self.limit_rows = int(np.floor(suppression_limit * encoded.n_rows + 1e-9))
        self.heights: Node = tuple(q.height for q in encoded.qis)
        self.monotone = tuple(
            m
            for m in self.models
            if m.monotone_with_generalisation
            and (self.limit_rows == 0 or m.monotone_with_suppression)
        )
        self.all_monotone = len(self.monotone) == len(self.models)
        self.needs_population = any(getattr(m, "needs_population", False) for m in self.models)
        self._group_first: np.ndarray | None = None
        if any(isinstance(m, AverageRisk | PopulationUniqueness) for m in self.models):
            rows = encoded.row_group.shape[0]
            self._group_first = np.full(encoded.groups.shape[0], rows, dtype=np.int64)
            np.minimum.at(self._group_first, encoded.row_group, np.arange(rows, dtype=np.int64))
        d = len(encoded.qis)
        # generalised code of every distinct row at every level; int32 halves the largest
        # array of the search (codes are hierarchy indices, far below 2**31)
        self.gen = [
            [q.maps[level][encoded.groups[:, i]].astype(np.int32) for level in range(q.height + 1)]
            for i, q in enumerate(encoded.qis)
        ]
        self.sens = {
            s.name: (encoded.groups[:, d + j], len(s.values))
            for j, s in enumerate(encoded.sensitive)
        }
        w = encoded.weights
        self._overall = {
            s.name: np.bincount(codes, weights=w, minlength=m) / encoded.n_rows
            for s, (codes, m) in zip(encoded.sensitive, self.sens.values(), strict=True)
        }
        self._values = {s.name: s.values for s in encoded.sensitive}
        self.costs = (
            None if metric in SINGLE_DIMENSIONAL else attribute_costs(encoded, metric, aggregate)
        )
        self.ranked = self.costs is not None and self.costs.aggregate == "rank"
        """RANK compares vectors: no scalar bound, so the search prunes nothing by score."""
        self._dense_limit = max(2 * encoded.groups.shape[0], 1 << 12)
        self.n_codes = [q.sizes() for q in encoded.qis]
        self.lifts = [_lifts(q.maps) for q in encoded.qis]
        # cached class tables; free slots have an impossible level and an "infinite" size
        self._snaps: list[_Snapshot] = []
        self._snap_next = 0
        self._halves: dict[tuple[int, ...], tuple[np.ndarray, int]] = {}
        self._snap_levels = np.full((_SNAPSHOTS, len(self.heights)), np.iinfo(np.int64).max)
        self._snap_sizes = np.full(_SNAPSHOTS, _EMPTY, dtype=np.int64)
        self._snap_bytes = np.zeros(_SNAPSHOTS, dtype=np.int64)
        self._snap_total = 0
        self._max_halves = int(
            np.clip(_CACHE_BYTES // (8 * max(encoded.groups.shape[0], 1)), 4, _HALVES)
        )
        self.min_class_size = _min_class_size(self.models)
        self._sized = any(
            isinstance(
                m, KAnonymity | DistinctLDiversity | EntropyLDiversity | RecursiveCLDiversity
            )
            for m in self.models
        )
        self._cache: dict[Node, NodeResult] = {}
        self.checked = 0

    @property
    def top(self) -> Node:
        return self.heights

    @property
    def bottom(self) -> Node:
        return tuple(0 for _ in self.heights)

    @property
    def size(self) -> int:
        return int(np.prod([h + 1 for h in self.heights], dtype=np.int64))

    def _group(self, codes: Sequence[np.ndarray], levels: Node) -> tuple[np.ndarray, int]:
        """Class id of each input row (distinct row or snapshot class) and the class count."""
        return self._compress(codes, [self.n_codes[i][lv] for i, lv in enumerate(levels)])

    def _compress(
        self, codes: Sequence[np.ndarray], sizes: Sequence[int]
    ) -> tuple[np.ndarray, int]:
        """Dense ids (0..count-1) of the combinations of ``codes`` (radices ``sizes``)."""
        key = np.zeros(codes[0].shape[0], dtype=np.int64)
        span = 1
        for column, n_codes in zip(codes, sizes, strict=True):
            if span * n_codes >= _MAX_KEY:
                key, uniques = pd.factorize(key)
                span = len(uniques)
            key = key * n_codes + column
            span *= n_codes
        if span <= self._dense_limit:  # small key space: counting beats hashing
            present = np.bincount(key, minlength=span) > 0
            ids = np.cumsum(present) - 1
            return ids[key], int(ids[-1]) + 1
        inverse, uniques = pd.factorize(key)  # hash table: no sort of the keys
        return np.asarray(inverse, dtype=np.int64), len(uniques)

    def _half(self, part: slice, levels: Node) -> tuple[np.ndarray, int]:
        """Compressed combined code of the attributes in ``part`` (cached per levels)."""
        key = (part.start, *levels[part])
        hit = self._halves.get(key)
        if hit is None:
            attrs = range(len(self.heights))[part]
            hit = self._compress(
                [self.gen[i][levels[i]] for i in attrs],
                [self.n_codes[i][levels[i]] for i in attrs],
            )
            if len(self._halves) >= self._max_halves:
                self._halves.pop(next(iter(self._halves)))
            self._halves[key] = hit
        return hit

    def _from_groups(self, levels: Node) -> tuple[_Snapshot, np.ndarray]:
        codes = [self.gen[i][level] for i, level in enumerate(levels)]
        if len(levels) > 1:
            # two cached halves (prefix and suffix of the attributes) make one key
            mid = len(levels) // 2
            head, n_head = self._half(slice(0, mid), levels)
            tail, n_tail = self._half(slice(mid, len(levels)), levels)
            group_class, n_classes = self._compress([head, tail], [n_head, n_tail])
        else:
            group_class, n_classes = self._group(codes, levels)
        w = self.encoded.weights
        sizes = np.bincount(group_class, weights=w, minlength=n_classes).astype(np.int64)
        hists = {}
        for name, (sens, m) in self.sens.items():
            flat = np.bincount(group_class * m + sens, weights=w, minlength=n_classes * m)
            hists[name] = flat.reshape(n_classes, m)
        snap = _Snapshot(np.array(levels), sizes, hists, group_class, codes)
        snap.first = _first(self._group_first, group_class, n_classes)
        return snap, group_class

    def _from_snapshot(self, snap: _Snapshot, levels: Node) -> _Snapshot:
        codes = [
            snap.column(i)
            if snap.levels[i] == level
            else self.lifts[i][int(snap.levels[i])][level][snap.column(i)]
            for i, level in enumerate(levels)
        ]
        cls, n_classes = self._group(codes, levels)
        sizes = np.bincount(cls, weights=snap.sizes, minlength=n_classes).astype(np.int64)
        hists = {
            name: np.column_stack(
                [np.bincount(cls, weights=h[:, v], minlength=n_classes) for v in range(h.shape[1])]
            )
            for name, h in snap.hists.items()
        }
        out = _Snapshot(np.array(levels), sizes, hists, cls, codes)
        out.first = _first(snap.first, cls, n_classes)
        return out

    def _snapshot(self, levels: Node) -> _Snapshot:
        """The classes of ``levels``, rolled up from the smallest cached finer node."""
        here = np.array(levels)
        finer = np.all(self._snap_levels <= here, axis=1)
        if finer.any():
            slot = int(np.argmin(np.where(finer, self._snap_sizes, _EMPTY)))
            snap = self._from_snapshot(self._snaps[slot], levels)
        else:
            snap, _ = self._from_groups(levels)
        self._remember(snap)
        return snap

    def _remember(self, snap: _Snapshot) -> None:
        """Keep the most recent class tables (a ring): the search walks up paths, so
        recent nodes are the likeliest finer neighbours of the next one."""
        slot = self._snap_next % _SNAPSHOTS
        self._snap_next += 1
        if slot < len(self._snaps):
            self._snaps[slot] = snap
        else:
            self._snaps.append(snap)
        self._snap_levels[slot] = snap.levels
        self._snap_sizes[slot] = snap.sizes.shape[0]
        # its row map, sizes, histograms and (later) per-attribute code columns
        size = int(
            snap._row_class.nbytes
            + snap.sizes.nbytes * (2 + len(self.heights))
            + sum(h.nbytes for h in snap.hists.values())
        )
        self._snap_total += size - int(self._snap_bytes[slot])
        self._snap_bytes[slot] = size
        oldest = slot
        while self._snap_total > _CACHE_BYTES:
            oldest = (oldest + 1) % _SNAPSHOTS
            if oldest == slot:
                break
            if oldest < len(self._snaps) and self._snap_bytes[oldest]:
                self._snap_levels[oldest] = np.iinfo(np.int64).max
                self._snap_sizes[oldest] = _EMPTY
                self._snap_total -= int(self._snap_bytes[oldest])
                self._snap_bytes[oldest] = 0
                self._snaps[oldest] = _FREE

    def _stats(self, snap: _Snapshot) -> tuple[ClassStats, np.ndarray]:
        population, unmatched = self._population(snap) if self.needs_population else (None, 0)
        stats = ClassStats(
            snap.sizes, snap.hists, self._overall, self._values, population, unmatched
        )
        levels = tuple(int(v) for v in snap.levels)
        order = None
        if snap.first is not None:
            loss = self._class_loss(snap) if self.metric == "loss" else None
            order = (snap.first,) if loss is None else (snap.first, loss)
        return stats, self._kept(stats, self.models, levels, order)

    def _class_loss(self, snap: _Snapshot) -> np.ndarray:
        """Each class's loss as ARX's ``MetricMDNMLoss`` prices one class (|E| times the
        share of the domain its value covers, per QI, then the aggregate): ARX orders
        equal-size classes by it, lowest first, before suppressing them for a risk model."""
        assert self.costs is not None
        sizes = snap.sizes.astype(np.float64)
        values = [
            sizes * (1.0 - self.costs.gaps[i][int(level)][snap.column(i)])
            for i, level in enumerate(snap.levels)
        ]
        agg = self.costs.aggregate
        if agg in ("geometric_mean", "rank"):
            out = np.ones_like(sizes)
            for v in values:  # ARX: the product of (v + 1)^(1/d), in QI order
                out *= (v + 1.0) ** (1.0 / len(values))
            return out
        if agg == "max":
            return np.asarray(np.max(values, axis=0))
        total = np.zeros_like(sizes)
        for v in values:
            total += v
        return total / len(values) if agg == "arithmetic_mean" else total

    def _population(self, snap: _Snapshot) -> tuple[np.ndarray, int]:
        """Per class, the population rows generalised into it (both sides' generalised
        codes hashed into one id space), and the population rows in no class."""
        pop, pop_w = self.encoded.population_groups, self.encoded.population_weights
        if pop is None or pop_w is None:
            raise InvalidInputError(
                "k-map and delta-presence need a population table: give `population`"
            )
        levels = [int(v) for v in snap.levels]
        n_classes = snap.sizes.shape[0]
        columns = [
            np.concatenate([snap.column(i), q.maps[lv][pop[:, i]]])
            for i, (q, lv) in enumerate(zip(self.encoded.qis, levels, strict=True))
        ]
        radices = [self.n_codes[i][lv] for i, lv in enumerate(levels)]
        ids = row_groups(columns, radices)
        counts = np.bincount(ids[n_classes:], weights=pop_w, minlength=int(ids.max()) + 1)
        out = counts[ids[:n_classes]].astype(np.int64)
        matched = np.zeros(counts.shape[0], dtype=bool)
        matched[ids[:n_classes]] = True
        unmatched = int(pop_w[~matched[ids[n_classes:]]].sum())
        if (out < snap.sizes).any():
            raise InvalidInputError(
                "the population table must contain every row of the table (the table is a "
                "sample of it): some class has more rows in the table than in the population"
            )
        return np.asarray(out), unmatched

    def _kept(
        self,
        stats: ClassStats,
        models: Sequence[PrivacyModel],
        levels: Node,
        order: tuple[np.ndarray, ...] | None = None,
    ) -> np.ndarray:
        """The classes ``models`` keep: every per-class model, then the table-level (risk)
        models, which suppress the smallest kept classes until they hold. At the top node
        every class is fully generalised and ARX leaves it out of the risk distribution."""
        kept = np.ones(stats.sizes.shape[0], dtype=bool)
        for model in models:
            kept &= model.passes(stats)
        if levels != self.heights:
            for model in models:
                if isinstance(model, AverageRisk | PopulationUniqueness):
                    kept = model.enforce(stats.sizes, kept, order)
        return kept

    def partition(self, levels: Node) -> Partition:
        """Group the rows into the classes of node ``levels`` and check the models."""
        snap, group_class = self._from_groups(levels)
        stats, kept = self._stats(snap)
        return Partition(group_class, snap.sizes, kept, stats)

    def cached(self) -> list[NodeResult]:
        """Every node evaluated so far."""
        return list(self._cache.values())

    def evaluate(self, levels: Node) -> NodeResult:
        """The result of node ``levels`` (cached; ``checked`` counts real evaluations)."""
        cached = self._cache.get(levels)
        if cached is not None:
            return cached
        self.checked += 1
        snap = self._snapshot(levels)
        stats, kept = self._stats(snap)
        sizes = snap.sizes
        suppressed = int(sizes[~kept].sum())
        if self.all_monotone:
            mono_ok = suppressed <= self.limit_rows
        else:
            mono_kept = self._kept(stats, self.monotone, levels)
            mono_ok = int(sizes[~mono_kept].sum()) <= self.limit_rows
        n = self.encoded.n_rows
        rank: tuple[float, ...] | None = None
        per_attribute: tuple[float, ...] = ()
        if self.costs is None:
            if self.metric == "discernibility":
                score: float = discernibility(sizes, kept, n)
                bound: float = discernibility_bound(sizes, self.min_class_size)
            else:
                score = bound = discernibility_monotonic(sizes)
        else:
            base = self.costs.values(levels)
            values = base
            if suppressed:
                gone = ~kept
                codes = [snap.column(i)[gone] for i in range(len(levels))]
                values = base + self.costs.suppression(levels, codes, sizes[gone])
            score = self.costs.score(values)
            bound = self.costs.score(base)
            per_attribute = tuple(float(v) for v in values)
            if self.ranked:
                rank, bound = rank_key(values), -np.inf
        result = NodeResult(
            levels=levels,
            passes=suppressed <= self.limit_rows and not self._absent(stats),
            passes_monotone=mono_ok,
            suppressed_rows=suppressed,
            classes=int(kept.sum()),
            score=score,
            bound=bound,
            rank=rank,
            per_attribute=per_attribute,
        )
        self._cache[levels] = result
        return result

    def _absent(self, stats: ClassStats) -> bool:
        """Delta-presence with delta_min > 0 and population rows in no class: whoever is in
        those is known to be absent from the table (delta 0 < delta_min), and suppression
        cannot remove rows that are not there, so the node fails. As in ARX
        (``HashGroupify``), only when no model sets a minimal class size (k, l): ARX then
        counts such an empty class as failing that size instead, which it may suppress."""
        if stats.population_unmatched == 0 or self._sized:
            return False
        return any(isinstance(m, DeltaPresence) and m.delta_min > 0 for m in self.models)


def _first(parts: np.ndarray | None, to_class: np.ndarray, n_classes: int) -> np.ndarray | None:
    """The first input row of each class, from the first rows of the parts it merges."""
    if parts is None:
        return None
    out = np.full(n_classes, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(out, to_class, parts)
    return out


def _min_class_size(models: Sequence[PrivacyModel]) -> int:
    """The fewest rows a class that satisfies every model can hold (k, or l distinct values)."""
    size = 1
    for model in models:
        if isinstance(model, KAnonymity):
            size = max(size, model.k)
        elif isinstance(model, DistinctLDiversity | EntropyLDiversity | RecursiveCLDiversity):
            size = max(size, int(np.ceil(model.l - 1e-9)))
    return size
