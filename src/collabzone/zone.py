"""The Zone: one entry point for everything a party does in a collaboration.

A :class:`Zone` is opened *as a party* (by its token) and every method acts for that
party: it can never act for another, read another's datasets, or approve for a dataset it
does not own. Refused attempts are written to the audit log.

>>> zone, operator_token = init("/tmp/my-zone")                       # doctest: +SKIP
>>> bank_token = zone.add_party("bank", ["provider", "analyst"])[1]   # doctest: +SKIP
>>> bank = connect("/tmp/my-zone", token=bank_token)                  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import secrets
import tomllib
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, delete, select, update
from sqlalchemy.exc import IntegrityError as DBIntegrityError

from collabzone import audit, ingest, policy
from collabzone.budget import BudgetLimit, Period, remaining
from collabzone.errors import (
    AuthenticationError,
    ConflictError,
    InvalidInputError,
    NotAuthorisedError,
    NotFoundError,
)
from collabzone.keys import KeyProvider, LocalKeyring, master_key_from_env, new_master_key
from collabzone.model import (
    Agreement,
    Approval,
    Dataset,
    Party,
    Receipt,
    Release,
    Request,
    RequestStatus,
    Role,
)
from collabzone.requests import RequestEngine
from collabzone.runtime import visible_to
from collabzone.store import repo
from collabzone.store import tables as t
from collabzone.store.data import DATA_KEY, DataStore
from collabzone.store.engine import migrate, open_engine, sqlite_url
from collabzone.techniques import registry

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
DB_URL_ENV = "COLLABZONE_DB_URL"
NODE_PREFIX = "node:"


def _check_name(kind: str, name: str) -> str:
    if not NAME_PATTERN.match(name):
        raise InvalidInputError(
            f"{kind} name {name!r} must start with a lowercase letter and use only a-z, 0-9 and _ (max 63)"
        )
    return name


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _new_token() -> str:
    return "czt_" + secrets.token_urlsafe(32)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _resolve_db(root: Path, db_url: str | None) -> str:
    if db_url:
        return db_url
    if os.environ.get(DB_URL_ENV):
        return os.environ[DB_URL_ENV]
    config = root / "zone.toml"
    if config.exists():
        doc = tomllib.loads(config.read_text(encoding="utf-8"))
        if doc.get("db_url"):
            return str(doc["db_url"])
    return sqlite_url(root)


def init(
    path: str | Path,
    *,
    operator: str = "operator",
    db_url: str | None = None,
    master_key: str | None = None,
) -> tuple[Zone, str]:
    """Create a zone in directory ``path``; returns it (acting as the operator) and the
    operator's token. The master key comes from ``master_key`` or the environment."""
    root = Path(path)
    if (root / "zone.toml").exists():
        raise ConflictError(f"{root} already holds a zone")
    _check_name("party", operator)
    key = master_key or master_key_from_env()
    root.mkdir(parents=True, exist_ok=True)
    zone_id = f"zone-{uuid.uuid4().hex[:12]}"
    url = _resolve_db(root, db_url)
    engine = open_engine(url)
    migrate(engine)
    with engine.connect() as conn:
        if conn.execute(select(t.zone_info)).first() is not None:
            raise ConflictError(
                "that metadata database already holds a zone; give an empty one (--db)"
            )
    keyring = LocalKeyring.create_new(root / "keyring.json", key)
    keyring.create(DATA_KEY)
    keyring.create("audit-head")
    token = _new_token()
    with engine.begin() as conn:
        conn.execute(t.zone_info.insert().values(key="zone_id", value=zone_id))
        conn.execute(
            t.parties.insert().values(
                name=operator,
                roles=[Role.OPERATOR.value],
                token_hash=_hash_token(token),
                created_at=repo.iso(_now()),
            )
        )
        audit.append(
            conn,
            keyring.derive("audit-head", zone_id),
            actor=operator,
            action="zone.created",
            subject=zone_id,
            parties=[operator],
            details={"operator": operator},
        )
    lines = [f'zone_id = "{zone_id}"', "format = 1"]
    if db_url:
        lines.append(f"db_url = {json.dumps(db_url)}")
    (root / "zone.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return Zone(root, engine, keyring, zone_id, token), token


def connect(
    path: str | Path,
    token: str | None = None,
    *,
    db_url: str | None = None,
    master_key: str | None = None,
) -> Zone:
    """Open an existing zone acting as the party whose token is given (or COLLABZONE_TOKEN)."""
    root = Path(path)
    config = root / "zone.toml"
    if not config.exists():
        raise NotFoundError(
            f"{root} is not a zone (no zone.toml): create one with `collabzone init`"
        )
    zone_id = str(tomllib.loads(config.read_text(encoding="utf-8"))["zone_id"])
    engine = open_engine(_resolve_db(root, db_url))
    migrate(engine)
    keyring = LocalKeyring(root / "keyring.json", master_key or master_key_from_env())
    token = token or os.environ.get("COLLABZONE_TOKEN")
    return Zone(root, engine, keyring, zone_id, token)


class Zone:
    """One collaboration, seen by one party. Every public method is one zone operation."""

    def __init__(
        self, root: Path, engine: Engine, keys: KeyProvider, zone_id: str, token: str | None
    ) -> None:
        self.root = root
        self.zone_id = zone_id
        self._engine = engine
        self._keys = keys
        self._data = DataStore(root / "data", keys)
        self._requests = RequestEngine(engine, self._data, keys, zone_id)
        self._party = self._authenticate(token) if token else None
        self._clean_orphans()

    def __repr__(self) -> str:
        who = self._party.name if self._party else "nobody"
        return f"<Zone {self.zone_id} as {who}>"

    # -- identity -------------------------------------------------------------------------

    def _authenticate(self, token: str) -> Party:
        with self._engine.connect() as conn:
            row = (
                conn.execute(select(t.parties).where(t.parties.c.token_hash == _hash_token(token)))
                .mappings()
                .first()
            )
        if row is None:
            self._requests.audit_denied(
                "anonymous", "authentication", set(), {"reason": "unknown token"}
            )
            raise AuthenticationError(
                "the token matches no party (check --token / COLLABZONE_TOKEN)"
            )
        return repo.party_from_row(row)

    def as_party(self, token: str) -> Zone:
        """The same zone, acting as the party that owns ``token``."""
        return Zone(self.root, self._engine, self._keys, self.zone_id, token)

    @property
    def me(self) -> Party:
        """The party this handle acts for."""
        if self._party is None:
            raise AuthenticationError("no token given: pass --token or set COLLABZONE_TOKEN")
        return self._party

    def _require_role(self, action: str, *roles: Role) -> Party:
        me = self.me
        if not any(me.has_role(r) for r in roles):
            self._requests.audit_denied(
                me.name, action, {me.name}, {"needs_role": [r.value for r in roles]}
            )
            raise NotAuthorisedError(
                f"{action} needs the role {' or '.join(r.value for r in roles)}; "
                f"{me.name!r} has {', '.join(me.roles)}"
            )
        return me

    def _mac_key(self) -> bytes:
        return self._keys.derive("audit-head", self.zone_id)

    # -- parties --------------------------------------------------------------------------

    def add_party(self, name: str, roles: Iterable[Role | str]) -> tuple[Party, str]:
        """Register an organisation (operator only); returns it and its token (shown once)."""
        me = self._require_role("adding a party", Role.OPERATOR)
        _check_name("party", name)
        try:
            role_list = sorted({Role(r) for r in roles})
        except ValueError:
            raise InvalidInputError(
                f"unknown role in {list(roles)}; roles: {', '.join(r.value for r in Role)}"
            ) from None
        if not role_list:
            raise InvalidInputError("a party needs at least one role")
        token = _new_token()
        created = _now()
        try:
            with self._engine.begin() as conn:
                conn.execute(
                    t.parties.insert().values(
                        name=name,
                        roles=[r.value for r in role_list],
                        token_hash=_hash_token(token),
                        created_at=repo.iso(created),
                    )
                )
                audit.append(
                    conn,
                    self._mac_key(),
                    actor=me.name,
                    action="party.added",
                    subject=name,
                    parties=[me.name, name],
                    details={"roles": [r.value for r in role_list]},
                )
        except DBIntegrityError:
            raise ConflictError(f"a party named {name!r} already exists") from None
        return Party(name=name, roles=tuple(role_list), created_at=created), token

    def parties(self) -> list[Party]:
        """Every party of the zone (names and roles are public within the zone)."""
        _ = self.me  # authenticated parties only
        with self._engine.connect() as conn:
            return repo.list_parties(conn)

    # -- datasets -------------------------------------------------------------------------

    def add_dataset(
        self,
        name: str,
        source: str | Path,
        spec: Mapping[str, Any] | str | Path,
        description: str | None = None,
    ) -> Dataset:
        """Ingest a CSV or Parquet file as a new dataset (or a new version of one's own).

        All or nothing: any problem raises InvalidInputError naming file, line and column,
        and leaves the zone exactly as it was.
        """
        me = self._require_role("adding a dataset", Role.PROVIDER)
        _check_name("dataset", name)
        parsed = ingest.parse_spec(spec)
        with self._engine.connect() as conn:
            existing = (
                conn.execute(select(t.datasets).where(t.datasets.c.name == name)).mappings().first()
            )
            agreements = repo.list_agreements(conn, name)
        if existing is not None and existing["owner"] != me.name:
            self._requests.audit_denied(
                me.name, f"dataset:{name}", {me.name, existing["owner"]}, {"attempt": "replace"}
            )
            raise NotAuthorisedError(f"dataset {name!r} belongs to {existing['owner']!r}")
        if existing is not None and self._read_only(agreements):
            raise ConflictError(f"dataset {name!r} is read-only: its agreements have expired")
        table = ingest.read_file(Path(source), parsed)
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
                    },
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
        parsed = ingest.parse_spec(spec)
        if isinstance(row_count, bool) or not isinstance(row_count, int) or row_count < 0:
            raise InvalidInputError("row_count must be a non-negative integer")
        columns = [c.model_dump(by_alias=True, mode="json") for c in parsed.columns]
        created = _now()
        try:
            with self._engine.begin() as conn:
                conn.execute(
                    t.datasets.insert().values(
                        name=name,
                        owner=me.name,
                        columns=columns,
                        row_count=row_count,
                        version=1,
                        description=description if description is not None else parsed.description,
                        data_file=f"{NODE_PREFIX}{me.name}",
                        content_sha256="",
                        created_at=repo.iso(created),
                    )
                )
                audit.append(
                    conn,
                    self._mac_key(),
                    actor=me.name,
                    action="dataset.registered",
                    subject=name,
                    parties=[me.name],
                    details={"held_at": f"node:{me.name}", "columns": [c["name"] for c in columns]},
                )
        except DBIntegrityError:
            raise ConflictError(f"a dataset named {name!r} already exists") from None
        return Dataset(
            name=name,
            owner=me.name,
            columns=tuple(parsed.columns),
            row_count=row_count,
            version=1,
            description=description or parsed.description,
            created_at=created,
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
        """Delete one's own dataset and its data (its agreements end with it)."""
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

    # -- agreements -----------------------------------------------------------------------

    def add_agreement(
        self,
        dataset: str,
        *,
        grantees: Sequence[str],
        technique: str,
        purposes: Sequence[str],
        rules: Mapping[str, Any] | None = None,
        approval: Approval | str = Approval.AUTO,
        valid_from: dt.datetime | None = None,
        valid_until: dt.datetime | None = None,
    ) -> Agreement:
        """Sign an agreement on one's own dataset: who may use it, by which technique, why, until when."""
        me = self.me
        with self._engine.connect() as conn:
            row = repo.get_dataset_row(conn, dataset)
            party_names = {p.name for p in repo.list_parties(conn)}
        if row["owner"] != me.name:
            self._requests.audit_denied(
                me.name, f"dataset:{dataset}", {me.name, row["owner"]}, {"attempt": "agreement"}
            )
            raise NotAuthorisedError(f"only {row['owner']!r} can sign agreements on {dataset!r}")
        technique_obj = registry.get(technique)
        if not grantees:
            raise InvalidInputError(
                "an agreement needs at least one grantee (a party name or role:<role>)"
            )
        for grantee in grantees:
            if grantee.startswith("role:"):
                if grantee[5:] not in {r.value for r in Role}:
                    raise InvalidInputError(f"unknown role in grantee {grantee!r}")
            elif grantee not in party_names:
                raise InvalidInputError(f"grantee {grantee!r} is not a party of this zone")
        if not purposes or any(not p.strip() for p in purposes):
            raise InvalidInputError("an agreement needs at least one non-empty purpose (or '*')")
        rules = dict(rules or {})
        problems = policy.validate_rules(rules, technique_obj.rule_specs)
        if problems:
            raise InvalidInputError("; ".join(problems))
        if "budget_period" in rules:
            try:
                Period(rules["budget_period"])
            except ValueError:
                raise InvalidInputError(
                    f"budget_period must be one of {', '.join(p.value for p in Period)}"
                ) from None
        now = _now()
        start = valid_from or now
        for label, value in (("valid_from", valid_from), ("valid_until", valid_until)):
            if value is not None and value.tzinfo is None:
                raise InvalidInputError(
                    f"{label} must carry a timezone (e.g. 2027-01-01T00:00:00+00:00)"
                )
        if valid_until is not None and valid_until <= start:
            raise InvalidInputError("valid_until must be after valid_from")
        agreement = Agreement(
            id=f"ag-{uuid.uuid4().hex[:10]}",
            dataset=dataset,
            owner=me.name,
            grantees=tuple(grantees),
            technique=technique_obj.name,
            purposes=tuple(purposes),
            rules=rules,
            approval=Approval(approval),
            valid_from=start,
            valid_until=valid_until,
            created_at=now,
        )
        with self._engine.begin() as conn:
            conn.execute(
                t.agreements.insert().values(
                    id=agreement.id,
                    dataset=dataset,
                    owner=me.name,
                    grantees=list(grantees),
                    technique=agreement.technique,
                    purposes=list(purposes),
                    rules=rules,
                    approval=agreement.approval.value,
                    valid_from=repo.iso(start),
                    valid_until=repo.iso(valid_until) if valid_until else None,
                    created_at=repo.iso(now),
                )
            )
            audit.append(
                conn,
                self._mac_key(),
                actor=me.name,
                action="agreement.signed",
                subject=agreement.id,
                parties=[me.name, *[g for g in grantees if not g.startswith("role:")]],
                details=json.loads(agreement.model_dump_json()),
            )
        return agreement

    def agreements(self, dataset: str | None = None) -> list[Agreement]:
        """Agreements governing data this party touches: its own, those granting it, and
        those on datasets its requests used (every participant can audit them)."""
        me = self.me
        with self._engine.connect() as conn:
            everything = repo.list_agreements(conn, dataset)
            mine = {r.name for r in repo.list_datasets(conn) if r.owner == me.name}
            touched = {
                d for r in repo.list_requests(conn) if r.requester == me.name for d in r.datasets
            }
        if me.has_role(Role.AUDITOR) or me.has_role(Role.OPERATOR):
            return everything
        return [a for a in everything if a.dataset in mine or a.grants(me) or a.dataset in touched]

    def agreement(self, agreement_id: str) -> Agreement:
        for agreement in self.agreements():
            if agreement.id == agreement_id:
                return agreement
        raise NotFoundError(f"no agreement {agreement_id!r} visible to {self.me.name!r}")

    def revoke_agreement(self, agreement_id: str, reason: str) -> Agreement:
        """End an agreement now (owner only); requests not yet released under it are refused."""
        me = self.me
        with self._engine.connect() as conn:
            agreement = repo.get_agreement(conn, agreement_id)
        if agreement.owner != me.name:
            self._requests.audit_denied(
                me.name, agreement_id, {me.name, agreement.owner}, {"attempt": "revoke"}
            )
            raise NotAuthorisedError(f"only {agreement.owner!r} can revoke {agreement_id}")
        if agreement.revoked_at is not None:
            raise ConflictError(f"{agreement_id} is already revoked")
        if not reason.strip():
            raise InvalidInputError("give a reason for revoking")
        now = _now()
        with self._engine.begin() as conn:
            conn.execute(
                update(t.agreements)
                .where(t.agreements.c.id == agreement_id)
                .values(revoked_at=repo.iso(now), revoke_reason=reason)
            )
            audit.append(
                conn,
                self._mac_key(),
                actor=me.name,
                action="agreement.revoked",
                subject=agreement_id,
                parties=[me.name, *agreement.grantees],
                details={"reason": reason},
            )
        return agreement.model_copy(update={"revoked_at": now, "revoke_reason": reason})

    # -- requests -------------------------------------------------------------------------

    def submit(
        self,
        technique: str,
        spec: Mapping[str, Any] | None = None,
        purpose: str = "",
        *,
        dry_run: bool = False,
    ) -> Request | dict[str, Any]:
        """Ask a question. With ``dry_run`` nothing is recorded: the price is returned (what
        it touches, which rules apply, what it costs, what budget remains)."""
        me = self.me
        if dry_run:
            return self._requests.price(me, technique, spec or {}, purpose)
        request_id = self._requests.submit(me, technique, spec or {}, purpose)
        return self.request(request_id)

    def price(
        self, technique: str, spec: Mapping[str, Any] | None = None, purpose: str = ""
    ) -> dict[str, Any]:
        """The dry run of :meth:`submit`."""
        return self._requests.price(self.me, technique, spec or {}, purpose)

    def request(self, request_id: str) -> Request:
        """One request, if this party asked it, must approve it, owns data it touches, or
        is the node that runs it."""
        me = self.me
        with self._engine.connect() as conn:
            request = repo.get_request(conn, request_id)
            owners = {d.owner for d in repo.list_datasets(conn) if d.name in request.datasets}
        if (
            me.name != request.requester
            and request.runs_at != f"owner:{me.name}"
            and me.name not in owners
            and not me.has_role(Role.AUDITOR)
            and not me.has_role(Role.OPERATOR)
        ):
            self._requests.audit_denied(
                me.name, request_id, {me.name, request.requester}, {"attempt": "read"}
            )
            raise NotAuthorisedError(f"request {request_id} does not concern {me.name!r}")
        return request

    def requests(self, status: RequestStatus | str | None = None) -> list[Request]:
        """Requests this party asked, must decide, or that touch its datasets."""
        me = self.me
        with self._engine.connect() as conn:
            everything = repo.list_requests(conn)
            mine = {d.name for d in repo.list_datasets(conn) if d.owner == me.name}
        wanted = RequestStatus(status) if status else None
        seen_all = me.has_role(Role.AUDITOR) or me.has_role(Role.OPERATOR)
        return [
            r
            for r in everything
            if (wanted is None or r.status is wanted)
            and (seen_all or r.requester == me.name or set(r.datasets) & mine)
        ]

    def approve(self, request_id: str, reason: str) -> Request:
        """Approve a request touching one's dataset; the last approval runs it."""
        self._requests.decide(self.me, request_id, True, reason)
        return self.request(request_id)

    def deny(self, request_id: str, reason: str) -> Request:
        """Deny a request touching one's dataset: it is refused with this owner's reason."""
        self._requests.decide(self.me, request_id, False, reason)
        return self.request(request_id)

    def result(self, request_id: str) -> Release:
        """A released result with its privacy receipt (requester, recipients, owners)."""
        request = self.request(request_id)
        with self._engine.connect() as conn:
            row = (
                conn.execute(select(t.releases).where(t.releases.c.request_id == request_id))
                .mappings()
                .first()
            )
        if row is None:
            reasons = "; ".join(request.reasons) or "not released yet"
            raise NotFoundError(f"request {request_id} is {request.status.value}: {reasons}")
        me = self.me
        receipt = repo.receipt_from_row(row)
        if me.name not in row["released_to"] and me.name != request.requester:
            # owners and auditors read the receipt, never the payload addressed to others
            return Release(request_id=request_id, payload={}, receipt=receipt)
        return Release(request_id=request_id, payload=row["payload"], receipt=receipt)

    def receipt(self, request_id: str) -> Receipt:
        """The privacy receipt of a released request."""
        return self.result(request_id).receipt

    def catalogue(self, mock_rows: int = 5) -> dict[str, Any]:
        """What this party may see of the datasets shared with it (see techniques/catalogue.py)."""
        request = self.submit(
            "catalogue", {"mock_rows": mock_rows}, purpose="discover shared datasets"
        )
        assert isinstance(request, Request)
        return dict(self.result(request.id).payload)

    # -- node jobs (techniques placed at the owner's premises) ----------------------------

    def jobs(self) -> list[Request]:
        """Approved jobs waiting for this party's node."""
        return self._requests.jobs_for(self.me)

    def complete_job(
        self,
        request_id: str,
        payload: Mapping[str, Any],
        spent: Mapping[str, Mapping[str, float]] | None = None,
        **outcome: Any,
    ) -> Request:
        """Hand back a job's outcome; the zone filters, charges and releases it."""
        self._requests.complete(self.me, request_id, payload, spent or {}, **outcome)
        return self.request(request_id)

    # -- budget and audit -----------------------------------------------------------------

    def budget(self) -> list[dict[str, Any]]:
        """Privacy budget spent and remaining per (party, dataset, period) this party may see."""
        me = self.me
        with self._engine.connect() as conn:
            debits = list(conn.execute(select(t.budget_debits)).mappings())
            owned = {d.name for d in repo.list_datasets(conn) if d.owner == me.name}
            agreements = repo.list_agreements(conn)
        seen_all = me.has_role(Role.AUDITOR) or me.has_role(Role.OPERATOR)
        groups: dict[tuple[str, str, str], list[Any]] = {}
        for row in debits:
            if seen_all or row["party"] == me.name or row["dataset"] in owned:
                groups.setdefault((row["party"], row["dataset"], row["period"]), []).append(row)
        out = []
        for (party, dataset, period), rows in sorted(groups.items()):
            from collabzone.budget import PrivacyCost, total

            spent = total(
                PrivacyCost(float(r["epsilon"]), float(r["delta"]), float(r["rho"])) for r in rows
            )
            granted = next(
                (
                    a.rules
                    for a in reversed(agreements)
                    if a.dataset == dataset and a.is_active(_now()) and "epsilon_budget" in a.rules
                ),
                {},
            )
            limit = BudgetLimit(
                granted.get("epsilon_budget"),
                granted.get("delta_budget"),
                granted.get("rho_budget"),
            )
            out.append(
                {
                    "party": party,
                    "dataset": dataset,
                    "period": period,
                    "spent": spent.as_dict(),
                    "remaining": remaining([spent], limit),
                    "debits": len(rows),
                }
            )
        return out

    def verify_audit(self) -> audit.Verification:
        """Recompute the audit chain and its signed head; report the first broken link."""
        _ = self.me  # authenticated parties only
        with self._engine.connect() as conn:
            return audit.verify_chain(
                audit.read_events(conn), audit.read_head(conn), self._mac_key()
            )

    def audit_events(self) -> list[dict[str, Any]]:
        """The audit log (auditors and operators: all of it; others: events that concern them)."""
        me = self.me
        with self._engine.connect() as conn:
            events = audit.read_events(conn)
        if me.has_role(Role.AUDITOR) or me.has_role(Role.OPERATOR):
            return [e.as_dict() for e in events]
        return [e.as_dict() for e in events if me.name in e.parties or e.actor == me.name]

    def export_audit(self, path: str | Path) -> int:
        """Write the audit log this party may read as JSON Lines; returns the event count."""
        events = self.audit_events()
        target = Path(path)
        tmp = target.with_name(target.name + ".tmp")
        with tmp.open("w", encoding="utf-8") as handle:
            for event in events:
                handle.write(audit.canonical_json(event) + "\n")
        tmp.replace(target)
        return len(events)

    def job_context(self, request_id: str) -> dict[str, Any]:
        """What a node needs to run one of its jobs: the stored plan and the monitor history.

        Owner-placed techniques run at a node (see src/collabzone/node.py), which needs the
        plan the zone checked (``plan``: technique, datasets, cost, details, node) and, per
        planned dataset, what earlier releases stored for query monitoring (``history``:
        their hidden ``_monitor`` dicts with ``requester`` and ``released_at`` added), so it
        can refuse differencing. Only the job's node may read it.
        """
        me = self.me
        with self._engine.connect() as conn:
            row = repo.get_request_row(conn, request_id)
        if row["placement"] != "owner" or row["node"] != me.name:
            self._requests.audit_denied(
                me.name, request_id, {me.name, row["requester"]}, {"attempt": "job_context"}
            )
            raise NotAuthorisedError(f"request {request_id} is not a job for {me.name!r}")
        plan = dict(row["plan"])
        with self._engine.connect() as conn:
            rows = list(
                conn.execute(
                    select(
                        t.releases.c.monitor,
                        t.releases.c.released_at,
                        t.requests.c.requester,
                        t.requests.c.datasets,
                    )
                    .join(t.requests, t.requests.c.id == t.releases.c.request_id)
                    .order_by(t.releases.c.released_at)
                ).mappings()
            )
        history = {
            name: [
                {**r["monitor"], "requester": r["requester"], "released_at": r["released_at"]}
                for r in rows
                if name in r["datasets"] and r["monitor"]
            ]
            for name in plan.get("datasets", [])
        }
        return {"plan": plan, "history": history}


def new_zone_master_key() -> str:
    """A random master key for a new zone (keep it outside the zone directory)."""
    return new_master_key()
