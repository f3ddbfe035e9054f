"""Rows <-> domain values. Every read of the metadata store goes through here."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, select, update

from collabzone.budget import PrivacyCost
from collabzone.errors import ConflictError, NotFoundError
from collabzone.model import (
    Agreement,
    Approval,
    Column,
    Dataset,
    Decision,
    Party,
    Receipt,
    Request,
    RequestStatus,
    Role,
)
from collabzone.store import tables as t

RowLike = Mapping[Any, Any]
"""A result row as a mapping (SQLAlchemy RowMapping or a plain dict)."""


def iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat(timespec="microseconds")


def parse_time(value: str | None) -> dt.datetime | None:
    return None if value is None else dt.datetime.fromisoformat(value)


def _time(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value)


def party_from_row(row: RowLike) -> Party:
    return Party(
        name=row["name"],
        roles=tuple(Role(r) for r in row["roles"]),
        created_at=_time(row["created_at"]),
        disabled_at=parse_time(row.get("disabled_at")),
        secret_version=row.get("secret_version") or 1,
    )


def dataset_from_row(row: RowLike) -> Dataset:
    return Dataset(
        name=row["name"],
        owner=row["owner"],
        columns=tuple(Column.model_validate(c) for c in row["columns"]),
        row_count=row["row_count"],
        version=row["version"],
        description=row["description"],
        created_at=_time(row["created_at"]),
    )


def agreement_from_row(row: RowLike) -> Agreement:
    return Agreement(
        id=row["id"],
        dataset=row["dataset"],
        owner=row["owner"],
        grantees=tuple(row["grantees"]),
        technique=row["technique"],
        purposes=tuple(row["purposes"]),
        rules=dict(row["rules"]),
        approval=Approval(row["approval"]),
        valid_from=_time(row["valid_from"]),
        valid_until=parse_time(row["valid_until"]),
        revoked_at=parse_time(row["revoked_at"]),
        revoke_reason=row["revoke_reason"],
        created_at=_time(row["created_at"]),
    )


def get_party(conn: Connection, name: str) -> Party:
    row = conn.execute(select(t.parties).where(t.parties.c.name == name)).mappings().first()
    if row is None:
        raise NotFoundError(f"no party named {name!r}")
    return party_from_row(row)


def list_parties(conn: Connection) -> list[Party]:
    return [
        party_from_row(r)
        for r in conn.execute(select(t.parties).order_by(t.parties.c.name)).mappings()
    ]


def get_dataset_row(conn: Connection, name: str) -> RowLike:
    row = conn.execute(select(t.datasets).where(t.datasets.c.name == name)).mappings().first()
    if row is None:
        raise NotFoundError(f"no dataset named {name!r}")
    return row


def list_datasets(conn: Connection) -> list[Dataset]:
    return [
        dataset_from_row(r)
        for r in conn.execute(select(t.datasets).order_by(t.datasets.c.name)).mappings()
    ]


def owned_dataset_names(conn: Connection, party: str) -> set[str]:
    """Datasets ``party`` owns or owned: a removed dataset's tombstone keeps its owner's
    sight of the requests, decisions, budgets and audit that concerned it."""
    live = conn.execute(select(t.datasets.c.name).where(t.datasets.c.owner == party))
    gone = conn.execute(
        select(t.dataset_tombstones.c.name).where(t.dataset_tombstones.c.owner == party)
    )
    return {r.name for r in live} | {r.name for r in gone}


def dataset_owners(conn: Connection, names: list[str]) -> dict[str, str]:
    """The owner of each named dataset, live or removed (tombstoned)."""
    owners = {
        r.name: r.owner
        for r in conn.execute(
            select(t.dataset_tombstones.c.name, t.dataset_tombstones.c.owner).where(
                t.dataset_tombstones.c.name.in_(names)
            )
        )
    }
    for r in conn.execute(
        select(t.datasets.c.name, t.datasets.c.owner).where(t.datasets.c.name.in_(names))
    ):
        owners[r.name] = r.owner
    return owners


def list_agreements(conn: Connection, dataset: str | None = None) -> list[Agreement]:
    query = select(t.agreements).order_by(t.agreements.c.created_at)
    if dataset is not None:
        query = query.where(t.agreements.c.dataset == dataset)
    return [agreement_from_row(r) for r in conn.execute(query).mappings()]


def get_agreement(conn: Connection, agreement_id: str) -> Agreement:
    row = (
        conn.execute(select(t.agreements).where(t.agreements.c.id == agreement_id))
        .mappings()
        .first()
    )
    if row is None:
        raise NotFoundError(f"no agreement {agreement_id!r}")
    return agreement_from_row(row)


def request_from_row(row: RowLike, decisions: list[Decision]) -> Request:
    return Request(
        id=row["id"],
        requester=row["requester"],
        technique=row["technique"],
        spec=row["spec"],
        purpose=row["purpose"],
        status=RequestStatus(row["status"]),
        datasets=tuple(row["datasets"]),
        owners_to_approve=tuple(row["owners_to_approve"]),
        decisions=tuple(decisions),
        reasons=tuple(row["reasons"]),
        cost=row["cost"],
        runs_at=row["placement"] if row["node"] is None else f"{row['placement']}:{row['node']}",
        created_at=_time(row["created_at"]),
        updated_at=_time(row["updated_at"]),
    )


def get_request_row(conn: Connection, request_id: str, *, for_update: bool = False) -> RowLike:
    query = select(t.requests).where(t.requests.c.id == request_id)
    if for_update:
        query = query.with_for_update()
    row = conn.execute(query).mappings().first()
    if row is None:
        raise NotFoundError(f"no request {request_id!r}")
    return row


def decisions_of(conn: Connection, request_id: str) -> list[Decision]:
    rows = conn.execute(
        select(t.decisions).where(t.decisions.c.request_id == request_id).order_by(t.decisions.c.at)
    ).mappings()
    return [
        Decision(owner=r["owner"], approved=r["approved"], reason=r["reason"], at=_time(r["at"]))
        for r in rows
    ]


def get_request(conn: Connection, request_id: str) -> Request:
    return request_from_row(get_request_row(conn, request_id), decisions_of(conn, request_id))


def list_requests(conn: Connection) -> list[Request]:
    """Every request with its decisions (two queries, however many requests there are)."""
    rows = list(conn.execute(select(t.requests).order_by(t.requests.c.created_at)).mappings())
    decided: dict[str, list[Decision]] = {}
    for d in conn.execute(select(t.decisions).order_by(t.decisions.c.at)).mappings():
        decided.setdefault(d["request_id"], []).append(
            Decision(
                owner=d["owner"], approved=d["approved"], reason=d["reason"], at=_time(d["at"])
            )
        )
    return [request_from_row(r, decided.get(r["id"], [])) for r in rows]


def datasets_requested_by(conn: Connection, party: str) -> set[str]:
    """Every dataset a party's requests touched (the agreements governing them concern it)."""
    rows = conn.execute(select(t.requests.c.datasets).where(t.requests.c.requester == party))
    return {name for row in rows for name in row.datasets}


