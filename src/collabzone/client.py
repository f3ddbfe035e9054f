"""The remote transport: the same Zone API over HTTP, authenticated with OAuth2.

>>> import collabzone                                                   # doctest: +SKIP
>>> bank = collabzone.connect("https://zone.example", client_id="bank", client_secret="czt_...")
>>> bank.catalogue()                                                    # doctest: +SKIP

:class:`RemoteZone` has the methods of :class:`collabzone.zone.Zone` with the same
arguments and return types; the server's JSON errors are raised again as the same
:class:`~collabzone.errors.CollabzoneError` subclasses. Access tokens are fetched with the
client-credentials grant and renewed shortly before they expire. The HTTP transport is
injectable (``transport=``), so tests can drive it without a network.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

from collabzone import audit_checkpoint as checkpoints
from collabzone import errors
from collabzone.audit import Verification, canonical_json
from collabzone.audit_checkpoint import Checkpoint
from collabzone.audit_export import verify_export_text, write_export
from collabzone.client_wire import (
    RateLimitedError,
    ZoneUnavailableError,
    error_from_response,
    jsonable,
    spec_document,
    url_segment,
)
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

__all__ = ["RateLimitedError", "RemoteZone", "ZoneUnavailableError", "connect_remote"]

RENEW_MARGIN = 30.0


class RemoteZone:
    """A zone behind a collabzone server, seen by one party (same methods as Zone)."""

    def __init__(
        self,
        url: str,
        *,
        client_id: str | None = None,
        client_secret: str | None = None,
        access_token: str | None = None,
        scope: str | None = None,
        timeout: float = 60.0,
        verify: bool | str = True,
        # ``verify``: True (system CAs), False (never in production), or a CA bundle path
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self._client_id = client_id
        self._secret = client_secret
        self._scope = scope
        self._token = access_token
        self._expires = float("inf") if access_token else 0.0
        self._lock = threading.Lock()
        tls: bool | ssl.SSLContext = (
            ssl.create_default_context(cafile=verify) if isinstance(verify, str) else verify
        )
        self._http = httpx.Client(
            base_url=self.url, timeout=timeout, verify=tls, transport=transport
        )
        self._me: Party | None = None
        self._options: dict[str, Any] = {"timeout": timeout, "verify": verify}

    def __repr__(self) -> str:
        return f"<RemoteZone {self.url} as {self._client_id or 'token holder'}>"

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._http.close()

    def __enter__(self) -> RemoteZone:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- transport ------------------------------------------------------------------------

    def _access_token(self) -> str:
        with self._lock:
            if self._token and time.time() < self._expires - RENEW_MARGIN:
                return self._token
            if not self._secret:
                raise errors.AuthenticationError(
                    "the access token expired and no client_secret was given to renew it"
                )
            form = {"grant_type": "client_credentials", "client_secret": self._secret}
            if self._client_id:
                form["client_id"] = self._client_id
            if self._scope:
                form["scope"] = self._scope
            try:
                response = self._http.post("/oauth/token", data=form)
            except httpx.TransportError as exc:
                raise ZoneUnavailableError(
                    f"the zone server at {self.url} is unreachable ({type(exc).__name__})"
                ) from None
            if response.status_code != 200:
                raise error_from_response(response)
            doc = response.json()
            self._token = str(doc["access_token"])
            self._expires = time.time() + float(doc["expires_in"])
            return self._token

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self._access_token()}", **kwargs.pop("headers", {})}
        try:
            response = self._http.request(method, path, headers=headers, **kwargs)
        except httpx.TransportError as exc:
            raise ZoneUnavailableError(
                f"the zone server at {self.url} is unreachable ({type(exc).__name__})"
            ) from None
        if response.status_code >= 400:
            raise error_from_response(response)
        return response

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._send(method, path, **kwargs)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    def octets(self, method: str, path: str, content: bytes | None = None) -> bytes:
        """Call one of a technique's own routes with raw bytes (e.g. the HE inbox under
        ``/v1/he/``: contexts and ciphertexts); returns the response body."""
        headers = {"Content-Type": "application/octet-stream"} if content is not None else {}
        return self._send(method, path, content=content, headers=headers).content

    # -- identity and parties -------------------------------------------------------------

    @property
    def me(self) -> Party:
        """The party this handle acts for."""
        if self._me is None:
            doc = self._call("GET", "/v1/me")
            parties = {p.name: p for p in self.parties()}
            self._me = parties[doc["name"]]
        return self._me

    @property
    def zone_id(self) -> str:
        """The served zone's id."""
        response = self._http.get("/healthz")
        if response.status_code != 200:
            raise error_from_response(response)
        return str(response.json()["zone_id"])

    def as_party(self, token: str) -> RemoteZone:
        """The same server, acting as the party whose token (client secret) is given."""
        return RemoteZone(self.url, client_secret=token, **self._options)

    def add_party(self, name: str, roles: Iterable[Role | str]) -> tuple[Party, str]:
        doc = self._call(
            "POST", "/v1/parties", json={"name": name, "roles": [str(r) for r in roles]}
        )
        secret = doc.pop("client_secret")
        return Party.model_validate(doc), str(secret)

    def parties(self) -> list[Party]:
        return [Party.model_validate(p) for p in self._call("GET", "/v1/parties")]

    def disable_party(self, name: str, reason: str) -> Party:
        doc = self._call(
            "POST", f"/v1/parties/{url_segment(name)}/disable", json={"reason": reason}
        )
        return Party.model_validate(doc)

    def enable_party(self, name: str) -> Party:
        return Party.model_validate(self._call("POST", f"/v1/parties/{url_segment(name)}/enable"))

    def rotate_party_secret(self, name: str) -> tuple[Party, str]:
        doc = self._call("POST", f"/v1/parties/{url_segment(name)}/rotate-secret")
        secret = doc.pop("client_secret")
        return Party.model_validate(doc), str(secret)

    # -- datasets -------------------------------------------------------------------------

    def add_dataset(
        self,
        name: str,
        source: str | Path,
        spec: Mapping[str, Any] | str | Path,
        description: str | None = None,
        *,
        progress: Callable[[str, float, int], None] | None = None,
        notice: Callable[[str], None] | None = None,
    ) -> Dataset:
        """Upload a CSV or Parquet file (streamed) with its spec (a mapping or a spec file).

        The server reads the file: ``progress`` hears the upload's end only, and what it
        skipped (blank lines) is in the ``dataset.added`` audit event, not in ``notice``."""
        path = Path(source)
        form = {"name": name, "spec": json.dumps(spec_document(spec))}
        if description is not None:
            form["description"] = description
        try:
            handle = path.open("rb")
        except OSError as exc:
            raise errors.InvalidInputError(f"cannot read {path}: {exc.strerror}") from None
        with handle:
            doc = self._call("POST", "/v1/datasets", data=form, files={"file": (path.name, handle)})
        if progress is not None:
            progress("uploading", 1.0, 0)
        return Dataset.model_validate(doc)

    def register_dataset(
        self,
        name: str,
        spec: Mapping[str, Any] | str | Path,
        *,
        row_count: int,
        description: str | None = None,
    ) -> Dataset:
        body = {
            "name": name,
            "spec": spec_document(spec),
            "row_count": row_count,
            "description": description,
        }
        return Dataset.model_validate(self._call("POST", "/v1/datasets/registered", json=body))

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
        """Register a warehouse table (the connection URL goes to the server, sealed there)."""
        body = {
            "name": name,
            "spec": spec_document(spec),
            "postgres": postgres,
            "table": table,
            "spark": spark,
            "path": path,
            "description": description,
        }
        return Dataset.model_validate(self._call("POST", "/v1/datasets/remote", json=body))

    def datasets(self) -> list[Dataset]:
        return [Dataset.model_validate(d) for d in self._call("GET", "/v1/datasets")]

    def remove_dataset(self, name: str) -> None:
        self._call("DELETE", f"/v1/datasets/{url_segment(name)}")

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
        valid_from: Any = None,
        valid_until: Any = None,
    ) -> Agreement:
        body = {
            "dataset": dataset,
            "grantees": list(grantees),
            "technique": technique,
            "purposes": list(purposes),
            "rules": json.loads(canonical_json(dict(rules or {}))),
            "approval": str(approval),
            "valid_from": valid_from.isoformat() if valid_from is not None else None,
            "valid_until": valid_until.isoformat() if valid_until is not None else None,
        }
        return Agreement.model_validate(self._call("POST", "/v1/agreements", json=body))

    def agreements(self, dataset: str | None = None) -> list[Agreement]:
        params = {"dataset": dataset} if dataset else None
        return [
            Agreement.model_validate(a) for a in self._call("GET", "/v1/agreements", params=params)
        ]

    def agreement(self, agreement_id: str) -> Agreement:
        return Agreement.model_validate(
            self._call("GET", f"/v1/agreements/{url_segment(agreement_id)}")
        )

    def revoke_agreement(self, agreement_id: str, reason: str) -> Agreement:
        doc = self._call(
            "POST", f"/v1/agreements/{url_segment(agreement_id)}/revoke", json={"reason": reason}
        )
        return Agreement.model_validate(doc)

    # -- requests -------------------------------------------------------------------------

    def submit(
        self,
        technique: str,
        spec: Mapping[str, Any] | None = None,
        purpose: str = "",
        *,
        dry_run: bool = False,
    ) -> Request | dict[str, Any]:
        if dry_run:
            return self.price(technique, spec, purpose)
        body = {"technique": technique, "spec": jsonable(spec), "purpose": purpose}
        return Request.model_validate(self._call("POST", "/v1/requests", json=body))

    def price(
        self, technique: str, spec: Mapping[str, Any] | None = None, purpose: str = ""
    ) -> dict[str, Any]:
        body = {"technique": technique, "spec": jsonable(spec), "purpose": purpose}
        doc: dict[str, Any] = self._call("POST", "/v1/price", json=body)
        return doc

    def request(self, request_id: str) -> Request:
        return Request.model_validate(self._call("GET", f"/v1/requests/{url_segment(request_id)}"))

    def requests(self, status: RequestStatus | str | None = None) -> list[Request]:
        params = {"status": str(RequestStatus(status))} if status else None
        return [Request.model_validate(r) for r in self._call("GET", "/v1/requests", params=params)]

    def approve(self, request_id: str, reason: str) -> Request:
        doc = self._call(
            "POST", f"/v1/requests/{url_segment(request_id)}/approve", json={"reason": reason}
        )
        return Request.model_validate(doc)

    def deny(self, request_id: str, reason: str) -> Request:
        doc = self._call(
            "POST", f"/v1/requests/{url_segment(request_id)}/deny", json={"reason": reason}
        )
        return Request.model_validate(doc)

    def result(self, request_id: str) -> Release:
        return Release.model_validate(
            self._call("GET", f"/v1/requests/{url_segment(request_id)}/result")
        )

    def request_plan(self, request_id: str) -> dict[str, Any]:
        doc: dict[str, Any] = self._call("GET", f"/v1/requests/{url_segment(request_id)}/plan")
        return doc

    def request_risk(self, request_id: str) -> dict[str, Any]:
        doc: dict[str, Any] = self._call("GET", f"/v1/requests/{url_segment(request_id)}/risk")
        return doc

    def receipt(self, request_id: str) -> Receipt:
        return Receipt.model_validate(
            self._call("GET", f"/v1/requests/{url_segment(request_id)}/receipt")
        )

    def catalogue(self, mock_rows: int = 5) -> dict[str, Any]:
        doc: dict[str, Any] = self._call("GET", "/v1/catalogue", params={"mock_rows": mock_rows})
        return doc

    # -- node jobs ------------------------------------------------------------------------

    def jobs(self) -> list[Request]:
        return [Request.model_validate(r) for r in self._call("GET", "/v1/jobs")]

    def job_context(self, request_id: str) -> dict[str, Any]:
        """The stored plan and monitor history of one of this node's jobs."""
        doc: dict[str, Any] = self._call("GET", f"/v1/jobs/{url_segment(request_id)}/context")
        return doc

    def complete_job(
        self,
        request_id: str,
        payload: Mapping[str, Any],
        spent: Mapping[str, Mapping[str, float]] | None = None,
        **outcome: Any,
    ) -> Request:
        body = {
            "payload": json.loads(canonical_json(dict(payload))),
            "spent": {k: dict(v) for k, v in (spent or {}).items()},
            **outcome,
        }
        doc = self._call("POST", f"/v1/jobs/{url_segment(request_id)}/complete", json=body)
        return Request.model_validate(doc)

    # -- budget and audit -----------------------------------------------------------------

    def budget(self) -> list[dict[str, Any]]:
        doc: list[dict[str, Any]] = self._call("GET", "/v1/budget")
        return doc

    def verify_audit(self, against: Checkpoint | None = None) -> Verification:
        """The server's verification of its log (chain, head, ledger). With ``against``
        (a checkpoint kept earlier) the server checks that its log continues it, and so
        does this client, on the export it fetches: a server that lies about its own log
        is caught here too."""
        if against is None:
            doc = self._call("GET", "/v1/audit/verify")
        else:
            doc = self._call("POST", "/v1/audit/verify", json={"against": against.as_dict()})
        result = Verification(
            doc["ok"],
            doc["events"],
            doc.get("broken_at"),
            doc.get("problem"),
            tuple(doc.get("problems", ())),
            doc.get("anchor"),
        )
        if against is None:
            return result
        text = "".join(canonical_json(r) + "\n" for r in self.audit_export())
        local = verify_export_text(text, against)
        if local.ok:
            return result
        return result.with_problem(f"checked here, on this party's export: {local}")

    def audit_checkpoint(self) -> Checkpoint:
        """The zone's signed checkpoint of its audit log's head (signature checked here)."""
        return checkpoints.from_dict(self._call("GET", "/v1/audit/checkpoint"))

    def audit_events(self, subject: str | None = None) -> list[dict[str, Any]]:
        params = {"subject": subject} if subject is not None else None
        doc: list[dict[str, Any]] = self._call("GET", "/v1/audit", params=params)
        return doc

    def audit_export(self) -> list[dict[str, Any]]:
        doc: list[dict[str, Any]] = self._call("GET", "/v1/audit/export")
        return doc

    def export_audit(self, path: str | Path) -> int:
        """Write the verifiable export as JSON Lines; returns the number of events shown."""
        return write_export(path, self.audit_export())

    # -- the zone's keys (operator) --------------------------------------------------------

    def key_inventory(self) -> list[dict[str, Any]]:
        doc: list[dict[str, Any]] = self._call("GET", "/v1/keys")
        return doc

    def rotate_key(
        self,
        name: str,
        *,
        datasets: Sequence[str] = (),
        spec_zone: str | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> dict[str, Any]:
        """Rotate a zone key on the server (one call; ``progress`` hears only the end)."""
        body = {"datasets": list(datasets), "spec_zone": spec_zone}
        doc: dict[str, Any] = self._call("POST", f"/v1/keys/{url_segment(name)}/rotate", json=body)
        if progress is not None:
            count = int(doc.get("files", doc.get("datasets", 0)))
            progress(count, count)
        return doc

    def destroy_key(self, name: str, version: int) -> None:
        self._call("POST", f"/v1/keys/{url_segment(name)}/destroy", json={"version": version})

    # -- server-only ----------------------------------------------------------------------

    def notifications(self) -> dict[str, str]:
        """Where this party's notices go (set by the zone's operator) and the secret that
        signs its webhook deliveries (``secret``, hex)."""
        doc: dict[str, str] = self._call("GET", "/v1/notifications")
        return doc

    def revoke_token(self) -> None:
        """Revoke this handle's current access token (a new one is fetched on next call)."""
        token = self._access_token()
        self._call("POST", "/oauth/revoke", data={"token": token})
        with self._lock:
            self._token, self._expires = None, 0.0


def connect_remote(
    url: str,
    token: str | None = None,
    *,
    client_id: str | None = None,
    client_secret: str | None = None,
    **options: Any,
) -> RemoteZone:
    """Open a remote zone. Give ``client_id`` and ``client_secret`` (the party's token), or
    just ``token``: a party token (``czt_...``) is used as the client secret, anything else
    as a ready access token (not renewed)."""
    if client_secret is None and token is not None and token.startswith("czt_"):
        client_secret = token
        token = None
    if client_secret is None and token is None:
        raise errors.AuthenticationError(
            "give client_id and client_secret (the party token) to connect to a zone server"
        )
    return RemoteZone(
        url, client_id=client_id, client_secret=client_secret, access_token=token, **options
    )
