"""The demo's premises step: each party turns its raw file into an upload-ready one.

TEMPORARY until the linking package's prepare lands: keyed tokens of the normalised email.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collabzone.demo import DemoZone


def prepare_and_ingest(demo: DemoZone) -> None:
    from collabzone.demo import BANK_COLUMNS, PARTNER_COLUMNS

    key = b"demo-collaboration-key-shared-by-the-providers"
    for zone, raw, name, columns in (
        (demo.bank, demo.files.bank_raw, "bank_customers", BANK_COLUMNS),
        (demo.partner, demo.files.partner_raw, "partner_customers", PARTNER_COLUMNS),
    ):
        out = raw.with_name(raw.stem.replace("_raw", "_upload") + ".csv")
        keep = [str(c["name"]) for c in columns]
        with raw.open(encoding="utf-8") as src, out.open("w", newline="", encoding="utf-8") as dst:
            reader = csv.DictReader(src)
            writer = csv.writer(dst)
            writer.writerow(["email_token", *keep])
            for row in reader:
                token = hmac.new(
                    key, row["email"].strip().lower().encode(), hashlib.sha256
                ).hexdigest()
                writer.writerow([token, *(row[k] for k in keep)])
        spec = {
            "columns": [{"name": "email_token", "type": "string", "class": "join_key"}, *columns]
        }
        dataset = zone.add_dataset(name, out, spec)
        demo.console.print(
            f"  {zone.me.name}: {raw.name} -> {out.name} -> dataset {dataset.name} ({dataset.row_count} rows)"
        )
