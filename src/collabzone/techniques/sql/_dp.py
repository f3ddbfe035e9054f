"""Pure DP core: noise on bounded integer aggregates, partition selection, intervals.

Every mechanism is OpenDP's (discrete Laplace for pure DP, discrete Gaussian for zCDP,
``make_*_threshold`` for private partition selection); this module only chooses their
parameters from the per-entity bounds and the budget, asks each measurement for its own
privacy map, and sums what was actually spent. No floating-point noise is drawn here.

Sensitivities are stated per entity: an entity touches at most ``max_groups`` groups and
moves one quantity of one group by at most ``linf`` (``max_rows`` rows, or ``max_rows``
times the largest absolute clamping bound for a sum), so the L1 sensitivity over groups
is ``max_groups * linf`` and the L2 sensitivity ``sqrt(max_groups) * linf``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from collabzone._opendp import dp
from collabzone.budget import PrivacyCost, privacy_parameter
from collabzone.errors import InternalError, InvalidInputError

_MAX_THRESHOLD = 2**52
"""Largest partition-selection threshold tried (exact in floats, far inside i64)."""
SAFETY = 1 - 1e-12
"""Shares of a budget are rounded down by this factor, so that the float sum of every
mechanism's loss stays at or below the amount charged."""


@dataclass(frozen=True)
class Budget:
    """The privacy loss one query may spend: pure (epsilon) or zCDP (rho), plus delta."""

    epsilon: float | None = None
    rho: float | None = None
    delta: float = 0.0

    def __post_init__(self) -> None:
        if (self.epsilon is None) == (self.rho is None):
            raise InvalidInputError("give exactly one of epsilon (pure DP) or rho (zCDP)")
        for name in ("epsilon", "rho"):
            if getattr(self, name) is not None:
                privacy_parameter(name, getattr(self, name))
        privacy_parameter("delta", self.delta)

    @property
    def zcdp(self) -> bool:
        return self.rho is not None

    def cost(self) -> PrivacyCost:
        """The most this query may spend (what ``--dry-run`` shows)."""
        if self.rho is not None:
            return PrivacyCost(rho=self.rho, delta=self.delta)
        assert self.epsilon is not None
        return PrivacyCost(epsilon=self.epsilon, delta=self.delta)


@dataclass(frozen=True)
class Measure:
    """One integer quantity to noise, with its per-entity, per-group bound ``linf``."""

    name: str
    linf: int


@dataclass
class NoisyTable:
    """Noisy values per kept group, their scales, intervals and the privacy spent."""

    keys: list[tuple[Any, ...]]
    values: dict[str, list[int]]
    scales: dict[str, float]
    accuracy: dict[str, float]
    """Half-width of the (1 - alpha) interval of each measure (same units as values)."""
    spent: PrivacyCost
    threshold: int | None = None
    """The partition-selection threshold (None when the keys were public)."""
    groups_dropped: int = 0
    notes: list[str] = field(default_factory=list)
    order_stats: dict[str, tuple[list[float], tuple[float, float]]] = field(default_factory=dict)
    """Private quantiles released beside the table: name -> (one value per key, or one
    value for an ungrouped query; the declared bounds)."""


def _vector_measurement(zcdp: bool, scale: float) -> Any:
    domain = dp.vector_domain(dp.atom_domain(T="i64"))
    if zcdp:
        return dp.m.make_gaussian(domain, dp.l2_distance(T="i64"), scale=scale)
    return dp.m.make_laplace(domain, dp.l1_distance(T="i64"), scale=scale)


def _threshold_measurement(zcdp: bool, scale: float, threshold: int) -> Any:
    # keyed by each group's position in the engine's result (one key per group: no text
    # or JSON per key to build, convert and keep)
    domain = dp.map_domain(dp.atom_domain(T="i64"), dp.atom_domain(T="i64"))
    if zcdp:
        metric = dp.l02inf_distance(dp.absolute_distance(T="i64"))
        return dp.m.make_gaussian_threshold(domain, metric, scale=scale, threshold=threshold)
    metric = dp.l01inf_distance(dp.absolute_distance(T="i64"))
    return dp.m.make_laplace_threshold(domain, metric, scale=scale, threshold=threshold)


