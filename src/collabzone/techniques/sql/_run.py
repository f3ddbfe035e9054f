"""Running aggregation and list queries: execute the governed tree, monitor, package.

``history`` is shared with the DP runner: what earlier releases on the same datasets
recorded, for this requester only unless the agreements ask for collusion checks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from collabzone.errors import PolicyRefusal
from collabzone.techniques.base import Outcome, RunContext
from collabzone.techniques.sql import _monitor
from collabzone.techniques.sql._compile import Compiled
from collabzone.techniques.sql._execute import execute
from collabzone.techniques.sql._payload import table_payload
from collabzone.techniques.sql.rules._context import MEMBERS, SUPPRESSED


def history(compiled: Compiled, ctx: RunContext) -> list[Mapping[str, Any]]:
    me = ctx.requester.name
    entries: list[Mapping[str, Any]] = []
    for dataset in compiled.datasets:
        for entry in ctx.history(dataset):
            if compiled.effective.across_parties or entry.get("requester") == me:
                entries.append(entry)
    return entries


def run_aggregation(compiled: Compiled, ctx: RunContext) -> Outcome:
    eff = compiled.effective
    monitor = eff.monitor
    con = ctx.connection()
    tree = compiled.rewritten(collect_members=monitor)
    table = execute(
        con, tree.sql(dialect="duckdb"), timeout_s=eff.timeout_s, max_rows=eff.max_result_rows
    )
    names = [item.name for item in compiled.shape.items]
    suppressed_col = table.column(SUPPRESSED).to_pylist()
    suppressed = int(suppressed_col[0]) if suppressed_col else _count_all_suppressed(compiled, ctx)
    sets: list[_monitor.EntitySet] = []
    if monitor:
        sets = _member_sets(table.column(MEMBERS))
        reasons = _monitor.check_differencing(
            sets, history(compiled, ctx), min_group_size=eff.min_group_size
        )
        if reasons:
            raise PolicyRefusal(reasons)
    rows = (
        [list(r) for r in zip(*(table.column(n).to_pylist() for n in names), strict=True)]
        if names
        else []
    )
    payload = table_payload(names, rows)
    payload.update(
        {
            "analysis": compiled.mode,
            "min_group_size": eff.min_group_size,
            "suppressed_rows": suppressed,
            "_monitor": {"kind": "aggregation", "entities": _monitor.record(sets)}
            if monitor
            else {},
        }
    )
    return Outcome(payload=payload, rows_suppressed=suppressed, mechanism="min_group_size")


def _member_sets(members: Any) -> list[_monitor.EntitySet]:
    """Each row's hashed entities as numpy arrays, without a Python int per entity."""
    import pyarrow as pa

    out = []
    for chunk in members.chunks:
        lists = chunk.cast(pa.list_(pa.uint64()))
        offsets = lists.offsets.to_numpy()
        flat = lists.values.to_numpy(zero_copy_only=False)
        out += [_monitor.EntitySet.of(flat[offsets[i] : offsets[i + 1]]) for i in range(len(lists))]
    return out


def _count_all_suppressed(compiled: Compiled, ctx: RunContext) -> int:
    """When nothing passed the threshold: how many groups were cut (groups only, no values)."""
    from sqlglot import exp

    middle = compiled.rewritten().args["from_"].this.this
    count = exp.select(exp.Count(this=exp.Star())).from_(
        exp.alias_(exp.Subquery(this=middle), "m", table=True)
    )
    table = execute(
        ctx.connection(),
        count.sql(dialect="duckdb"),
        timeout_s=compiled.effective.timeout_s,
        max_rows=1,
    )
    return int(table.column(0)[0].as_py())


def run_list(compiled: Compiled, ctx: RunContext) -> Outcome:
    eff = compiled.effective
    tree = compiled.rewritten()
    table = execute(
        ctx.connection(),
        tree.sql(dialect="duckdb"),
        timeout_s=eff.timeout_s,
        max_rows=eff.max_result_rows,
    )
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
