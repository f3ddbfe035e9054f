"""Disclosure auditing over everything released: atoms, phantoms, jittered thresholds.

:mod:`._atoms` holds the partition primitive (pure numpy over label arrays);
:mod:`._grid` the regions released conditions tell apart; :mod:`._space` one protected
dataset's audited state and :func:`audit`, which adds a release and reports the atoms it
would leave under the minimum. Techniques (governed SQL, overlap, the validator) describe
what they release as cells; the zone stores the space with the release, atomically.
"""

from collabzone.disclosure._atoms import (
    JITTER_PURPOSE,
    MEMBER_SALT_PURPOSE,
    Finding,
    Jitter,
    atom_sizes,
    below_jittered,
    check,
    fresh,
    membership_codes,
    mix64,
    refine,
    space_name,
    text_hashes,
)
from collabzone.disclosure._grid import AttributeDim, TokenDim
from collabzone.disclosure._space import (
    MAX_PHANTOMS,
    Audit,
    GridTooLarge,
    ReleasedCells,
    Space,
    audit,
)

__all__ = [
    "JITTER_PURPOSE",
    "MAX_PHANTOMS",
    "MEMBER_SALT_PURPOSE",
    "AttributeDim",
    "Audit",
    "Finding",
    "GridTooLarge",
    "Jitter",
    "ReleasedCells",
    "Space",
    "TokenDim",
    "atom_sizes",
    "audit",
    "below_jittered",
    "check",
    "fresh",
    "membership_codes",
    "mix64",
    "refine",
    "space_name",
    "text_hashes",
]