def spent(conn: Connection, party: str, dataset: str, period: str) -> list[PrivacyCost]:
    rows = conn.execute(
        select(t.budget_debits.c.epsilon, t.budget_debits.c.delta, t.budget_debits.c.rho).where(
            t.budget_debits.c.party == party,
            t.budget_debits.c.dataset == dataset,
            t.budget_debits.c.period == period,
        )
    )
    return [PrivacyCost(float(r.epsilon), float(r.delta), float(r.rho)) for r in rows]


def receipt_from_row(row: RowLike) -> Receipt:
    return Receipt.model_validate(row["receipt"])


def monitor_history(conn: Connection, dataset: str) -> list[dict[str, Any]]:
    """What earlier releases on ``dataset`` recorded for query monitoring (their hidden
    ``_monitor`` dicts), oldest first, with the requester and release time added."""
    rows = conn.execute(
        select(
            t.releases.c.monitor,
            t.releases.c.released_at,
            t.requests.c.requester,
            t.requests.c.datasets,
        )
        .join(t.requests, t.requests.c.id == t.releases.c.request_id)
        .order_by(t.releases.c.released_at)
    ).mappings()
    return [
        {**r["monitor"], "requester": r["requester"], "released_at": r["released_at"]}
        for r in rows
        if dataset in r["datasets"] and r["monitor"]
    ]


def audit_state(conn: Connection, space: str) -> tuple[int, bytes] | None:
    """The stored disclosure-audit state of ``space`` (version, blob), or None."""
    row = conn.execute(
        select(t.audit_state.c.version, t.audit_state.c.state).where(t.audit_state.c.space == space)
    ).first()
    return None if row is None else (int(row.version), bytes(row.state))


def store_audit_state(
    conn: Connection, space: str, base_version: int | None, state: bytes, at: str
) -> int:
    """Compare-and-swap: write ``state`` if ``space`` is still at ``base_version``.

    Raises ConflictError when another release changed the space since it was read.
    """
    current = conn.execute(
        select(t.audit_state.c.version).where(t.audit_state.c.space == space).with_for_update()
    ).first()
    if current is None:
        if base_version is not None:
            raise ConflictError(f"audit space {space!r} vanished")
        conn.execute(
            t.audit_state.insert().values(space=space, version=1, updated_at=at, state=state)
        )
        return 1
    if base_version != int(current.version):
        raise ConflictError(f"audit space {space!r} changed since it was read")
    conn.execute(
        update(t.audit_state)
        .where(t.audit_state.c.space == space)
        .values(version=int(current.version) + 1, updated_at=at, state=state)
    )
    return int(current.version) + 1
