"""The Zone: one entry point for everything a party does in a collaboration.

A :class:`Zone` is opened *as a party* (by its token) and every method acts for that
party: it can never act for another, read another's datasets, or approve for a dataset it
does not own. Refused attempts are written to the audit log.

>>> zone, operator_token = init("/tmp/my-zone")                       # doctest: +SKIP
>>> bank_token = zone.add_party("bank", ["provider", "analyst"])[1]   # doctest: +SKIP
>>> bank = connect("/tmp/my-zone", token=bank_token)                  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import tomllib
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError as DBIntegrityError

from collabzone import audit
from collabzone.budget import total
from collabzone.errors import (
    ConflictError,
    InvalidInputError,
    NotAuthorisedError,
    NotFoundError,
)
from collabzone.keys import master_key_from_env, new_master_key
from collabzone.keys_config import KeysConfig, create_keys, open_keys
from collabzone.model import (
    Party,
    Receipt,
    Release,
    Request,
    RequestStatus,
    Role,
)
from collabzone.pacing import Pacing
from collabzone.runtime import budget_period_of
from collabzone.store import repo
from collabzone.store import tables as t
from collabzone.store.data import DATA_KEY
from collabzone.store.engine import migrate, open_engine, sqlite_url
from collabzone.techniques.base import PARTS_KEY
from collabzone.zone_agreements import AgreementOps
from collabzone.zone_audit import AuditOps
from collabzone.zone_base import DB_URL_ENV, _check_name, _hash_token, _new_token, _now
from collabzone.zone_datasets import DatasetOps
from collabzone.zone_fanout import FanoutOps
from collabzone.zone_jobs import JobOps
from collabzone.zone_keys import KeyOps, checkpoint_key_note
from collabzone.zone_parties import PartyOps


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
    keys: Mapping[str, Any] | None = None,
    timing: Mapping[str, Any] | None = None,
) -> tuple[Zone, str]:
    """Create a zone in directory ``path``; returns it (acting as the operator) and the
    operator's token. The master key comes from ``master_key`` or the environment.

    ``keys`` is the ``[keys]`` table of zone.toml choosing the key provider (default: the
    local keyring; ``{"provider": "pkcs11", ...}`` or ``"vault"``, see keys_config.py).
    ``timing`` is its ``[timing]`` table: the response-time ladder (see pacing.py).
    """
    root = Path(path)
    if (root / "zone.toml").exists():
        raise ConflictError(f"{root} already holds a zone")
    _check_name("party", operator)
    keys_config = KeysConfig.parse(keys)
    pacing = Pacing.parse(timing)
    key = master_key or (master_key_from_env() if keys_config.provider == "local" else None)
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
    keyring = create_keys(root, keys_config, key)
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
            details={
                "operator": operator,
                "checkpoint_key": checkpoint_key_note(
                    keyring, zone_id, keyring.current("audit-head")
                ),
            },
        )
    lines = [f'zone_id = "{zone_id}"', "format = 1"]
    if db_url:
        lines.append(f"db_url = {json.dumps(db_url)}")
    lines.append(keys_config.toml())
    if timing is not None:
        lines += ["", "[timing]", f"quantum = {pacing.quantum!r}", f"ratio = {pacing.ratio!r}"]
    (root / "zone.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return Zone(root, engine, keyring, zone_id, token), token


def connect(
    path: str | Path,
    token: str | None = None,
    *,
    db_url: str | None = None,
    master_key: str | None = None,
    host: bool = False,
) -> Zone:
    """Open an existing zone acting as the party whose token is given (or COLLABZONE_TOKEN).

    ``host=True`` opens it for the zone's host process (the server), which acts for no party:
    ``COLLABZONE_TOKEN`` is then ignored, so an operator's shell that still exports a party's
    token can start the server."""
    if host and token is not None:
        raise InvalidInputError("a host handle acts for no party: give no token")
    root = Path(path)
    config = root / "zone.toml"
    if not config.exists():
        raise NotFoundError(
            f"{root} is not a zone (no zone.toml): create one with `collabzone init`"
        )
    doc = tomllib.loads(config.read_text(encoding="utf-8"))
    zone_id = str(doc["zone_id"])
    engine = open_engine(_resolve_db(root, db_url))
    migrate(engine)
    keyring = open_keys(root, KeysConfig.parse(doc.get("keys")), master_key)
    if not host:
        token = token or os.environ.get("COLLABZONE_TOKEN")
    zone = Zone(root, engine, keyring, zone_id, token)
    zone._requests.recover()  # requests a crashed process left half-way end failed
    return zone


class Zone(KeyOps, DatasetOps, AgreementOps, AuditOps, PartyOps, JobOps, FanoutOps):
    """One collaboration, seen by one party. Every public method is one zone operation."""

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
            owners = set(repo.dataset_owners(conn, list(request.datasets)).values())
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
            mine = repo.owned_dataset_names(conn, me.name)
        try:
            wanted = RequestStatus(status) if status else None
        except ValueError:
            raise InvalidInputError(
                f"unknown status {status!r}; statuses: {', '.join(s.value for s in RequestStatus)}"
            ) from None
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
        if row is None:  # the request exists: its state, not its id, is the problem
            reasons = "; ".join(request.reasons) or "not released yet"
            raise ConflictError(
                f"request {request_id} is {request.status.value}, so it has no result: {reasons}"
            )
        me = self.me
        receipt = repo.receipt_from_row(row)
        if me.name not in row["released_to"] and me.name != request.requester:
            # owners and auditors read the receipt, never the payload addressed to others
            return Release(request_id=request_id, payload={}, receipt=receipt)
        return Release(
            request_id=request_id, payload=_part_of(row["payload"], me.name), receipt=receipt
        )

    def request_risk(self, request_id: str) -> dict[str, Any]:
        """What a request would disclose if released now, combined with everything released
        before (for the owners of the data it touches, and auditors; see assess.py)."""
        return self._requests.assess(self.me, request_id)

    def request_plan(self, request_id: str) -> dict[str, Any]:
        """What the zone planned for a request, for the parties that may read it: its
        ``outputs``, the technique's compiled form (``details``, e.g. the rewritten SQL) and,
        per dataset it charges, the requester's budget in the current period (``standing``:
        ``spent`` and the agreement's ``cap``, ``None`` where none is granted). The console
        shows it so an owner decides on what the analyst would receive, not on raw JSON."""
        request = self.request(request_id)  # the same read rights as the request itself
        with self._engine.connect() as conn:
            plan = dict(repo.get_request_row(conn, request_id)["plan"] or {})
            agreements = repo.list_agreements(conn)
            asker = repo.get_party(conn, request.requester)
            standing: dict[str, dict[str, Any]] = {}
            for dataset in request.cost:
                rules = next(
                    (
                        a.rules
                        for a in reversed(agreements)
                        if a.dataset == dataset and a.grants(asker) and a.is_active(_now())
                    ),
                    {},
                )
                period = budget_period_of(rules, _now())
                spent = total(repo.spent(conn, request.requester, dataset, period))
                standing[dataset] = {
                    "period": period,
                    "spent": spent.as_dict(),
                    "cap": {n: rules.get(f"{n}_budget") for n in ("epsilon", "delta", "rho")},
                }
        return {
            "outputs": plan.get("outputs", ""),
            "details": plan.get("details", {}),
            "standing": standing,
        }

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


def new_zone_master_key() -> str:
    """A random master key for a new zone (keep it outside the zone directory)."""
    return new_master_key()


def _part_of(stored: Mapping[str, Any], party: str) -> dict[str, Any]:
    """The payload ``party`` may read: the common fields plus its own result part, never
    another party's (see :attr:`collabzone.techniques.base.Outcome.parts`)."""
    common = {k: v for k, v in stored.items() if k != PARTS_KEY}
    parts = stored.get(PARTS_KEY) or {}
    return {**common, **dict(parts.get(party) or {})}
