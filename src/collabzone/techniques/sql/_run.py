"""Running aggregation and list queries: execute the governed tree, audit, package.

``history`` is shared with the DP runner (its cache of earlier noisy answers): what
earlier releases on the same datasets recorded.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from collabzone.techniques.base import AuditUpdate, Outcome, RunContext
from collabzone.techniques.sql._audit import (
    all_members,
    audit_release,
    jitter_of,
    member_salt,
    protected_rows,
)
from collabzone.techniques.sql._compiled import Compiled
from collabzone.techniques.sql._engines import Engine
from collabzone.techniques.sql._payload import table_payload


def history(compiled: Compiled, ctx: RunContext) -> list[Mapping[str, Any]]:
    """What earlier releases on the query's datasets recorded (the DP cache reads it)."""
    return [entry for dataset in compiled.datasets for entry in ctx.history(dataset)]


def run_aggregation(compiled: Compiled, ctx: RunContext, engine: Engine) -> Outcome:
    """Execute the thresholded query; drop rows under the jittered minimum; audit the rest."""
    eff = compiled.effective
    audited = compiled.audited and eff.monitor
    salt = member_salt(ctx) if audited else 0
    tree = compiled.rewritten(collect_members=audited, member_salt=salt, engine=engine.name)
    table = engine.run(tree, timeout_s=eff.timeout_s, max_rows=eff.max_result_rows)
    names = [item.name for item in compiled.shape.items]
    rows = list(range(table.num_rows))
    updates: tuple[AuditUpdate, ...] = ()
    assessment: dict[str, Any] = {"candidate_groups": table.num_rows, "audited": audited}
    if audited:
        members = all_members(compiled, table)
        rows = protected_rows(compiled, members, table.num_rows, jitter_of(compiled, ctx))
        assessment["withheld_near_threshold"] = table.num_rows - len(rows)
        rows, updates = audit_release(compiled, ctx, table, rows, salt, assessment, engine, members)
    assessment["released_groups"] = len(rows)
    columns = [table.column(n).to_pylist() for n in names]
    payload = table_payload(names, [[col[r] for col in columns] for r in rows])
    payload.update(
        {
            "analysis": compiled.mode,
            "min_group_size": eff.min_group_size,
            "notes": [
                f"groups with fewer than {eff.min_group_size} people (a little more, at "
                "random, near the threshold) are left out, and so are groups that, with "
                "answers released before, would single out fewer people; how many is not "
                "disclosed"
            ],
        }
    )
    return Outcome(
        payload=payload,
        mechanism="min_group_size",
        audit_updates=updates,
        assessment=assessment,
    )


def run_list(compiled: Compiled, ctx: RunContext, engine: Engine) -> Outcome:
    eff = compiled.effective
    tree = compiled.rewritten(engine=engine.name)
    table = engine.run(tree, timeout_s=eff.timeout_s, max_rows=eff.max_result_rows)
    names = [item.name for item in compiled.shape.items]
    rows = [list(r) for r in zip(*(table.column(n).to_pylist() for n in names), strict=True)]
    payload = table_payload(names, rows)
    notes: tuple[str, ...] = ()
    if not rows:
        notes = (
            f"no rows: the overlap is empty or covers fewer than {eff.min_group_size} people "
            "(suppressed)",
        )
    payload.update({"analysis": "list", "min_group_size": eff.min_group_size, "notes": list(notes)})
    return Outcome(
        payload=payload, mechanism="min_group_size", released_to=(ctx.requester.name,), notes=notes
    )