def i64_map(keys: np.ndarray, values: np.ndarray) -> Any:
    """OpenDP's ``HashMap<i64, i64>`` of ``keys[i] -> values[i]`` (two int64 vectors),
    ready for a threshold measurement.

    A Python dict handed to a measurement is converted and type-checked entry by entry in
    OpenDP's Python layer (about 3 µs a group: a quarter of partition selection's time on
    1000 groups); here each vector crosses as one numpy buffer, as a vector measurement's
    input does, and OpenDP builds the map from the two vectors itself. The data is the
    same: only the conversion is skipped. Uses OpenDP's own conversion helpers (pinned
    version); the dict path is the fallback if they move.
    """
    keys = np.ascontiguousarray(keys, dtype=np.int64)
    values = np.ascontiguousarray(values, dtype=np.int64)
    if keys.shape != values.shape or keys.ndim != 1:
        raise InternalError("a partition map needs one value per key")
    try:
        import ctypes

        from opendp._convert import _wrap_in_slice, py_to_c
        from opendp._data import slice_as_object
        from opendp._lib import AnyObjectPtr
    except ImportError:  # pragma: no cover (another OpenDP layout: the documented path)
        return dict(zip(keys.tolist(), values.tolist(), strict=True))
    parts = [py_to_c(v, c_type=AnyObjectPtr, type_name="Vec<i64>") for v in (keys, values)]
    pair = _wrap_in_slice(ctypes.pointer((AnyObjectPtr * 2)(*parts)), 2)
    pair.depends_on(*parts)  # the two vectors live as long as the slice that points at them
    return slice_as_object(pair, "HashMap<i64, i64>")


def _sensitivity(zcdp: bool, max_groups: int, linf: int) -> int:
    if zcdp:
        return max(1, math.ceil(math.sqrt(max_groups) * linf))
    return max_groups * linf


def calibrate(make: Any, d_in: Any, target: float, first_scale: float) -> tuple[Any, float]:
    """The measurement of smallest scale (from ``first_scale`` up) whose loss <= target."""
    scale = first_scale
    for _ in range(60):
        meas = make(scale)
        loss = meas.map(d_in)
        loss = loss[0] if isinstance(loss, tuple) else loss
        if loss <= target:
            return meas, scale
        scale *= 1.0 + 1e-9 + (loss - target) / target
    raise InvalidInputError("could not calibrate the noise for this budget; raise epsilon/rho")


@functools.lru_cache(maxsize=256)
def _threshold_scale(zcdp: bool, d_in: tuple[int, int, int], share: float) -> float:
    """The smallest noise scale of partition selection whose main loss at ``d_in`` is
    within ``share`` (a pure function of its arguments: calibrated once, then reused)."""
    l0, linf = d_in[0], d_in[2]
    first = (l0 * linf) / share if not zcdp else _sensitivity(True, l0, linf) / math.sqrt(2 * share)
    _, scale = calibrate(
        lambda s: _threshold_measurement(zcdp, s, _MAX_THRESHOLD), d_in, share, first
    )
    return scale


@functools.lru_cache(maxsize=256)
def _vector_scale(zcdp: bool, sensitivity: int, share: float) -> float:
    """The smallest scale of vector noise whose loss at ``sensitivity`` is within
    ``share`` (calibrated once per sensitivity and share; the measurement itself is made
    afresh by each query, so its own map is what is checked and charged)."""
    first = sensitivity / share if not zcdp else sensitivity / math.sqrt(2 * share)
    _, scale = calibrate(lambda s: _vector_measurement(zcdp, s), sensitivity, share, first)
    return scale


EXACT_ACCURACY_SCALE = 1e4
"""Above this Gaussian scale the interval uses a tail bound: OpenDP's exact computation
sums the distribution, in time proportional to the scale (minutes for tiny rho)."""


@functools.lru_cache(maxsize=1024)
def accuracy(zcdp: bool, scale: float, alpha: float) -> float:
    """Half-width of the (1 - alpha) interval of OpenDP's discrete noise at ``scale``."""
    if zcdp:
        if scale > EXACT_ACCURACY_SCALE:
            # the discrete Gaussian is sub-Gaussian with parameter ``scale`` (Canonne, Kamath
            # and Steinke 2020): P(|X| >= t) <= 2 exp(-t^2 / (2 scale^2)), so this is wider
            # than the exact interval, never narrower
            return scale * math.sqrt(2 * math.log(2 / alpha))
        return float(dp.discrete_gaussian_scale_to_accuracy(scale, alpha))
    return float(dp.discrete_laplacian_scale_to_accuracy(scale, alpha))


