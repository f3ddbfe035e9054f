"""The ``sealed`` technique: a party's own code runs on another party's data, isolated.

Request spec (by the module's uploader)::

    {"module": "bank_preapproval"}        # a sealed module dataset of the requester

The plan lists the module and its declared inputs; what the input owners approve is the
manifest (code hash, inputs, outputs, limits) shown in the request's details, never the
code. Rules (agreement on each input dataset): ``allowed_code_sha256`` (required: the
hashes approved), ``allowed_outputs`` (output columns that may be delivered),
``max_cpu_seconds`` / ``max_memory_mb`` / ``max_wall_seconds`` (limits at most these),
``min_group_size`` (the requester's count is withheld below it).

What leaves (:attr:`Outcome.parts`): each returned row goes to the owner of the inputs
(the partner receives its customers who qualify), and every ``string`` output must be a
value of that input's join-key columns (the code cannot smuggle text out); the requester
receives the number of rows, thresholded. Nothing else the code prints is kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from collabzone.errors import InvalidInputError, Reason
from collabzone.model import ColumnClass
from collabzone.sandbox import (
    Limits,
    SealedCodeStopped,
    declaration,
    parse_manifest,
    read_code,
    run_sealed,
)
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
from collabzone.techniques.sealed._view import sealed_view
from collabzone.techniques.view import ResultView

_LIMIT_RULES = (("max_cpu_seconds", "cpu_seconds"), ("max_memory_mb", "memory_mb"),
                ("max_wall_seconds", "wall_seconds"))  # fmt: skip


class Sealed(Technique):
    """Sealed code on another party's data: approved by hash and declaration, isolated."""

    name: ClassVar[str] = "sealed"
    summary: ClassVar[str] = (
        "a party's sealed Python module runs isolated (no network, limits) on another "
        "party's data, approved by code hash and declared inputs/outputs"
    )
    rule_specs: ClassVar[tuple[RuleSpec, ...]] = (
        RuleSpec("allowed_code_sha256", Merge.SUBSET, "code hashes approved to run", list),
        RuleSpec("allowed_outputs", Merge.SUBSET, "output columns that may be delivered", list),
        RuleSpec("max_cpu_seconds", Merge.AT_MOST, "CPU seconds a job may use", (int, float)),
        RuleSpec("max_memory_mb", Merge.AT_MOST, "memory a job may use", (int, float)),
        RuleSpec("max_wall_seconds", Merge.AT_MOST, "wall time a job may use", (int, float)),
        RuleSpec("min_group_size", Merge.AT_LEAST, "smallest count told the requester", int),
    )

    def plan(self, spec: Mapping[str, Any], ctx: PlanContext) -> Plan:
        unknown = set(spec) - {"module"}
        if unknown:
            raise InvalidInputError(f"unknown sealed spec fields {sorted(unknown)}")
        module = ctx.dataset(str(spec.get("module", "")))
        if module.owner != ctx.requester.name:
            raise InvalidInputError(f"{module.name!r} is not a sealed module of yours")
        manifest = parse_manifest(module.description or "")
        columns: dict[str, tuple[str, ...]] = {module.name: ("part", "chunk")}
        owners: dict[str, str] = {}
        for alias, (name, wanted) in manifest.inputs.items():
            dataset = ctx.dataset(name)
            missing = [c for c in wanted if dataset.column(c) is None]
            if missing:
                raise InvalidInputError(f"input {alias!r}: {name!r} has no columns {missing}")
            keys = [c.name for c in dataset.columns_of(ColumnClass.JOIN_KEY)]
            columns[name] = tuple(dict.fromkeys([*wanted, *keys]))
            owners[name] = dataset.owner
        recipients = sorted(set(owners.values()) - {ctx.requester.name})
        if len(recipients) != 1:
            raise InvalidInputError(
                "a sealed job's inputs must belong to exactly one other party (its rows are "
                "delivered to that party)"
            )
        return Plan(
            technique=self.name,
            datasets=tuple(columns),
            columns=columns,
            outputs=declaration(manifest, recipients[0], ctx.requester.name),
            details={
                "module": module.name,
                "entry": manifest.entry,
                "code_sha256": manifest.code_sha256,
                "inputs": {
                    k: {"dataset": d, "columns": list(c)} for k, (d, c) in manifest.inputs.items()
                },
                "outputs": dict(manifest.outputs),
                "limits": manifest.limits.as_dict(),
                "deliver_to": recipients[0],
            },
        )

    def check(self, plan: Plan, rules: Rules, ctx: PlanContext) -> list[Reason]:
        d = plan.details
        reasons = []
        if d["code_sha256"] not in (rules.get("allowed_code_sha256") or []):
            reasons.append(Reason("CODE_NOT_APPROVED", "allowed_code_sha256",
                                  f"code {d['code_sha256'][:12]}... is not approved"))  # fmt: skip
        extra = sorted(set(d["outputs"]) - set(rules.get("allowed_outputs") or []))
        if extra:
            reasons.append(Reason("OUTPUT_NOT_ALLOWED", "allowed_outputs",
                                  f"outputs {extra} are not allowed"))  # fmt: skip
        for rule, limit in _LIMIT_RULES:
            cap = rules.get(rule)
            if cap is not None and d["limits"][limit] > cap:
                reasons.append(Reason("LIMIT_TOO_HIGH", rule, f"{limit} must be <= {cap}"))
        if not isinstance(rules.get("min_group_size"), int):
            reasons.append(Reason("MIN_GROUP_SIZE_MISSING", "min_group_size",
                                  "the agreement must set min_group_size"))  # fmt: skip
        return reasons

    def run(self, plan: Plan, ctx: RunContext) -> Outcome:
        d = plan.details
        code = read_code(ctx.table(d["module"]))
        inputs = {
            alias: ctx.table(spec["dataset"]).select(spec["columns"]).to_pylist()
            for alias, spec in d["inputs"].items()
        }
        allowed: set[Any] = set()
        for spec in d["inputs"].values():
            table = ctx.table(spec["dataset"])
            for column in plan.columns[spec["dataset"]]:
                if ctx.dataset(spec["dataset"]).column(column).column_class == ColumnClass.JOIN_KEY:  # type: ignore[union-attr]
                    allowed.update(table.column(column).to_pylist())
        try:
            rows = run_sealed(code, d["entry"], inputs, d["outputs"], Limits(**d["limits"]))
        except SealedCodeStopped as exc:
            raise InvalidInputError(f"sealed job stopped: {exc.kind} ({exc.detail})") from None
        for row in rows:
            for column, kind in d["outputs"].items():
                if kind == "string" and row[column] not in allowed:
                    raise InvalidInputError(
                        f"sealed job stopped: output: {column} holds a value that is not a "
                        "join key of the inputs (only the recipient's own keys may leave)"
                    )
        columns = list(d["outputs"])
        return Outcome(
            payload={"module": d["module"], "code_sha256": d["code_sha256"]},
            mechanism="sealed",
            parts={
                d["deliver_to"]: {
                    "rows": {"columns": columns, "rows": [[r[c] for c in columns] for r in rows]}
                },
                ctx.requester.name: {"count": len(rows)},
            },
        )

    def result_view(self, payload: Mapping[str, Any]) -> ResultView:
        """Module, code hash, and the reader's own outputs or count (see _view)."""
        return sealed_view(payload)

    def release(self, plan: Plan, outcome: Outcome, rules: Rules) -> Outcome:
        """The count to the requester only at or above min_group_size."""
        minimum = int(rules.get("min_group_size") or 0)
        if minimum < 1:
            raise InvalidInputError("sealed results need min_group_size >= 1")
        parts = {k: dict(v) for k, v in outcome.parts.items()}
        for part in parts.values():
            if "count" in part and part["count"] < minimum:
                part["count"] = None
        return Outcome(
            payload=dict(outcome.payload),
            mechanism="sealed",
            parts=parts,
            released_to=(str(plan.details["deliver_to"]),),
            notes=(
                f"rows delivered to {plan.details['deliver_to']} only; the count is withheld "
                f"below {minimum}",
            ),
        )
