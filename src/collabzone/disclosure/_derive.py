"""Which atoms a release would leave too small: one rule for people and for empty regions.

An atom (everyone lying in exactly the same released cells, plus the phantoms standing for
the people who could lie there) is unsafe when it holds fewer than the minimum, **whether
it holds one person or nobody**:

- an atom of 1 .. k - 1 people is a disclosure wherever it lies: even when no single atom
  is a linear combination of answers, answers over small atoms, with each person known to
  count 0 or 1 (or a value known to be bounded), pin single people down (Dinur-Nissim
  reconstruction), so Chin and Ozsoyoglu's rule refuses every such atom;
- an empty atom the release touches is refused the same way, because a rule that refused
  one person but released nobody would make the refusal itself say whether the victim is
  there (two marginal tables whose crossing is empty or holds the victim).

Only the jittered threshold near the minimum depends on the exact size, and it is keyed by
the atom's content, so asking again does not average it away.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from collabzone.disclosure._atoms import Counted, Finding, Hashes, Jitter, Labels


def _thresholds(
    counted: Counted, labels: Labels, min_size: int, jitter: Jitter | None,
    content: Callable[[Labels], Hashes],
) -> NDArray[np.bool_]:  # fmt: skip
    """Which of ``labels`` hold fewer people than their (jittered) minimum."""
    size = counted.people[labels]
    small = size < min_size
    width = jitter.width if jitter is not None else 0
    borderline = ~small & (size < min_size + width)
    if borderline.any() and jitter is not None:
        limits = min_size + jitter.offsets(content(labels[borderline]))
        small[np.flatnonzero(borderline)] = size[borderline] < limits
    return small


def small_atoms(
    counted: Counted,
    *,
    min_size: int,
    jitter: Jitter | None,
    content: Callable[[Labels], Hashes],
) -> Finding:
    """The atoms this release touched that hold fewer than ``min_size`` people (none: safe).

    Phantom-only atoms count as holding nobody: the decision never tells 0 from 1.
    """
    live = np.flatnonzero((counted.units > 0) & counted.covered)
    if live.size == 0:
        return Finding(0, 0, 0, 0)
    small = _thresholds(counted, live, min_size, jitter, content)
    if not small.any():
        return Finding(0, 0, 0, 0)
    sizes = counted.people[live][small]
    return Finding(
        small_atoms=int(small.sum()),
        people=int(sizes.sum()),
        smallest=int(sizes.min()),
        empty_regions=int((sizes == 0).sum()),
    )
