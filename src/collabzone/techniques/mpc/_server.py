"""A compute server's side of a report: check, compute in MPyC, hand out output shares.

Run as its own process, one per server (``collabzone mpc server`` starts it)::

    python -m collabzone.techniques.mpc._process --store DIR --report report.json \\
        --shares-to share.json -P host0:port0 -P host1:port1 -P host2:port2 -I <index> [--ssl]

``-P``/``-I``/``--ssl`` are MPyC's own options (its runtime reads them when imported; the
rest of the command line is this module's). Each server checks the report against the
holdings it has before joining the computation, so a refused report never starts; the
shares it writes to ``--shares-to`` are its fresh share of each output, which only the
recipient, holding ``threshold + 1`` of them, can open.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from collabzone.errors import ConflictError, InvalidInputError, PolicyRefusal, Reason
from collabzone.techniques.mpc._reports import Holding, ReportSpec, compute, enforce
from collabzone.techniques.mpc._store import ShareStore


async def _run(
    mpc: Any, store: ShareStore, spec: ReportSpec, connect_timeout: float
) -> dict[str, Any]:
    from collabzone.techniques.mpc._shares import secfxp_type

    holdings = store.holdings()
    enforce(spec, holdings)
    first = holdings[spec.datasets[0]]
    index, servers = int(first.extra["index"]), int(first.extra["servers"])
    if (index, servers) != (mpc.pid, len(mpc.parties)):
        raise InvalidInputError(
            f"this store holds share {index} of {servers}, but MPyC runs as party "
            f"{mpc.pid} of {len(mpc.parties)}: start it with -I {index} and {servers} -P options"
        )
    started, cpu_started = time.perf_counter(), time.process_time()
    secfxp = secfxp_type()
    wanted = [*spec.columns, *([spec.bound] if spec.bound else [])]
    bounds = {
        c: holdings[n].bounds[c] for n in spec.datasets for c in wanted if c in holdings[n].bounds
    }
    columns: dict[str, Any] = {}
    if spec.join:
        from collabzone.techniques.mpc._join import match

        rows_of = match({n: store.join_keys(n) for n in spec.datasets})
        rows = len(rows_of[spec.datasets[0]])
        floor = max(holdings[n].min_group_size for n in spec.datasets)
        if rows < floor:
            raise PolicyRefusal(
                Reason("GROUP_TOO_SMALL", "min_group_size",
                       f"the join matches fewer records than the minimum group size {floor}")
            )  # fmt: skip
        for name in spec.datasets:
            mine = [c for c in wanted if c in holdings[name].bounds]
            for column, values in store.share_arrays(name, mine).items():
                columns[column] = _secure(secfxp, values[rows_of[name]], spec.report)
    else:
        raw = {name: store.share_arrays(name, wanted) for name in spec.datasets}
        rows = sum(holdings[n].rows for n in spec.datasets)
    loaded, cpu_loaded = time.perf_counter(), time.process_time()
    # MPyC makes many short-lived objects; keep the garbage collector from walking this
    # process's long-lived ones (imports, the loaded shares) on every collection
    gc.collect()
    gc.freeze()
    try:
        await asyncio.wait_for(mpc.start(), connect_timeout)
    except TimeoutError:
        raise ConflictError(
            f"the other compute servers did not connect within {connect_timeout:g} s: start "
            "every server with the same report (a server that refused it printed why)"
        ) from None
    connected, cpu_connected = time.perf_counter(), time.process_time()
    try:
        if not spec.join:
            rows = await _load(mpc, spec, holdings, raw, columns, store)
        outputs = await compute(mpc, spec, columns, rows, bounds)
        fresh = mpc._reshare(outputs)  # a new random sharing: shares reveal only the outputs
        elements = await mpc.gather(fresh)
    finally:
        await mpc.shutdown()
    done, cpu_done = time.perf_counter(), time.process_time()
    return {
        "server": index,
        "threshold": int(first.extra["threshold"]),
        "report": spec.to_json(),
        "rows": rows,
        "bounds": {c: list(bounds[c]) for c in wanted},
        "shares": [str(int(e.value)) for e in elements],
        "seconds": {
            "load": loaded - started,
            "connect": connected - loaded,
            "mpc": done - connected,
            "load_cpu": cpu_loaded - cpu_started,
            "mpc_cpu": cpu_done - cpu_connected,
        },
    }


ARRAY_REPORTS = ("variance", "correlation")
"""Reports computed on secure arrays (see :func:`_reports.compute`); the others take lists."""


def _secure(secfxp: Any, values: np.ndarray, report: str) -> Any:
    """This server's shares (field elements) as the report's secure values: one secure
    array for a vectorised report, else one secure number per share."""
    if report in ARRAY_REPORTS:
        return secfxp.array(secfxp.field.array(values, check=False), integral=False)
    return [secfxp(secfxp.field(int(v))) for v in values]


async def _load(
    mpc: Any,
    spec: ReportSpec,
    holdings: Mapping[str, Holding],
    raw: Mapping[str, Mapping[str, np.ndarray]],
    columns: dict[str, Any],
    store: ShareStore,
) -> int:
    """Fill ``columns`` with this server's secure values; returns the number of rows used.

    A survey's answers are first checked inside MPC (:func:`_survey.valid_rows`): a
    malformed answer (an entry not 0 or 1, not one choice per question) is left out by
    every server alike. A sum needs no per-row object: Shamir sharing is linear, so the
    sum of this server's shares is its share of the sum (one field addition per row).
    """
    from collabzone.techniques.mpc._shares import secfxp_type

    secfxp = secfxp_type()
    modulus = int(secfxp.field.modulus)
    rows = 0
    parts: dict[str, list[np.ndarray]] = {}
    for name in spec.datasets:
        shares = raw[name]
        groups = holdings[name].extra.get("groups")
        if groups:
            from collabzone.techniques.mpc._survey import valid_rows

            order = [f"q{i}.a{j}" for i, size in enumerate(groups) for j in range(size)]
            every = store.share_arrays(name, order)
            ordered = [every[c] for c in order]
            keep = np.array(
                await valid_rows(mpc, ordered, groups, 1 << int(secfxp.frac_length)), dtype=np.bool_
            )
            shares = {c: vs[keep] for c, vs in shares.items()}
            rows += int(keep.sum())
        else:
            rows += holdings[name].rows
        for column, values in shares.items():
            parts.setdefault(column, []).append(values)
    for column, chunks in parts.items():
        if spec.report in ("sum", "mean"):
            total = sum(int(chunk.sum()) for chunk in chunks if len(chunk)) % modulus
            columns[column] = [secfxp(secfxp.field(total))]
        else:
            columns[column] = _secure(secfxp, np.concatenate(chunks), spec.report)
    return rows


def run_report(
    mpc: Any, store: ShareStore, spec: ReportSpec, *, connect_timeout: float = 300.0
) -> dict[str, Any]:
    """This server's output shares of ``spec`` (runs MPyC's event loop to completion).

    A server that refuses the report exits before connecting; the others give up after
    ``connect_timeout`` seconds instead of waiting for it forever.
    """
    result: dict[str, Any] = mpc.run(_run(mpc, store, spec, connect_timeout))
    return result
