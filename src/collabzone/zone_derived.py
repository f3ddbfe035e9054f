"""Register a released table (``Outcome.derived``) as a new dataset, inside the release.

A technique such as ``synthetic`` releases a table that should live on in the zone: the
requester owns it, later requests read it like any dataset, and its provenance (source,
method, privacy cost) is in its audit event. :func:`register_derived` runs within the
release's transaction: the release, its debit and the new dataset commit together or not
at all. The sealed file is written first; the caller removes it if the transaction fails.
"""

from __future__ import annotations

import csv
import datetime as dt
import tempfile
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, select

from collabzone import audit, ingest
from collabzone.errors import ConflictError
from collabzone.store import repo
from collabzone.store import tables as t
from collabzone.store.data import DataStore
from collabzone.techniques.base import DerivedDataset


def write_derived(data: DataStore, derived: DerivedDataset) -> tuple[str, str, int, list[Any]]:
    """Check the table against its own spec and seal it: (file, sha256, rows, columns)."""
    parsed = ingest.parse_spec({"columns": [dict(c) for c in derived.columns]})
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "derived.csv"
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow([c["name"] for c in derived.columns])
            writer.writerows(derived.rows)
        table = ingest.read_file(path, parsed)
    file_name, digest = data.write(derived.name, 1, table)
    columns = [c.model_dump(by_alias=True, mode="json") for c in parsed.columns]
    return file_name, digest, table.num_rows, columns


def register_derived(
    conn: Connection,
    mac_key: bytes,
    *,
    owner: str,
    derived: DerivedDataset,
    sealed: tuple[str, str, int, list[Any]],
    request_id: str,
    now: dt.datetime,
) -> None:
    """Insert the dataset row and its ``dataset.derived`` audit event (same transaction)."""
    file_name, digest, rows, columns = sealed
    if conn.execute(select(t.datasets.c.name).where(t.datasets.c.name == derived.name)).first():
        raise ConflictError(
            f"a dataset named {derived.name!r} already exists; ask for another `name`"
        )
    conn.execute(
        t.datasets.insert().values(
            name=derived.name,
            owner=owner,
            columns=columns,
            row_count=rows,
            version=1,
            description=derived.description,
            data_file=file_name,
            content_sha256=digest,
            created_at=repo.iso(now),
        )
    )
    audit.append(
        conn,
        mac_key,
        actor="zone",
        action="dataset.derived",
        subject=derived.name,
        parties=[owner],
        details={
            "request": request_id,
            "rows": rows,
            "sha256": digest,
            "provenance": dict(derived.provenance),
        },
    )
