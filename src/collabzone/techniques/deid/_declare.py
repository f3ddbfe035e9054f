"""Every released column is accounted for: the column-declaration rules (pure).

After the pre-steps, each column of the table gets exactly one class:

* a declared **quasi-identifier** (``quasi_identifiers``): generalised, counted in k;
* a declared **sensitive** attribute (``sensitive``): released, protected by l / t;
* a declared **non-identifying** column (``keep``, ARX's "insensitive"): released unchanged;
* a column a pre-step **added** (enriched, derived, an enrichment key kept with
  ``keep_key``, a derivation source kept with ``keep_source``) that is not declared:
  a quasi-identifier by default, with its natural or default hierarchy;
* any other column: an error naming it and the ways to declare it, or dropped when the
  config says ``undeclared: drop``.

So the k, l, t and risk the report states are computed over exactly the columns that
leave: nothing is released unchanged unless someone declared it non-identifying.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from collabzone.errors import InternalError, InvalidInputError
from collabzone.techniques.deid._config import DeidConfig, PrepareSpec


def added_columns(prepare: PrepareSpec) -> dict[str, str]:
    """Columns the pre-steps add to the table, each with where it comes from."""
    added: dict[str, str] = {}
    for step in prepare.enrich:
        if step.keep_key:
            added.setdefault(step.column, f"enrichment key kept (keep_key) for {step.reference}")
        for name in step.outputs().values():
            added[name] = f"enriched from {step.reference}"
    for d in prepare.derive:
        if d.keep_source:
            added.setdefault(d.source, f"derivation source kept (keep_source) for {d.column}")
        added[d.column] = f"derived ({d.kind}) from {d.source}"
    return added


def consumed_columns(prepare: PrepareSpec) -> dict[str, str]:
    """Columns the pre-steps remove, each with the step that removes it (for hints)."""
    gone: dict[str, str] = {}
    for step in prepare.enrich:
        if not step.keep_key:
            gone[step.column] = f"replaced by enrich from {step.reference} (keep_key keeps it)"
    for d in prepare.derive:
        if not d.keep_source and d.source != d.column:
            gone[d.source] = f"replaced by derive {d.column!r} (keep_source keeps it)"
    for name in prepare.scrub:
        gone[name] = "removed by prepare.scrub"
    return gone


def input_columns(config: DeidConfig) -> list[str]:
    """The columns a job reads from its input: the sources of the pre-steps and every
    declared column no pre-step makes (what a mediator takes from each extract)."""
    made: set[str] = set()
    needed: list[str] = []

    def need(name: str) -> None:
        if name not in made and name not in needed:
            needed.append(name)

    steps = config.prepare
    for step in steps.enrich:
        need(step.column)
        made.update(step.outputs().values())
    for d in steps.derive:
        need(d.source)
        made.add(d.column)
    for name in [*steps.pseudonymise, *steps.noise]:
        need(name)
    for name in [*config.quasi_identifiers, *config.sensitive, *config.keep]:
        need(name)
    return needed


@dataclass(frozen=True)
class Accounting:
    """The class of every column that leaves, and what was defaulted or dropped."""

    quasi_identifiers: tuple[str, ...]
    sensitive: tuple[str, ...]
    keep: tuple[str, ...]
    defaulted: dict[str, str] = field(default_factory=dict)
    """Added columns made quasi-identifiers because nothing declared them (-> origin)."""
    dropped: tuple[str, ...] = ()

    @property
    def released(self) -> tuple[str, ...]:
        return (*self.quasi_identifiers, *self.sensitive, *self.keep)

    def verify(self, columns: Sequence[str]) -> None:
        """The last guard before release: the table holds exactly the accounted columns."""
        if sorted(columns) != sorted(self.released):
            raise InternalError(
                "de-identification would release columns that were not accounted for: "
                f"{sorted(set(columns) ^ set(self.released))}"
            )

    def report(self) -> dict[str, Any]:
        """The report's ``columns`` section (names only, never values)."""
        return {
            "quasi_identifiers": list(self.quasi_identifiers),
            "sensitive": list(self.sensitive),
            "keep": list(self.keep),
            "defaulted_to_quasi_identifier": dict(self.defaulted),
            "dropped": list(self.dropped),
        }


def _undeclared_message(names: Sequence[str]) -> str:
    listed = ", ".join(repr(n) for n in names)
    return (
        f"column(s) {listed} would be released but are not declared: every released column "
        "must be a quasi-identifier (quasi_identifiers), a sensitive attribute (sensitive) "
        "or a non-identifying column released unchanged (keep); remove the others with "
        "prepare.scrub, or set undeclared: drop to release only the declared columns"
    )


def account(columns: Sequence[str], config: DeidConfig) -> Accounting:
    """Give every column of the prepared table its class, or raise InvalidInputError.

    ``columns`` are the table's columns after the pre-steps. A declared column missing
    from them is an error that says which step removed it, if one did.
    """
    present = set(columns)
    declared = [*config.quasi_identifiers, *config.sensitive, *config.keep]
    missing = [c for c in declared if c not in present]
    if missing:
        gone = consumed_columns(config.prepare)
        hints = "; ".join(f"{c!r} was {gone[c]}" for c in missing if c in gone)
        raise InvalidInputError(
            f"declared column(s) {', '.join(repr(c) for c in missing)} are not in the table "
            f"after the pre-steps{': ' + hints if hints else ''}; columns are: "
            f"{', '.join(columns)}"
        )
    added = added_columns(config.prepare)
    declared_set = set(declared)
    defaulted = {c: added[c] for c in columns if c not in declared_set and c in added}
    undeclared = [c for c in columns if c not in declared_set and c not in added]
    if undeclared and config.undeclared == "error":
        raise InvalidInputError(_undeclared_message(undeclared))
    if not config.quasi_identifiers and not defaulted:
        raise InvalidInputError(
            "the job has no quasi-identifier after the pre-steps: declare at least one"
        )
    return Accounting(
        quasi_identifiers=(*config.quasi_identifiers, *defaulted),
        sensitive=tuple(config.sensitive),
        keep=tuple(config.keep),
        defaulted=defaulted,
        dropped=tuple(undeclared),
    )
