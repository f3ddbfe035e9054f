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

from collabzone.techniques.deid._encode import Encoded
from collabzone.techniques.deid._metrics import (
    MetricName,
    attribute_costs,
    discernibility,
    discernibility_bound,
)
from collabzone.techniques.deid._models import (
    ClassStats,
    DistinctLDiversity,
    EntropyLDiversity,
    KAnonymity,
    PrivacyModel,
    RecursiveCLDiversity,
)

Node = tuple[int, ...]
_MAX_KEY = 2**62


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
    ) -> None:
        self.encoded = encoded
        self.models = tuple(models)
        self.metric = metric
        self.limit_rows = int(np.floor(suppression_limit * encoded.n_rows + 1e-9))
        self.heights: Node = tuple(q.height for q in encoded.qis)
        self.monotone = tuple(
            m for m in self.models if self.limit_rows == 0 or m.monotone_with_suppression
        )
        self.all_monotone = len(self.monotone) == len(self.models)
        d = len(encoded.qis)
        self._gen = [
            [q.maps[level][encoded.groups[:, i]] for level in range(q.height + 1)]
            for i, q in enumerate(encoded.qis)
        ]
        self._sens = {
            s.name: (encoded.groups[:, d + j], len(s.values))
            for j, s in enumerate(encoded.sensitive)
        }
        w = encoded.weights
        self._overall = {
            s.name: np.bincount(codes, weights=w, minlength=m) / encoded.n_rows
            for s, (codes, m) in zip(encoded.sensitive, self._sens.values(), strict=True)
        }
        self._values = {s.name: s.values for s in encoded.sensitive}
        self._costs = None if metric == "discernibility" else attribute_costs(encoded, metric)
        self._dense_limit = max(8 * encoded.groups.shape[0], 1 << 16)
        self.min_class_size = _min_class_size(self.models)
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

    def partition(self, levels: Node) -> Partition:
        """Group the rows into the classes of node ``levels`` and check the models."""
        key = np.zeros(self.encoded.groups.shape[0], dtype=np.int64)
        span = 1
        for i, level in enumerate(levels):
            codes = self._gen[i][level]
            n_codes = self.encoded.qis[i].sizes()[level]
            if span * n_codes >= _MAX_KEY:
                _, key = np.unique(key, return_inverse=True)
                span = int(key.max()) + 1
            key = key * n_codes + codes
            span *= n_codes
        if span <= self._dense_limit:  # small key space: counting beats sorting
            present = np.bincount(key, minlength=span) > 0
            ids = np.cumsum(present) - 1
            group_class = ids[key]
            n_classes = int(ids[-1]) + 1
        else:
            _, group_class = np.unique(key, return_inverse=True)
            group_class = group_class.ravel()
            n_classes = int(group_class.max()) + 1
        w = self.encoded.weights
        sizes = np.bincount(group_class, weights=w, minlength=n_classes).astype(np.int64)
        hists = {}
        for name, (codes, m) in self._sens.items():
            flat = np.bincount(group_class * m + codes, weights=w, minlength=n_classes * m)
            hists[name] = flat.reshape(n_classes, m)
        stats = ClassStats(sizes, hists, self._overall, self._values)
        kept = np.ones(n_classes, dtype=bool)
        for model in self.models:
            kept &= model.passes(stats)
        return Partition(group_class, sizes, kept, stats)

    def cached(self) -> list[NodeResult]:
        """Every node evaluated so far."""
        return list(self._cache.values())

    def evaluate(self, levels: Node) -> NodeResult:
        """The result of node ``levels`` (cached; ``checked`` counts real evaluations)."""
        cached = self._cache.get(levels)
        if cached is not None:
            return cached
        self.checked += 1
        part = self.partition(levels)
        sizes, kept, stats = part.sizes, part.kept, part.stats
        suppressed = int(sizes[~kept].sum())
        if self.all_monotone:
            mono_ok = suppressed <= self.limit_rows
        else:
            mono_kept = np.ones(sizes.shape[0], dtype=bool)
            for model in self.monotone:
                mono_kept &= model.passes(stats)
            mono_ok = int(sizes[~mono_kept].sum()) <= self.limit_rows
        n = self.encoded.n_rows
        if self._costs is None:
            score: float = discernibility(sizes, kept, n)
            bound: float = discernibility_bound(sizes, self.min_class_size)
        else:
            bound = float(
                sum(t[level] for t, level in zip(self._costs.totals, levels, strict=True))
            )
            score = bound
            if suppressed:
                rows = ~kept[part.group_class]
                own = sum(
                    c[level][rows] for c, level in zip(self._costs.per_level, levels, strict=True)
                )
                score += float(
                    ((self._costs.maximum[rows] - own) * self.encoded.weights[rows]).sum()
                )
        result = NodeResult(
            levels=levels,
            passes=suppressed <= self.limit_rows,
            passes_monotone=mono_ok,
            suppressed_rows=suppressed,
            classes=int(kept.sum()),
            score=score,
            bound=bound,
        )
        self._cache[levels] = result
        return result


def _min_class_size(models: Sequence[PrivacyModel]) -> int:
    """The fewest rows a class that satisfies every model can hold (k, or l distinct values)."""
    size = 1
    for model in models:
        if isinstance(model, KAnonymity):
            size = max(size, model.k)
        elif isinstance(model, DistinctLDiversity | EntropyLDiversity | RecursiveCLDiversity):
            size = max(size, int(np.ceil(model.l - 1e-9)))
    return size
