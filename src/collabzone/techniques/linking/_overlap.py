"""The ``overlap`` technique: how many records two tokenised datasets share.

Request spec::

    {"datasets": ["bank_customers", "retail_customers"],
     "match_keys": ["email", "phone", "name_dob_postcode"],   # optional: priority order
     "by": "region",                                          # optional dimension
     "release": "counts" | "list", "list_to": "bank"}         # list needs an agreement

The match cascade links each record of the first dataset on the best key (first in
``match_keys``) whose token also appears in the second dataset; a record counts once, at
the level of its best key. Token columns are ``link_<key>`` of class ``join_key`` on both
sides, made under one key version (tokens carry it; mixing versions is refused).

Rules (agreement ``rules``): ``min_group_size`` (every released count below it is
suppressed, with a second cell suppressed when one alone would be recoverable from the
total), ``allowed_dimensions`` (``by`` must be listed), ``allow_list`` and
``list_recipients`` (a ``list`` release of the linked tokens to a named party).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

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


def suppress(cells: dict[str, int], min_group_size: int) -> tuple[dict[str, int | None], int]:
    """Suppress counts below ``min_group_size``; if exactly one cell of a breakdown falls,
    suppress the next smallest too, so it cannot be recovered by subtraction from a total."""
    out: dict[str, int | None] = {k: (v if v >= min_group_size else None) for k, v in cells.items()}
    hidden = [k for k, v in out.items() if v is None]
    shown = sorted((v, k) for k, v in out.items() if v is not None)
    if len(hidden) == 1 and shown and cells[hidden[0]] > 0:
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
        cte = _cascade_sql(left, right, keys, by)
        rows = con.execute(
            f"{cte} SELECT best.level, l.__dim, count(*) FROM best JOIN l USING (rid) GROUP BY ALL"
        ).fetchall()
        by_key = dict.fromkeys(keys, 0)
        by_dim: dict[str, int] = {}
        for level, value, count in rows:
            by_key[keys[int(level)]] += int(count)
            if by:
                label = "(missing)" if value is None else str(value)
                by_dim[label] = by_dim.get(label, 0) + int(count)
        payload: dict[str, Any] = {
            "overlap": sum(by_key.values()),
            "by_match_key": by_key,
        }
        if by:
            payload["by_dimension"] = {"column": by, "counts": by_dim}
        if plan.details.get("release") == "list":
            cases = " ".join(
                f"WHEN {level} THEN l.{_quote(TOKEN_PREFIX + key)}"
                for level, key in enumerate(keys)
            )
            listed = con.execute(
                f"{cte} SELECT best.level, CASE best.level {cases} END FROM best JOIN l "
                "USING (rid) ORDER BY rid"
            ).fetchall()
            payload["list"] = {
                "columns": ["match_key", "token"],
                "rows": [[keys[int(level)], str(token)] for level, token in listed],
            }
        return Outcome(payload=payload, mechanism="threshold")

    def release(self, plan: Plan, outcome: Outcome, rules: Rules) -> Outcome:
        minimum = int(rules.get("min_group_size") or 0)
        if minimum < 1:
            raise InvalidInputError("overlap cannot be released without min_group_size >= 1")
        raw = outcome.payload
        suppressed = 0
        total = int(raw["overlap"])
        payload: dict[str, Any] = {"overlap": total if total >= minimum else None}
        suppressed += payload["overlap"] is None
        by_key, hidden = suppress(dict(raw["by_match_key"]), minimum)
        payload["by_match_key"] = by_key
        suppressed += hidden
        if "by_dimension" in raw:
            cells, hidden = suppress(dict(raw["by_dimension"]["counts"]), minimum)
            payload["by_dimension"] = {"column": raw["by_dimension"]["column"], "counts": cells}
            suppressed += hidden
        released_to: tuple[str, ...] = ()
        allowed_list = (
            plan.details.get("release") == "list"
            and rules.get("allow_list", False)
            and plan.details.get("list_to") in (rules.get("list_recipients") or [])
            and total >= minimum
        )
        if allowed_list:
            payload["list"] = raw["list"]
            released_to = (str(plan.details["list_to"]),)
        notes = (f"cells below min_group_size {minimum} suppressed",)
        return Outcome(
            payload=payload,
            rows_suppressed=suppressed,
            mechanism="threshold",
            released_to=released_to,
            notes=notes,
        )


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


def _cascade_sql(left: str, right: str, keys: list[str], by: str | None) -> str:
    """CTEs ``l`` (left rows with an id) and ``best`` (each linked id and its best level)."""
    columns = ", ".join(_quote(TOKEN_PREFIX + k) for k in keys)
    dim = f"CAST({_quote(by)} AS VARCHAR)" if by else "NULL"
    linked = " UNION ALL ".join(
        f"SELECT rid, {level} AS level FROM l WHERE {_quote(TOKEN_PREFIX + key)} IN "
        f"(SELECT {_quote(TOKEN_PREFIX + key)} FROM {_quote(right)} "
        f"WHERE {_quote(TOKEN_PREFIX + key)} <> '')"
        for level, key in enumerate(keys)
    )
    return (
        f"WITH l AS (SELECT row_number() OVER () AS rid, {columns}, {dim} AS __dim "
        f"FROM {_quote(left)}), "
        f"best AS (SELECT rid, min(level) AS level FROM ({linked}) GROUP BY rid)"
    )
