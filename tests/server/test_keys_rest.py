"""Separate organisations use the server, where no party's credentials reach a key.

Every party (the operator too) calls every read route of the API and the key routes; no
response carries key material or a derived key (raw, hex, base64). Key routes are the
operator's; rotating ``zone-services`` over REST ends every session at once; the OPRF
re-key runs as a route.
"""

from __future__ import annotations

import base64
import struct
from pathlib import Path
from typing import Any

import httpx

from collabzone.crypto.oprf import oprf_purpose
from collabzone.store.data import DATA_KEY
from collabzone.techniques.linking import OprfServer, parse_spec, prepare
from collabzone.zone import connect
from tests.conftest import CUSTOMER_SPEC, write_customers
from tests.server.conftest import Handles

PARTIES = ["operator", "bank", "partner", "insurer", "auditor"]
OPRF_KEY = "oprf:bank-retail"


def _token(http: httpx.Client, party: str, secret: str) -> str:
    form = {"grant_type": "client_credentials", "client_id": party, "client_secret": secret}
    response = http.post("/oauth/token", data=form)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def _forms(material: bytes) -> set[str]:
    return {
        base64.b64encode(material).decode(),
        base64.urlsafe_b64encode(material).decode(),
        base64.urlsafe_b64encode(material).decode().rstrip("="),
        base64.b64encode(material).decode().rstrip("="),
        material.hex(),
    }


def oprf_upload(served: Handles, tmp_path: Path) -> None:
    """Two providers tokenise e-mails with the zone's OPRF key and upload the tokens."""
    host = connect(served.root)
    host._keys.create(OPRF_KEY)  # the server process sees the new key (keyring reload)
    server = OprfServer(host._keys, OPRF_KEY, host.zone_id)
    spec = parse_spec(
        {
            "collaboration": "bank-retail",
            "zone": host.zone_id,
            "mode": "oprf",
            "fields": {"email": {"column": "Email", "normaliser": "email"}},
            "match_keys": [{"name": "email", "fields": ["email"]}],
        }
    )
    for party, people in (("bank", range(0, 30)), ("partner", range(20, 50))):
        raw = tmp_path / f"{party}_raw.csv"
        raw.write_text("Email\n" + "".join(f"p{i}@example.com\n" for i in people))
        out = tmp_path / f"{party}_linked.csv"
        report = prepare(raw, spec, out, transport=server.evaluate)
        getattr(served, party).add_dataset(
            f"{party}_linked", out, {"columns": report.token_columns()}
        )


def _secrets(root: Path) -> dict[str, set[str]]:
    """Every key version's material and the keys derived from it, per (name, version)."""
    host = connect(root)  # the server's own view: the test holds the same master key
    keys, zone_id = host._keys, host.zone_id
    out: dict[str, set[str]] = {}
    for name in keys.names():
        for version in keys.versions(name):
            found = _forms(keys.get(name, version)[1])
            derived = [keys.derive(name, zone_id, version=version)]
            if name == "zone-services":
                purposes = ["jwt", "csrf", *(f"webhook:{p}" for p in PARTIES)]
                derived += [
                    keys.derive(name, f"{zone_id}/server/{p}", version=version) for p in purposes
                ]
            if name.startswith("oprf:"):
                derived += [
                    keys.derive(name, oprf_purpose(zone_id, m), 64, version)
                    for m in ("email", "phone", "name_dob_postcode")
                ]
            if name == DATA_KEY:
                for path in (root / "data").glob("*.parquet.enc"):
                    blob = path.read_bytes()
                    if struct.unpack(">I", blob[4:8])[0] == version:
                        derived.append(
                            keys.derive(name, f"file/{blob[8:24].hex()}", version=version)
                        )
            for material in derived:
                found |= _forms(material)
            out[f"{name}/v{version}"] = found
    return out


