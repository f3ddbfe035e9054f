"""The provider's and the recipient's clients: split data into shares, open output shares.

Both run on their owner's machine. :func:`split_upload` is the data module: it clips each
value to the column's declared bounds, maps it to ``[0, 1]``, encodes it as a 64-bit
fixed-point field element and splits it into one Shamir share per server, bundling with
each server's shares the provider's agreement (the reports its data may feed, who may
receive them, the minimum group size). :func:`open_report` is the recipient's side: it
recombines the servers' output shares and reads them in the columns' units.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from collabzone.errors import InvalidInputError
from collabzone.techniques.mpc._reports import REPORTS, Holding, ReportSpec, interpret
from collabzone.techniques.mpc._shares import (
    decode,
    encode_array,
    normalise,
    recombine,
    split_bytes,
)


def split_upload(
    dataset: str,
    provider: str,
    columns: Mapping[str, np.ndarray],
    bounds: Mapping[str, tuple[float, float]],
    *,
    reports: Sequence[str],
    recipients: Sequence[str],
    min_group_size: int,
    servers: int = 3,
    threshold: int = 1,
    join_keys: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """One upload package per server: its shares of every column and the agreement.

    A column's shares travel as base64 of 16 big-endian bytes a share (the split is
    vectorised, see :func:`~collabzone.techniques.mpc._shares.split_bytes`).

    ``join_keys`` are the rows' pseudonyms from :func:`~collabzone.techniques.mpc._join.pseudonymise`
    (never raw ids): reports with ``join=True`` match datasets on them.

    Example:
        >>> import numpy as np
        >>> packages = split_upload("ages", "hospital", {"age": np.array([30.0, 40.0])},
        ...     {"age": (0.0, 100.0)}, reports=["mean"], recipients=["ministry"],
        ...     min_group_size=2)
        >>> len(packages), packages[0]["holding"]["rows"]
        (3, 2)
    """
    if not columns:
        raise InvalidInputError("an upload needs at least one column")
    unknown = [r for r in reports if r not in REPORTS]
    if unknown or not reports:
        raise InvalidInputError(f"accept at least one report among {REPORTS} (got {list(reports)})")
    if min_group_size < 1:
        raise InvalidInputError("min_group_size must be at least 1")
    missing = [c for c in columns if c not in bounds]
    if missing:
        raise InvalidInputError(f"declare bounds (low, high) for columns {missing}")
    rows = {len(v) for v in columns.values()}
    if len(rows) != 1:
        raise InvalidInputError("all columns of an upload must have the same length")
    per_server: list[dict[str, str]] = [{} for _ in range(servers)]
    for name, values in columns.items():
        low, high = bounds[name]
        parts = split_bytes(encode_array(normalise(values, low, high)), servers, threshold)
        for index in range(servers):  # 16 big-endian bytes a share, base64: JSON-safe
            per_server[index][name] = base64.b64encode(parts[index]).decode("ascii")
    holding = {
        "dataset": dataset,
        "provider": provider,
        "rows": rows.pop(),
        "bounds": {c: [float(bounds[c][0]), float(bounds[c][1])] for c in columns},
        "reports": list(reports),
        "recipients": list(recipients),
        "min_group_size": int(min_group_size),
        "servers": servers,
        "threshold": threshold,
    }
    if join_keys is not None and len(join_keys) != holding["rows"]:
        raise InvalidInputError("give one join key (pseudonym) per row")
    extra = {"join_keys": list(join_keys)} if join_keys is not None else {}
    return [
        {"holding": {**holding, "index": index}, "shares": per_server[index], **extra}
        for index in range(servers)
    ]


def open_report(outputs: Sequence[Mapping[str, Any]], recipient: str) -> dict[str, Any]:
    """The report's result from the servers' output shares (on the recipient's machine).

    Every server must have run the same report for ``recipient`` on the same data; at
    least ``threshold + 1`` shares are needed.
    """
    if not outputs:
        raise InvalidInputError("no output shares to open")
    first = outputs[0]
    for doc in outputs[1:]:
        if (doc["report"], doc["rows"], doc["bounds"]) != (
            first["report"],
            first["rows"],
            first["bounds"],
        ):
            raise InvalidInputError(
                "the output shares come from different reports: ask the servers again"
            )
    spec = ReportSpec.from_json(first["report"])
    if spec.recipient != recipient:
        raise InvalidInputError(
            f"this report was computed for {spec.recipient!r}, not {recipient!r}"
        )
    shares = {int(doc["server"]): [int(s) for s in doc["shares"]] for doc in outputs}
    values = decode(recombine(shares, int(first["threshold"])))
    holding = Holding(
        dataset="+".join(spec.datasets),
        provider="",
        rows=int(first["rows"]),
        bounds={c: (b[0], b[1]) for c, b in first["bounds"].items()},
        reports=(),
        recipients=(),
        min_group_size=0,
    )
    return {"report": spec.report, "rows": holding.rows, "result": interpret(spec, values, holding)}