@functools.lru_cache(maxsize=256)
def _pick_threshold(zcdp: bool, scale: float, d_in: tuple[int, int, int], delta: float) -> Any:
    """The smallest integer threshold whose delta (OpenDP's map) is within ``delta``.

    OpenDP refuses a threshold below the l-infinity sensitivity ``d_in[2]`` (one person's
    rows in one group), so the search starts there.
    """
    low = high = max(1, d_in[2])
    while _threshold_measurement(zcdp, scale, high).map(d_in)[1] > delta:
        low, high = high, high * 2
        if high > _MAX_THRESHOLD:
            raise InvalidInputError("delta is too small for private partition selection")
    while low < high:
        mid = (low + high) // 2
        if _threshold_measurement(zcdp, scale, mid).map(d_in)[1] <= delta:
            high = mid
        else:
            low = mid + 1
    return _threshold_measurement(zcdp, scale, high), high


def release(
    keys: Sequence[tuple[Any, ...]],
    data: Mapping[str, Sequence[int]],
    measures: Sequence[Measure],
    *,
    budget: Budget,
    max_groups: int,
    alpha: float = 0.05,
    public_keys: Sequence[tuple[Any, ...]] | None = None,
    selector: str | None = None,
) -> NoisyTable:
    """Noise every measure of every group; keep public groups or privately selected ones.

    ``data[name][i]`` is the exact bounded value of measure ``name`` for ``keys[i]``. With
    ``public_keys`` the released groups are exactly those (missing ones count 0, others are
    dropped: no censoring of rare public categories). Otherwise ``selector`` names the
    measure (a row count) whose thresholded noisy value decides which groups exist.
    """
    if not measures:
        raise InvalidInputError("the query asks for no aggregate; add COUNT(*) or SUM(col)")
    zcdp = budget.zcdp
    share = (budget.rho if zcdp else budget.epsilon) or 0.0
    share *= SAFETY / len(measures)
    index = {key: i for i, key in enumerate(keys)}
    spent_main = 0.0
    spent_delta = 0.0
    values: dict[str, list[int]] = {}
    scales: dict[str, float] = {}
    widths: dict[str, float] = {}
    threshold: int | None = None
    dropped = 0
    kept_at: Any = None  # positions in ``keys`` of the groups kept (private selection)
    if public_keys is not None:
        kept = list(dict.fromkeys(public_keys))
        public = set(kept)
        dropped = sum(1 for key in keys if key not in public)
        to_noise = list(measures)
    else:
        chosen = next((m for m in measures if m.name == selector), None)
        if chosen is None:
            raise InvalidInputError("private partition selection needs a row count")
        l0, linf = max_groups, chosen.linf
        d_in = (l0, l0 * linf, linf)
        scale = _threshold_scale(zcdp, d_in, share)
        meas, threshold = _pick_threshold(zcdp, scale, d_in, budget.delta)
        main, delta = meas.map(d_in)
        spent_main += main
        spent_delta += delta
        counts = np.asarray(data[chosen.name], dtype=np.int64)
        # one position per distinct key (a repeated key: its last)
        positions = np.fromiter(index.values(), dtype=np.int64, count=len(index))
        noisy = meas(i64_map(positions, counts[positions]))
        kept_at = np.fromiter(noisy.keys(), dtype=np.int64, count=len(noisy))
        kept = [keys[at] for at in kept_at.tolist()]
        dropped = len(keys) - len(kept)
        values[chosen.name] = list(noisy.values())
        scales[chosen.name] = scale
        widths[chosen.name] = accuracy(zcdp, scale, alpha)
        to_noise = [m for m in measures if m.name != chosen.name]
    for measure in to_noise:
        sensitivity = _sensitivity(zcdp, max_groups, measure.linf)
        scale = _vector_scale(zcdp, sensitivity, share)
        meas = _vector_measurement(zcdp, scale)
        column = np.asarray(data[measure.name], dtype=np.int64)
        at = (
            kept_at
            if kept_at is not None
            else np.fromiter((index.get(k, -1) for k in kept), dtype=np.int64, count=len(kept))
        )
        exact = np.where(at >= 0, column[np.maximum(at, 0)] if column.size else 0, 0)
        # a numpy vector crosses into OpenDP as one buffer (a list converts value by value)
        values[measure.name] = np.asarray(meas(exact)).astype(np.int64).tolist() if kept else []
        spent_main += meas.map(sensitivity)
        scales[measure.name] = scale
        widths[measure.name] = accuracy(zcdp, scale, alpha)
    # Each measurement's own map is within its share, so the query spends at most its
    # budget; charge exactly that (float sums of the shares could round a hair above it).
    if spent_main > share * len(measures) * (1 + 1e-9) or spent_delta > budget.delta:
        raise InternalError("a DP measurement spent more than its share of the budget")
    spent = budget.cost() if threshold is not None else replace(budget, delta=0.0).cost()
    return NoisyTable(list(kept), values, scales, widths, spent, threshold, dropped)
