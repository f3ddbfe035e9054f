"""What a rewrite rule may know: the entity column, thresholds and output names."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlglot import exp

ENTITIES = "_cz_entities"
MEMBERS = "_cz_members"
SUPPRESSED = "_cz_suppressed"


@dataclass(frozen=True)
class SumBound:
    """Clamping bounds of one summed column, already scaled to integers."""

    low: int
    high: int
    scale: int
    """Values are multiplied by ``scale`` and rounded, so sums are exact integers."""


@dataclass(frozen=True)
class Quantity:
    """One integer quantity the DP rewrite computes per group.

    ``kind`` is ``rows`` (COUNT(*)), ``nonnull`` (COUNT(col)), ``entities``
    (COUNT(DISTINCT entity)) or ``sum`` (SUM of clamped, integer-scaled values).
    """

    name: str
    kind: str
    column: exp.Column | None = None
    bound: SumBound | None = None


@dataclass(frozen=True)
class RewriteContext:
    """Parameters shared by the rules; each rule reads what it needs."""

    output_names: tuple[str, ...]
    entity: exp.Column
    """The qualified column whose distinct values are the people behind a row."""
    min_group_size: int = 1
    collect_members: bool = False
    max_result_rows: int | None = None
    order_by: tuple[tuple[str, bool], ...] = ()
    limit: int | None = None
    max_rows_per_entity: int = 1
    max_groups_per_entity: int = 1
    quantities: tuple[Quantity, ...] = field(default_factory=tuple)
    salt: int = 0
    """Per-run salt of the hash that picks which groups an entity keeps (DP)."""
