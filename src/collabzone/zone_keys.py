"""Zone operations on the zone's own keys: list, rotate (with re-encryption), destroy.

The keys the zone holds and what rotating each one does:

* ``data-at-rest``: seals every dataset file. Rotation re-seals the files one by one under
  the new version (temp file + rename, so every file is always whole under the version its
  header names); killed midway, every file still opens, and rerunning continues.
* ``audit-head``: signs the audit chain head (HMAC). Rotation appends ``key.rotated``,
  which re-signs the head under the new version; verification accepts the head under any
  version still held, so destroying the old version ends it.
* ``zone-services``: derives the server's JWT, CSRF and webhook keys. Rotation ends every
  session (access tokens and console cookies no longer verify) and changes every webhook
  secret; restart other server processes of the zone.
* ``zone-techniques``: derives keys techniques ask for; new outputs use the new version.
* ``oprf:<collaboration>``: evaluates OPRF tokens. Rotation re-keys the OPRF token columns
  of the datasets named (tokens times ``k_new / k_old``: no PII, overlaps unchanged).

Each rotation writes ``key.rotation_started`` with a marker in ``zone_info`` (so a rerun
after a crash resumes the same rotation instead of starting another) and ends with
``key.rotated``; ``destroy`` writes ``key.destroyed``; an upload whose token columns
carry a provider key version the dataset had not shown before writes ``key.version_seen``.
No event carries key material: only names and version numbers.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pyarrow as pa
from sqlalchemy import Connection, delete, select, update

from collabzone import audit
from collabzone.audit_checkpoint import public_key_of
from collabzone.errors import ConflictError, InvalidInputError, NotFoundError
from collabzone.keys import KeyProvider
from collabzone.model import Column, ColumnClass, Role
from collabzone.remote_tables import is_remote
from collabzone.store import tables as t
from collabzone.store.data import DATA_KEY
from collabzone.zone_base import NODE_PREFIX, SERVICES_KEY, ZoneBase

AUDIT_KEY = "audit-head"
TECHNIQUES_KEY = "zone-techniques"
OPRF_PREFIX = "oprf:"
ZONE_KEYS: dict[str, str] = {
    DATA_KEY: "seals every dataset file; rotation re-encrypts each file",
    AUDIT_KEY: "signs the audit chain head; rotation re-signs it",
    SERVICES_KEY: "derives JWT, CSRF and webhook keys; rotation ends every session",
    TECHNIQUES_KEY: "derives techniques' keys; new outputs use the new version",
}
MARKER = "key-rotation:"
Progress = Callable[[int, int], None]
"""Called with (files done, files in all) while a rotation re-seals files."""


def _check_name(name: str) -> None:
    if name in ZONE_KEYS or (name.startswith(OPRF_PREFIX) and len(name) > len(OPRF_PREFIX)):
        return
    if name.startswith("link:"):
        raise InvalidInputError(
            f"{name!r} is a providers' key, held at their premises: rotate it there with "
            "`collabzone link rotate` and re-prepare the files"
        )
    raise NotFoundError(
        f"the zone holds no key {name!r}; its keys: {', '.join(ZONE_KEYS)}, oprf:<collaboration>"
    )


def _current(keys: KeyProvider, name: str) -> int:
    return keys.current(name)


def head_key_version(
    keys: KeyProvider, name: str, zone_id: str, head: tuple[int, str, str] | None
) -> int | None:
    """The ``audit-head`` version whose HMAC the chain head carries (None: none held)."""
    if head is None:
        return None
    seq, digest, mac = head
    for version in sorted(keys.versions(name), reverse=True):
        if audit.head_mac(keys.derive(name, zone_id, version=version), seq, digest) == mac:
            return version
    return None


def checkpoint_seed(keys: KeyProvider, zone_id: str, version: int) -> bytes:
    """The Ed25519 seed that signs audit checkpoints under ``audit-head`` version
    ``version`` (derived for a purpose of its own; rotated and destroyed with it)."""
    return keys.derive(AUDIT_KEY, f"{zone_id}/checkpoint", version=version)


def checkpoint_key_note(keys: KeyProvider, zone_id: str, version: int) -> dict[str, Any]:
    """What ``zone.created`` and a rotation's ``key.rotated`` record of the checkpoint key,
    so its checkpoints stay checkable from the chain after the version is destroyed."""
    return {
        "version": version,
        "public_key": public_key_of(checkpoint_seed(keys, zone_id, version)),
    }


def head_keys(keys: KeyProvider, zone_id: str) -> list[bytes]:
    """The head-signing key of every ``audit-head`` version still held, newest first."""
    return [
        keys.derive(AUDIT_KEY, zone_id, version=v)
        for v in sorted(keys.versions(AUDIT_KEY), reverse=True)
    ]


def note_token_versions(
    conn: Connection,
    mac_key: bytes,
    *,
    actor: str,
    dataset: str,
    version: int,
    table: pa.Table,
    columns: Sequence[Column],
) -> None:
    """Audit ``key.version_seen`` when an upload's token columns show a new key version.

    Providers' link keys never reach the zone, so the zone records what it can see: the
    version prefix (``v<n>:`` HMAC, ``o<n>:`` OPRF) of the tokens in ``join_key`` columns,
    compared with what earlier uploads of the dataset showed.
    """
    from collabzone.techniques.linking._rekey import token_versions

    seen = {
        c.name: sorted(token_versions(table.column(c.name)))
        for c in columns
        if c.column_class is ColumnClass.JOIN_KEY and c.name in table.column_names
    }
    seen = {name: found for name, found in seen.items() if found}
    if not seen:
        return
    earlier: dict[str, set[str]] = {}
    rows = conn.execute(
        select(t.audit_events.c.details).where(
            t.audit_events.c.action == "key.version_seen", t.audit_events.c.subject == dataset
        )
    )
    for row in rows:
        for name, found in row.details.get("key_versions", {}).items():
            earlier.setdefault(name, set()).update(found)
    new = {n: [v for v in found if v not in earlier.get(n, set())] for n, found in seen.items()}
    new = {n: found for n, found in new.items() if found}
    if new:
        audit.append(
            conn,
            mac_key,
            actor=actor,
            action="key.version_seen",
            subject=dataset,
            parties=[actor],
            details={"dataset_version": version, "key_versions": seen, "new": new},
        )


class KeyOps(ZoneBase):
    """The zone's keys, as the operator runs them (auditors may list them)."""

    def key_inventory(self) -> list[dict[str, Any]]:
        """Each zone key: current version, versions held, what it protects, pending rotation.

        Names and numbers only: no key material leaves through here.
        """
        self._require_role("listing keys", Role.OPERATOR, Role.AUDITOR)
        names = [*ZONE_KEYS, *(n for n in self._keys.names() if n.startswith(OPRF_PREFIX))]
        with self._engine.connect() as conn:
            pending = {
                r.key[len(MARKER) :]
                for r in conn.execute(select(t.zone_info.c.key))
                if r.key.startswith(MARKER)
            }
        out = []
        for name in names:
            versions = self._keys.versions(name)
            out.append(
                {
                    "name": name,
                    "current": _current(self._keys, name) if versions else None,
                    "versions": versions,
                    "protects": ZONE_KEYS.get(name, "evaluates OPRF tokens; rotation re-keys them"),
                    "rotation_pending": name in pending,
                }
            )
        return out

    # -- rotation -------------------------------------------------------------------------

    def rotate_key(
        self,
        name: str,
        *,
        datasets: Sequence[str] = (),
        spec_zone: str | None = None,
        progress: Progress | None = None,
    ) -> dict[str, Any]:
        """Rotate one zone key and re-encrypt (or re-key) what it protects (operator only).

        Resumable: after a crash, call it again with the same name and it finishes the
        rotation it had started (the same new version). ``datasets`` and ``spec_zone``
        (the link spec's ``zone`` the OPRF tokens were made for; default this zone's id)
        apply to ``oprf:<collaboration>`` keys only.

        >>> operator.rotate_key("data-at-rest")                         # doctest: +SKIP
        {'name': 'data-at-rest', 'from_version': 1, 'to_version': 2, 'files': 12, ...}
        """
        me = self._require_role("rotating a key", Role.OPERATOR)
        _check_name(name)
        oprf = name.startswith(OPRF_PREFIX)
        if not oprf and (datasets or spec_zone):
            raise InvalidInputError(
                "datasets and spec_zone apply to oprf:<collaboration> keys only"
            )
        plan = self._start_rotation(me.name, name, list(datasets), spec_zone)
        to_version = plan["to"]
        if name == DATA_KEY:
            done = self._reseal_all(to_version, progress)
        elif oprf:
            done = self._rekey_datasets(name, plan, to_version, progress)
        else:
            done = 0
        summary = {
            "name": name,
            "from_version": plan["from"],
            "to_version": to_version,
            "resumed": plan["resumed"],
            ("datasets" if oprf else "files"): done,
        }
        with self._engine.begin() as conn:
            conn.execute(delete(t.zone_info).where(t.zone_info.c.key == MARKER + name))
            audit.append(
                conn,
                self._mac_key(),
                actor=me.name,
                action="key.rotated",
                subject=f"key:{name}",
                parties=[me.name, *plan.get("owners", [])],
                details={
                    **{k: v for k, v in summary.items() if k != "name"},
                    **(
                        {
                            "checkpoint_key": checkpoint_key_note(
                                self._keys, self.zone_id, to_version
                            )
                        }
                        if name == AUDIT_KEY
                        else {}
                    ),
                },
            )
        return summary

    def _start_rotation(
        self, actor: str, name: str, datasets: list[str], spec_zone: str | None
    ) -> dict[str, Any]:
        """The rotation to run: the pending one (a rerun), or a new one recorded now."""
        with self._engine.connect() as conn:
            row = conn.execute(
                select(t.zone_info.c.value).where(t.zone_info.c.key == MARKER + name)
            ).first()
        if row is not None:
            plan: dict[str, Any] = json.loads(row.value)
            if datasets and sorted(datasets) != sorted(plan.get("datasets", [])):
                raise ConflictError(
                    f"a rotation of {name!r} is under way for datasets {plan['datasets']}: "
                    "rerun it with the same datasets (or none) to finish it first"
                )
            plan["resumed"] = True
        else:
            self._keys.create(name)
            plan = {"from": _current(self._keys, name), "datasets": [], "resumed": False}
            if name.startswith(OPRF_PREFIX):
                plan.update(self._oprf_plan(name, datasets, spec_zone))
            with self._engine.begin() as conn:
                conn.execute(t.zone_info.insert().values(key=MARKER + name, value=json.dumps(plan)))
                audit.append(
                    conn,
                    self._mac_key(),
                    actor=actor,
                    action="key.rotation_started",
                    subject=f"key:{name}",
                    parties=[actor, *plan.get("owners", [])],
                    details={"from_version": plan["from"], "datasets": plan["datasets"]},
                )
        # the keyring rotates once per rotation, even when a crash came right after it did
        current = _current(self._keys, name)
        plan["to"] = self._keys.rotate(name) if current == plan["from"] else current
        return plan

    def _oprf_plan(self, name: str, datasets: list[str], spec_zone: str | None) -> dict[str, Any]:
        if not datasets:
            raise InvalidInputError(
                f"name the datasets whose OPRF tokens {name!r} made (--dataset, repeatable): "
                "the zone cannot tell which collaboration a token column belongs to"
            )
        with self._engine.connect() as conn:
            rows = {
                r["name"]: r
                for r in conn.execute(
                    select(t.datasets).where(t.datasets.c.name.in_(datasets))
                ).mappings()
            }
        missing = sorted(set(datasets) - set(rows))
        if missing:
            raise NotFoundError(f"no dataset named {', '.join(map(repr, missing))}")
        held = sorted(
            d
            for d, r in rows.items()
            if r["data_file"].startswith(NODE_PREFIX) or is_remote(r["data_file"])
        )
        if held:
            raise InvalidInputError(
                f"dataset(s) {', '.join(held)} stay at their owners' premises: the zone cannot "
                "re-key them"
            )
        return {
            "datasets": sorted(set(datasets)),
            "spec_zone": spec_zone or self.zone_id,
            "owners": sorted({r["owner"] for r in rows.values()}),
        }

    def _reseal_all(self, to_version: int, progress: Progress | None) -> int:
        """Re-seal every dataset file not yet under ``to_version``; the number re-sealed."""
        with self._engine.connect() as conn:
            rows = list(
                conn.execute(
                    select(t.datasets.c.name, t.datasets.c.version, t.datasets.c.data_file)
                )
            )
        files = [r for r in rows if not r.data_file.startswith(NODE_PREFIX)]
        resealed = 0
        for done, row in enumerate(files, 1):
            if self._data.key_version_of(row.data_file) not in (None, to_version):
                try:
                    self._data.reseal(row.name, row.version, row.data_file)
                    resealed += 1
                except NotFoundError:  # replaced by a new upload meanwhile (sealed anew)
                    pass
            if progress is not None:
                progress(done, len(files))
        return resealed

    def _rekey_datasets(
        self, name: str, plan: Mapping[str, Any], to_version: int, progress: Progress | None
    ) -> int:
        """Move the OPRF tokens of the plan's datasets to ``to_version`` (idempotent)."""
        from collabzone.crypto.oprf import OprfServer
        from collabzone.techniques.linking._rekey import oprf_columns, rekey_table

        server = OprfServer(self._keys, name, plan["spec_zone"])
        names = list(plan["datasets"])
        for done, dataset in enumerate(names, 1):
            with self._engine.connect() as conn:
                row = (
                    conn.execute(select(t.datasets).where(t.datasets.c.name == dataset))
                    .mappings()
                    .first()
                )
            if row is None:  # removed since the rotation started
                continue
            join_keys = [
                c["name"] for c in row["columns"] if c.get("class") == ColumnClass.JOIN_KEY.value
            ]

            moved: list[tuple[pa.ChunkedArray, pa.ChunkedArray]] = []

            def transform(
                table: pa.Table,
                join_keys: list[str] = join_keys,
                moved: list[tuple[pa.ChunkedArray, pa.ChunkedArray]] = moved,
            ) -> pa.Table:
                columns = oprf_columns(table, join_keys)
                out = rekey_table(table, server, columns, to_version)
                moved.extend((table.column(c), out.column(c)) for c in columns)
                return out

            _, digest = self._data.reseal(dataset, row["version"], row["data_file"], transform)
            self._remap_audit_spaces(moved)
            with self._engine.begin() as conn:
                conn.execute(
                    update(t.datasets)
                    .where(t.datasets.c.name == dataset, t.datasets.c.data_file == row["data_file"])
                    .values(content_sha256=digest)
                )
            if progress is not None:
                progress(done, len(names))
        return len(names)

    def _remap_audit_spaces(self, moved: list[tuple[pa.ChunkedArray, pa.ChunkedArray]]) -> None:
        """Carry the disclosure audit across a re-key: the people and tokens it hashed
        under their old tokens are the same people under the new ones."""
        if not moved:
            return
        import duckdb
        import numpy as np

        from collabzone.disclosure import Space
        from collabzone.runtime import audit_member_salt

        salt = audit_member_salt(self._keys, self.zone_id)
        old_parts, new_parts = [], []
        con = duckdb.connect()
        for before, after in moved:
            con.register("_cz_pairs", pa.table({"old": before, "new": after}))
            pairs = con.sql(
                f"SELECT hash(old, {salt}) AS o, hash(new, {salt}) AS n FROM _cz_pairs "
                "WHERE old IS NOT NULL AND old <> new"
            ).fetchnumpy()
            con.unregister("_cz_pairs")
            old_parts.append(np.asarray(pairs["o"], dtype=np.uint64))
            new_parts.append(np.asarray(pairs["n"], dtype=np.uint64))
        con.close()
        old, new = np.concatenate(old_parts), np.concatenate(new_parts)
        with self._engine.begin() as conn:
            audit.lock_head(conn)
            for state in conn.execute(select(t.audit_state)).mappings().all():
                space = Space.from_bytes(bytes(state["state"])).remapped(old, new)
                conn.execute(
                    update(t.audit_state)
                    .where(t.audit_state.c.space == state["space"])
                    .values(version=state["version"] + 1, state=space.to_bytes())
                )

    # -- destruction ----------------------------------------------------------------------

    def destroy_key(self, name: str, version: int) -> None:
        """Erase one old version of a zone key for good (operator only).

        Refused while anything still needs it: a data file sealed under it, the audit head
        signed under it, or a rotation of that key under way.
        """
        me = self._require_role("destroying a key", Role.OPERATOR)
        _check_name(name)
        with self._engine.connect() as conn:
            pending = conn.execute(
                select(t.zone_info.c.key).where(t.zone_info.c.key == MARKER + name)
            ).first()
            head = audit.read_head(conn)
            files = [
                r.data_file
                for r in conn.execute(select(t.datasets.c.data_file))
                if not r.data_file.startswith(NODE_PREFIX)
            ]
        if pending is not None:
            raise ConflictError(
                f"a rotation of {name!r} is under way: finish it (collabzone keys rotate {name})"
            )
        if version not in self._keys.versions(name):
            raise NotFoundError(f"key {name!r} has no version {version}")
        if name == TECHNIQUES_KEY and version == min(self._keys.versions(name)):
            with self._engine.connect() as conn:
                audited = conn.execute(select(t.audit_state.c.space).limit(1)).first()
            if audited is not None:
                raise InvalidInputError(
                    f"version {version} of {name!r} salts the disclosure audit's memory of "
                    "everything released; destroying it would let old answers be combined "
                    "with new ones unseen"
                )
        if version == _current(self._keys, name):
            raise InvalidInputError(
                f"version {version} of {name!r} is current: rotate it first "
                f"(collabzone keys rotate {name})"
            )
        if name == DATA_KEY:
            using = sum(1 for f in files if self._data.key_version_of(f) == version)
            if using:
                raise ConflictError(
                    f"{using} data file(s) are still sealed under version {version} of {name!r}: "
                    f"rotate it first (collabzone keys rotate {name})"
                )
        if name == AUDIT_KEY and head_key_version(self._keys, name, self.zone_id, head) == version:
            raise ConflictError(
                f"the audit head is signed under version {version} of {name!r}: rotate it first"
            )
        with self._engine.begin() as conn:
            audit.append(
                conn,
                self._mac_key(),
                actor=me.name,
                action="key.destroyed",
                subject=f"key:{name}",
                parties=[me.name],
                details={"version": version},
            )
            # inside the transaction: if the provider refuses, no event is recorded
            self._keys.destroy(name, version)
