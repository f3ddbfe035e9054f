"""The demo's premises step: each provider turns its raw customer file into an upload.

Runs at each party's premises, never in the zone: the linking package normalises and
keyed-hashes the identifiers under a collaboration key the two providers share (the zone
operator never holds it), drops the raw PII, and only the tokenised file is uploaded.
"""

from __future__ import annotations

import os

from rich.console import Console

from collabzone.demo_data import BANK_COLUMNS, PARTNER_COLUMNS, DemoFiles
from collabzone.keys import LocalKeyring, new_master_key
from collabzone.techniques.linking import parse_spec, prepare
from collabzone.zone import Zone

COLLABORATION = "bank-retail"
LINK_SPEC = {
    "collaboration": COLLABORATION,
    "zone": "demo",
    "fields": {
        "email": {"column": "email", "normaliser": "email"},
        "phone": {"column": "phone", "normaliser": "phone", "options": {"region": "GB"}},
        "first_name": {"column": "first_name", "normaliser": "name"},
        "last_name": {"column": "last_name", "normaliser": "name"},
        "dob": {"column": "birth_date", "normaliser": "dob"},
        "postcode": {"column": "postcode", "normaliser": "postcode", "options": {"country": "GB"}},
    },
    "match_keys": [
        {"name": "email", "fields": ["email"]},
        {"name": "phone", "fields": ["phone"]},
        {"name": "name_dob_postcode", "fields": ["first_name", "last_name", "dob", "postcode"]},
    ],
}


def prepare_and_ingest(bank: Zone, partner: Zone, files: DemoFiles, console: Console) -> None:
    """Prepare both raw files at the providers' premises and ingest the uploads."""
    premises = files.bank_raw.parent
    # the collaboration keyring the two providers share (its key never reaches the zone)
    shared_ring = LocalKeyring.create_new(
        premises / "collaboration_keyring.json",
        os.environ.get("COLLABZONE_DEMO_COLLAB_KEY", new_master_key()),
    )
    shared_ring.create(f"link:{COLLABORATION}")
    spec = parse_spec(LINK_SPEC)
    for zone, raw, name, columns in (
        (bank, files.bank_raw, "bank_customers", BANK_COLUMNS),
        (partner, files.partner_raw, "partner_customers", PARTNER_COLUMNS),
    ):
        out = raw.with_name(raw.stem.replace("_raw", "_upload") + ".csv")
        report = prepare(raw, spec, out, keys=shared_ring, report=out.with_suffix(".report.json"))
        invalid = {
            field: counts.invalid for field, counts in report.fields.items() if counts.invalid
        }
        dataset = zone.add_dataset(name, out, {"columns": [*report.token_columns(), *columns]})
        console.print(
            f"  {zone.me.name}: {raw.name} (names, emails, phones...) -> {out.name} "
            f"(tokens only) -> dataset {dataset.name}, {dataset.row_count} rows; "
            f"invalid values not hashed: {invalid or 'none'}"
        )