def test_no_party_obtains_key_material_or_derived_keys_over_rest(
    served: Handles, tmp_path: Path
) -> None:
    served.bank.add_dataset("customers", write_customers(tmp_path / "c.csv", 40), CUSTOMER_SPEC)
    oprf_upload(served, tmp_path)  # two OPRF-tokenised datasets
    said: list[str] = []
    for name in (DATA_KEY, "audit-head", "zone-techniques"):
        said.append(repr(served.operator.rotate_key(name)))
    rekeyed = served.operator.rotate_key(
        OPRF_KEY, datasets=["bank_linked", "partner_linked"], spec_zone=served.operator.zone_id
    )
    assert rekeyed["to_version"] == 2 and rekeyed["datasets"] == 2
    said.append(repr(rekeyed))
    http = httpx.Client(base_url=served.server.url if served.server else "", timeout=60)
    tokens = {p: _token(http, p, served.tokens[p]) for p in PARTIES}
    paths = [
        p
        for p, ops in http.get("/openapi.json").json()["paths"].items()
        if "get" in ops and "{" not in p and p != "/v1/notifications"  # checked below
    ]
    assert "/v1/keys" in paths and "/v1/audit" in paths and len(paths) >= 12
    own_webhook: dict[str, str] = {}
    for party in PARTIES:
        headers = {"Authorization": f"Bearer {tokens[party]}"}
        for path in paths:
            said.append(http.get(path, headers=headers).text)
        own_webhook[party] = http.get("/v1/notifications", headers=headers).text
        for action in ("rotate", "destroy"):
            body = {"version": 1} if action == "destroy" else {}
            response = http.post(f"/v1/keys/{DATA_KEY}/{action}", json=body, headers=headers)
            said.append(response.text)
            if party != "operator":
                assert response.status_code == 403, (party, response.text)
    keys_listing = http.get("/v1/keys", headers={"Authorization": f"Bearer {tokens['auditor']}"})
    assert keys_listing.status_code == 200
    assert {k["name"] for k in keys_listing.json()} >= {DATA_KEY, "audit-head", OPRF_KEY}
    refused = http.get("/v1/keys", headers={"Authorization": f"Bearer {tokens['bank']}"})
    assert refused.status_code == 403

    secrets = _secrets(served.root)
    assert len(secrets) >= 9  # five keys, four of them rotated
    text = "\n".join(said)
    assert '"key.rotated"' in text and '"key.version_seen"' in text  # the log was read
    for label, forms in secrets.items():
        for form in forms:
            assert form not in text, f"{label} leaked"
    # each party's webhook secret is its own derived key (by design) and nobody else's
    for party, answer in own_webhook.items():
        for other in PARTIES:
            if other != party:
                host = connect(served.root)
                theirs = host.derive_key(f"server/webhook:{other}")
                assert not _forms(theirs) & set(answer.split('"')), (party, other)
    http.close()


def test_rotating_zone_services_over_rest_ends_every_session(served: Handles) -> None:
    assert served.server is not None
    http = httpx.Client(base_url=served.server.url, timeout=60)
    bank = {"Authorization": f"Bearer {_token(http, 'bank', served.tokens['bank'])}"}
    operator = {"Authorization": f"Bearer {_token(http, 'operator', served.tokens['operator'])}"}
    assert http.get("/v1/me", headers=bank).status_code == 200
    response = http.post("/v1/keys/zone-services/rotate", json={}, headers=operator)
    assert response.status_code == 200, response.text
    summary: dict[str, Any] = response.json()
    assert summary["name"] == "zone-services" and summary["to_version"] == 2
    assert http.get("/v1/me", headers=bank).status_code == 401
    assert http.get("/v1/me", headers=operator).status_code == 401
    fresh = {"Authorization": f"Bearer {_token(http, 'bank', served.tokens['bank'])}"}
    assert http.get("/v1/me", headers=fresh).status_code == 200
    events = http.get("/v1/audit", headers=fresh).json()
    assert not [e for e in events if e["action"] == "key.rotated"]  # not the bank's business
    auditor = {"Authorization": f"Bearer {_token(http, 'auditor', served.tokens['auditor'])}"}
    rotated = [
        e for e in http.get("/v1/audit", headers=auditor).json() if e["action"] == "key.rotated"
    ]
    assert [e["subject"] for e in rotated] == ["key:zone-services"]
    http.close()
