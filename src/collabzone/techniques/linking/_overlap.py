"""The ``overlap`` technique: how many records two tokenised datasets share.

Request spec::

    {"datasets": ["bank_customers", "retail_customers"],
     "match_keys": ["email", "phone", "name_dob_postcode"],   # optional: priority order
     "by": "region",                                          # optional dimension
     "release": "counts" | "list", "list_to": "bank"}         # list needs an agreement

The match cascade links each record of the first dataset on the best key (first in
``match_keys``) whose token also appears in the second dataset; a record counts at the
level of its best key, and every count is of distinct people (see _overlap_cells.py:
released cells are also audited with everything else released on both datasets). Token columns are ``link_<key>`` of class ``join_key`` on both
sides, made under one key version (tokens carry it; mixing versions is refused).

Rules (agreement ``rules``): ``min_group_size`` (every released count below it is
suppressed, with a second cell suppressed when one alone would be recoverable from the
total), ``allowed_dimensions`` (``by`` must be listed), ``allow_list`` and
``list_recipients`` (a ``list`` release of the linked tokens to a named party).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from collabzone import disclosure
from collabzone.errors import InvalidInputError, Reason
from collabzone.model import ColumnClass, Dataset
from collabzone.techniques.base import (
    Merge,
    Outcome,
    Plan,
    PlanContext,
    Rules,
    RuleSpec,
    RunContext,
    Technique,
)
from collabzone.techniques.linking._overlap_cells import (
    Cell,
    audit_overlap,
    cells_of,
    entity_of,
    link,
    people,
)
from collabzone.techniques.linking._spec import TOKEN_PREFIX

_RELEASES = ("counts", "list")


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _token_keys(dataset: Dataset) -> list[str]:
    return [
        c.name[len(TOKEN_PREFIX) :]
        for c in dataset.columns_of(ColumnClass.JOIN_KEY)
        if c.name.startswith(TOKEN_PREFIX)
    ]


def suppress(
    cells: Mapping[str, int | None], min_group_size: int
) -> tuple[dict[str, int | None], int]:
    """Suppress counts below ``min_group_size`` (None stays None); if exactly one cell of a
    breakdown falls, suppress the next smallest too, so it cannot be recovered by
    subtraction from a total."""
    out: dict[str, int | None] = {
        k: (v if v is not None and v >= min_group_size else None) for k, v in cells.items()
    }
    hidden = [k for k, v in out.items() if v is None]
    shown = sorted((v, k) for k, v in out.items() if v is not None)
    if len(hidden) == 1 and shown and (cells[hidden[0]] is None or (cells[hidden[0]] or 0) > 0):
        out[shown[0][1]] = None
    return out, sum(1 for v in out.values() if v is None)


class Overlap(Technique):
    """Overlap counts between two tokenised datasets, by match key and by a dimension."""

    name: ClassVar[str] = "overlap"
    summary: ClassVar[str] = "overlap counts of tokenised datasets (match cascade), thresholded"
    rule_specs: ClassVar[tuple[RuleSpec, ...]] = (
        RuleSpec("min_group_size", Merge.AT_LEAST, "smallest count that may be released", int),
        RuleSpec("allowed_dimensions", Merge.SUBSET, "columns overlap may be broken down by", list),
        RuleSpec("allow_list", Merge.ALL, "whether linked tokens may be released as a list", bool),
        RuleSpec("list_recipients", Merge.SUBSET, "parties that may receive a list", list),
    )

    def plan(self, spec: Mapping[str, Any], ctx: PlanContext) -> Plan:
        unknown = set(spec) - {"datasets", "match_keys", "by", "release", "list_to"}
        if unknown:
            raise InvalidInputError(f"unknown overlap spec fields {sorted(unknown)}")
        names = spec.get("datasets")
        if not isinstance(names, list | tuple) or len(names) != 2 or len(set(names)) != 2:
            raise InvalidInputError("overlap needs 'datasets': two different dataset names")
        left, right = (ctx.dataset(str(n)) for n in names)
        common = [k for k in _token_keys(left) if k in set(_token_keys(right))]
        keys = spec.get("match_keys") or common
        if not isinstance(keys, list | tuple) or not all(isinstance(k, str) for k in keys):
            raise InvalidInputError("'match_keys' must be a list of match key names")
        if not keys:
            raise InvalidInputError(
                "the datasets share no link_<key> join_key columns: prepare both with one link spec"
            )
        missing = [k for k in keys if k not in common]
        if missing:
            raise InvalidInputError(
                f"match keys {missing} are not join_key columns of both datasets (shared: {common})"
            )
        by = spec.get("by")
        if by is not None:
            column = left.column(str(by))
            if column is None or column.column_class != ColumnClass.DIMENSION:
                raise InvalidInputError(f"'by' must name a dimension column of {left.name!r}")
        release = spec.get("release", "counts")
        if release not in _RELEASES:
            raise InvalidInputError(f"'release' must be one of {_RELEASES}")
        list_to = spec.get("list_to")
        if release == "list" and not isinstance(list_to, str):
            raise InvalidInputError("a list release names its recipient in 'list_to'")
        columns = [f"{TOKEN_PREFIX}{k}" for k in keys]
        return Plan(
            technique=self.name,
            datasets=(left.name, right.name),
            columns={
                left.name: tuple(columns + ([str(by)] if by else [])),
                right.name: tuple(columns),
            },
            outputs=f"overlap {'list' if release == 'list' else 'counts'}",
            details={
                "match_keys": list(keys),
                "by": by,
                "release": release,
                "list_to": list_to,
            },
        )

    def check(self, plan: Plan, rules: Rules, ctx: PlanContext) -> list[Reason]:
        reasons = []
        details = plan.details
        minimum = rules.get("min_group_size")
        if not isinstance(minimum, int) or isinstance(minimum, bool) or minimum < 1:
            reasons.append(
                Reason(
                    "MIN_GROUP_SIZE_MISSING",
                    "min_group_size",
                    "overlap needs a min_group_size rule (an integer >= 1) in every agreement",
                )
            )
        by = details.get("by")
        if by is not None and by not in (rules.get("allowed_dimensions") or []):
            reasons.append(
                Reason(
                    "DIMENSION_NOT_ALLOWED",
                    "allowed_dimensions",
                    f"overlap by {by!r} is not allowed",
                )
            )
        if details.get("release") == "list":
            if not rules.get("allow_list", False):
                reasons.append(
                    Reason("LIST_NOT_ALLOWED", "allow_list", "only counts may be released")
                )
            if details.get("list_to") not in (rules.get("list_recipients") or []):
                reasons.append(
                    Reason(
                        "LIST_RECIPIENT_NOT_ALLOWED",
                        "list_recipients",
                        f"party {details.get('list_to')!r} may not receive the list",
                    )
                )
        return reasons

    def run(self, plan: Plan, ctx: RunContext) -> Outcome:
        left, right = plan.datasets
        keys: list[str] = list(plan.details["match_keys"])
        by = plan.details.get("by")
        con = ctx.connection()
        for key in keys:
            _check_versions(con, left, right, f"{TOKEN_PREFIX}{key}")
        entities = {name: entity_of(ctx.dataset(name)) for name in plan.datasets}
        salt = int.from_bytes(ctx.derive_key(disclosure.MEMBER_SALT_PURPOSE, 6), "little")
        linked = link(con, plan, entities[left], entities[right], salt)
        protected = [n for n in plan.datasets if ctx.dataset(n).owner != ctx.requester.name]
        # per-key counts of the cascade tell, through the total, how many people are
        # linked in two ways: a breakdown only the owner of both sides may see
        cells = [c for c in cells_of(linked, keys, by) if c.level is None or not protected]
        minimum = self._minimum(plan, ctx)
        jitter = disclosure.Jitter(
            ctx.derive_key(disclosure.JITTER_PURPOSE), max(0, minimum // 2) if minimum > 1 else 0
        )
        counts: dict[str, int] = {}
        shown: dict[str, bool] = {}
        for cell in cells:
            mine, theirs = people(linked, cell)
            counts[cell.name] = int(mine.size)
            small = disclosure.below_jittered([mine, theirs], jitter, minimum)
            shown[cell.name] = not small.any()
        hidden = _complement(cells, counts, shown, keys)
        released = [c for c in cells if shown[c.name] and c.name not in hidden]
        released, updates = audit_overlap(plan, ctx, linked, released, minimum, jitter, entities)
        payload: dict[str, Any] = {"overlap": _shown(counts, "total", released)}
        if not protected:
            payload["by_match_key"] = {k: _shown(counts, f"key:{k}", released) for k in keys}
        if by:
            payload["by_dimension"] = {
                "column": by,
                "counts": {
                    c.dim: _shown(counts, c.name, released) for c in cells if c.by_dimension
                },
            }
        if plan.details.get("release") == "list":
            payload["list"] = {
                "columns": ["match_key", "token"],
                "rows": [
                    [keys[int(level)], token]
                    for level, token in zip(linked.level.tolist(), linked.left_token, strict=True)
                ],
            }
        return Outcome(payload=payload, mechanism="threshold", audit_updates=updates)

    @staticmethod
    def _minimum(plan: Plan, ctx: RunContext) -> int:
        """The largest min_group_size of the overlap agreements behind the plan (1 if none
        is visible here: the zone's check refuses a plan without one)."""
        found = [
            int(a.rules["min_group_size"])
            for name in plan.datasets
            for a in ctx.agreements_for(name)
            if a.technique == "overlap" and isinstance(a.rules.get("min_group_size"), int)
        ]
        return max(found, default=1)

    def release(self, plan: Plan, outcome: Outcome, rules: Rules) -> Outcome:
        """Suppress, by the agreements in force, any count run let through (never reveal)."""
        minimum = int(rules.get("min_group_size") or 0)
        if minimum < 1:
            raise InvalidInputError("overlap cannot be released without min_group_size >= 1")
        raw = outcome.payload
        total = raw["overlap"]
        payload: dict[str, Any] = {
            "overlap": total if total is not None and total >= minimum else None
        }
        if "by_match_key" in raw:
            payload["by_match_key"], _ = suppress(dict(raw["by_match_key"]), minimum)
        if "by_dimension" in raw:
            cells, _ = suppress(dict(raw["by_dimension"]["counts"]), minimum)
            payload["by_dimension"] = {"column": raw["by_dimension"]["column"], "counts": cells}
        released_to: tuple[str, ...] = ()
        allowed_list = (
            plan.details.get("release") == "list"
            and rules.get("allow_list", False)
            and plan.details.get("list_to") in (rules.get("list_recipients") or [])
            and payload["overlap"] is not None
        )
        if allowed_list:
            payload["list"] = raw["list"]
            released_to = (str(plan.details["list_to"]),)
        notes = (
            f"counts are of distinct people; cells under min_group_size {minimum} (a little "
            "more, at random, near it) are withheld, with a second one where a total would "
            "give the first away; how many is not disclosed",
        )
        return Outcome(
            payload=payload,
            mechanism="threshold",
            released_to=released_to,
            notes=notes,
            audit_updates=outcome.audit_updates,
        )


def _shown(counts: Mapping[str, int], name: str, released: list[Cell]) -> int | None:
    return counts[name] if any(c.name == name for c in released) else None


def _complement(
    cells: list[Cell], counts: Mapping[str, int], shown: Mapping[str, bool], keys: list[str]
) -> set[str]:
    """Second cells to withhold so that no withheld count is a total minus the shown ones."""
    hidden: set[str] = set()
    for family in ([c for c in cells if c.level is not None], [c for c in cells if c.by_dimension]):
        withheld = [c for c in family if not shown[c.name]]
        visible = sorted((counts[c.name], c.name) for c in family if shown[c.name])
        if len(withheld) == 1 and counts[withheld[0].name] > 0 and visible:
            hidden.add(visible[0][1])
    return hidden


def _check_versions(con: Any, left: str, right: str, column: str) -> None:
    sql = (
        f"SELECT DISTINCT split_part({_quote(column)}, ':', 1) FROM "
        f"(SELECT {_quote(column)} FROM {_quote(left)} UNION ALL "
        f"SELECT {_quote(column)} FROM {_quote(right)}) WHERE {_quote(column)} <> ''"
    )
    versions = sorted(str(v) for (v,) in con.execute(sql).fetchall())
    if len(versions) > 1:
        raise InvalidInputError(
            f"{column} holds tokens of several key versions {versions}: re-key (oprf) or "
            "re-prepare (hmac) both datasets under one version"
        )
