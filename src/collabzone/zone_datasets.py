"""Zone operations on datasets: ingest (all or nothing), remote registration, listing, removal."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError as DBIntegrityError

from collabzone import audit, ingest, remote_tables
from collabzone.errors import (
    ConflictError,
    InvalidInputError,
    NotAuthorisedError,
)
from collabzone.ingest_scan import Progress
from collabzone.ingest_spec import DatasetSpec
from collabzone.model import (
    Agreement,
    Dataset,
    Role,
)
from collabzone.runtime import visible_to
from collabzone.store import repo
from collabzone.store import tables as t
from collabzone.zone_base import NODE_PREFIX, ZoneBase, _check_name, _now
from collabzone.zone_keys import note_token_versions


def _location(
    postgres: str | None, table: str | None, spark: str | None, path: str | None
) -> remote_tables.Location:
    """Where a remote dataset lives, from the options given (exactly one engine)."""
    if (postgres is None) == (spark is None):
        raise InvalidInputError("name exactly one warehouse: --postgres URL or --spark MASTER")
    if postgres is not None:
        if table is None or path is not None:
            raise InvalidInputError("a PostgreSQL dataset is one --table schema.table")
        return remote_tables.Location(
            "postgres", remote_tables.parse_table(table), remote_tables.check_url(postgres)
        )
    assert spark is not None
    if (table is None) == (path is None):
        raise InvalidInputError("a Spark dataset is a Parquet --path or a catalogue --table")
    master = remote_tables.check_spark_master(spark)
    if path is not None:
        return remote_tables.Location("spark", ("parquet", path), master)
    assert table is not None
    remote_tables.parse_table(table)
    return remote_tables.Location("spark", ("table", table), master)


class DatasetOps(ZoneBase):
    """Datasets of the zone, as one party may handle them."""

    def add_dataset(
        self,
        name: str,
        source: str | Path,
        spec: Mapping[str, Any] | str | Path,
        description: str | None = None,
        *,
        progress: Progress | None = None,
        notice: Callable[[str], None] | None = None,
    ) -> Dataset:
        """Ingest a CSV or Parquet file as a new dataset (or a new version of one's own).

        All or nothing: any problem raises InvalidInputError naming file, line and column,
        and leaves the zone exactly as it was. ``progress(step, fraction, rows)`` hears
        the reading of a CSV file; ``notice`` hears what was skipped (blank lines), which
        the audit event records too.
        """
        me = self._require_role("adding a dataset", Role.PROVIDER)
        _check_name("dataset", name)
        parsed = ingest.parse_spec(spec)
        with self._engine.connect() as conn:
            existing = (
                conn.execute(select(t.datasets).where(t.datasets.c.name == name)).mappings().first()
            )
            agreements = repo.list_agreements(conn, name)
        self._check_tombstone(name, me.name)
        if existing is not None and existing["owner"] != me.name:
            self._requests.audit_denied(
                me.name, f"dataset:{name}", {me.name, existing["owner"]}, {"attempt": "replace"}
            )
            raise NotAuthorisedError(f"dataset {name!r} belongs to {existing['owner']!r}")
        if existing is not None and self._read_only(agreements):
            raise ConflictError(f"dataset {name!r} is read-only: its agreements have expired")
        notices: list[str] = []
        table = ingest.read_file(Path(source), parsed, progress=progress, notice=notices.append)
        for text in notices:
            if notice is not None:
                notice(text)
        version = (existing["version"] + 1) if existing is not None else 1
        file_name, digest = self._data.write(name, version, table)
        columns = [c.model_dump(by_alias=True, mode="json") for c in parsed.columns]
        created = _now()
        values = dict(
            owner=me.name,
            columns=columns,
            row_count=table.num_rows,
            version=version,
            description=description if description is not None else parsed.description,
            data_file=file_name,
            content_sha256=digest,
            created_at=repo.iso(created),
        )
        try:
            with self._engine.begin() as conn:
                if existing is None:
                    conn.execute(t.datasets.insert().values(name=name, **values))
                else:
                    conn.execute(
                        update(t.datasets).where(t.datasets.c.name == name).values(**values)
                    )
                audit.append(
                    conn,
                    self._mac_key(),
                    actor=me.name,
                    action="dataset.added",
                    subject=name,
                    parties=[me.name],
                    details={
                        "version": version,
                        "rows": table.num_rows,
                        "columns": [c["name"] for c in columns],
                        "sha256": digest,
                        **({"notices": notices} if notices else {}),
                    },
                )
                note_token_versions(
                    conn,
                    self._mac_key(),
                    actor=me.name,
                    dataset=name,
                    version=version,
                    table=table,
                    columns=parsed.columns,
                )
        except BaseException:
            self._data.remove(file_name)
            raise
        if existing is not None:
            self._data.remove(existing["data_file"])
        return Dataset(
            name=name,
            created_at=created,
            **{
                k: v
                for k, v in values.items()
                if k in ("owner", "row_count", "version", "description")
            },
            columns=tuple(parsed.columns),
        )

    def register_dataset(
        self,
        name: str,
        spec: Mapping[str, Any] | str | Path,
        *,
        row_count: int,
        description: str | None = None,
    ) -> Dataset:
        """Declare a dataset that stays at the owner's premises (its node runs the techniques).

        Only the schema and an approximate size enter the zone, so agreements, the catalogue
        and requests can name it; owner-placed techniques (e.g. the prediction validator)
        run on it at the owner's node and hand back only released outputs.
        """
        me = self._require_role("registering a dataset", Role.PROVIDER)
        _check_name("dataset", name)
        self._check_tombstone(name, me.name)
        parsed = ingest.parse_spec(spec)
        if isinstance(row_count, bool) or not isinstance(row_count, int) or row_count < 0:
            raise InvalidInputError("row_count must be a non-negative integer")
        return self._record_first_version(
            name,
            me.name,
            parsed,
            row_count,
            description,
            data_file=f"{NODE_PREFIX}{me.name}",
            held={"held_at": f"node:{me.name}"},
        )

    def add_remote_dataset(
        self,
        name: str,
        spec: Mapping[str, Any] | str | Path,
        *,
        postgres: str | None = None,
        table: str | None = None,
        spark: str | None = None,
        path: str | None = None,
        description: str | None = None,
    ) -> Dataset:
        """Register a table of one's warehouse as a dataset left where it lives.

        PostgreSQL: ``postgres`` is the connection URL of a read-only role on ``table``
        (``schema.table``). Spark: ``spark`` is the master (``local[n]``, ``spark://`` or a
        Spark Connect ``sc://`` URL) and the source a Parquet ``path`` or a catalogue
        ``table``. The URL is sealed in the zone's encrypted store and never shown back.
        The column types must match the spec (checked now, reading no row: the catalogue
        and a count). Governed SQL on the dataset runs there; other techniques refuse it.
        """
        me = self._require_role("adding a dataset", Role.PROVIDER)
        _check_name("dataset", name)
        self._check_tombstone(name, me.name)
        parsed = ingest.parse_spec(spec)
        location = _location(postgres, table, spark, path)
        with self._engine.connect() as conn:
            taken = conn.execute(select(t.datasets.c.name).where(t.datasets.c.name == name)).first()
        if taken is not None:
            raise ConflictError(f"a dataset named {name!r} already exists")
        warehouse = remote_tables.open_table(location)
        source = path or table or ""
        if location.kind == "spark":
            remote_tables.check_spark_columns(parsed.columns, warehouse.describe(), source)
        else:
            remote_tables.check_columns(parsed.columns, warehouse.describe(), source)
        row_count = warehouse.count()
        file_name = remote_tables.location_file(name, 1, location.kind)
        self._data.seal_blob(name, 1, file_name, location.to_bytes())
        try:
            return self._record_first_version(
                name,
                me.name,
                parsed,
                row_count,
                description,
                data_file=file_name,
                held={"held_in": location.kind, "rows": row_count},
            )
        except BaseException:
            self._data.remove(file_name)
            raise

    def _record_first_version(
        self,
        name: str,
        owner: str,
        parsed: DatasetSpec,
        row_count: int,
        description: str | None,
        *,
        data_file: str,
        held: dict[str, Any],
    ) -> Dataset:
        """Insert version 1 of a dataset whose data the zone does not hold (a node's or a
        warehouse's) and audit it, in one transaction; a taken name is a ConflictError."""
        columns = [c.model_dump(by_alias=True, mode="json") for c in parsed.columns]
        created = _now()
        try:
            with self._engine.begin() as conn:
                conn.execute(
                    t.datasets.insert().values(
                        name=name,
                        owner=owner,
                        columns=columns,
                        row_count=row_count,
                        version=1,
                        description=description if description is not None else parsed.description,
                        data_file=data_file,
                        content_sha256="",
                        created_at=repo.iso(created),
                    )
                )
                audit.append(
                    conn,
                    self._mac_key(),
                    actor=owner,
                    action="dataset.registered",
                    subject=name,
                    parties=[owner],
                    details={**held, "columns": [c["name"] for c in columns]},
                )
        except DBIntegrityError:
            raise ConflictError(f"a dataset named {name!r} already exists") from None
        return Dataset(
            name=name,
            owner=owner,
            columns=tuple(parsed.columns),
            row_count=row_count,
            version=1,
            description=description or parsed.description,
            created_at=created,
        )

    def _check_tombstone(self, name: str, party: str) -> None:
        """A removed dataset's name stays with its owner (see :meth:`remove_dataset`)."""
        with self._engine.connect() as conn:
            owner = conn.execute(
                select(t.dataset_tombstones.c.owner).where(t.dataset_tombstones.c.name == name)
            ).scalar()
        if owner is not None and owner != party:
            raise ConflictError(
                f"the name {name!r} belonged to a removed dataset of another party: "
                "choose another name"
            )

    @staticmethod
    def _read_only(agreements: Sequence[Agreement]) -> bool:
        now = _now()
        live = [a for a in agreements if a.revoked_at is None]
        return bool(live) and all(a.valid_until is not None and a.valid_until <= now for a in live)

    def datasets(self) -> list[Dataset]:
        """Datasets this party owns or that an active agreement shares with it."""
        me = self.me
        with self._engine.connect() as conn:
            return visible_to(me, repo.list_datasets(conn), repo.list_agreements(conn), _now())

    def remove_dataset(self, name: str) -> None:
        """Delete one's own dataset and its data (its agreements end with it).

        The name stays the owner's (a tombstone): the requests, decisions, budgets and
        audit events that concerned the dataset stay visible to it, and no other party
        can register a dataset under that name and so inherit that history.
        """
        me = self.me
        with self._engine.connect() as conn:
            row = repo.get_dataset_row(conn, name)
        if row["owner"] != me.name:
            self._requests.audit_denied(
                me.name, f"dataset:{name}", {me.name, row["owner"]}, {"attempt": "remove"}
            )
            raise NotAuthorisedError(f"dataset {name!r} belongs to {row['owner']!r}")
        with self._engine.begin() as conn:
            conn.execute(delete(t.datasets).where(t.datasets.c.name == name))
            # the tombstone: the owner keeps sight of what it decided on this dataset
            conn.execute(delete(t.dataset_tombstones).where(t.dataset_tombstones.c.name == name))
            conn.execute(
                t.dataset_tombstones.insert().values(
                    name=name, owner=me.name, version=row["version"], removed_at=repo.iso(_now())
                )
            )
            conn.execute(
                update(t.agreements)
                .where(t.agreements.c.dataset == name, t.agreements.c.revoked_at.is_(None))
                .values(revoked_at=repo.iso(_now()), revoke_reason="dataset removed")
            )
            audit.append(
                conn,
                self._mac_key(),
                actor=me.name,
                action="dataset.removed",
                subject=name,
                parties=[me.name],
            )
        if not row["data_file"].startswith(NODE_PREFIX):
            self._data.remove(row["data_file"])

    def _clean_orphans(self) -> None:
        """Remove data files no dataset points to (left by a crash mid-ingest)."""
        with self._engine.connect() as conn:
            known = {r.data_file for r in conn.execute(select(t.datasets.c.data_file))}
        for name in self._data.files() - {k for k in known if not k.startswith(NODE_PREFIX)}:
            self._data.remove(name)
