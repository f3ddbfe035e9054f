"""The demo's premises step with the real prepare: the bank's and the partner's files,
written differently, link on their shared customers."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest
from linking_support import FakeContext

from collabzone.demo_prepare import LINK_SPEC
from collabzone.keys import LocalKeyring
from collabzone.model import ColumnClass
from collabzone.techniques.base import Rules
from collabzone.techniques.linking import Overlap, parse_spec, prepare

DEMO_SPEC = LINK_SPEC  # the spec `collabzone demo` itself uses


def test_demo_files_link_on_their_shared_customers(tmp_path: Path, keyring: LocalKeyring) -> None:
    demo_data = pytest.importorskip("collabzone.demo_data")
    files = demo_data.generate(tmp_path, rows=400)
    spec = parse_spec(DEMO_SPEC)
    tables, reports = [], []
    for raw in (files.bank_raw, files.partner_raw):
        out = tmp_path / f"{raw.stem}.parquet"
        report = prepare(raw, spec, out, keys=keyring)
        assert report.fields["email"].invalid == 0
        assert {c["name"] for c in report.token_columns()} <= set(pq.read_table(out).column_names)
        tables.append(pq.read_table(out))
        reports.append(report)
    bank, partner = tables
    shared = {}
    for key in ("link_email", "link_phone", "link_name_dob_postcode"):
        shared[key] = set(bank.column(key).drop_null().to_pylist()) & set(
            partner.column(key).drop_null().to_pylist()
        )
    assert len(shared["link_email"]) == len(shared["link_name_dob_postcode"]) == files.overlap
    # some generated phone numbers are not valid numbers: no token, so fewer links
    invalid_phones = reports[1].fields["phone"].invalid
    assert files.overlap - invalid_phones <= len(shared["link_phone"]) <= files.overlap
    # the zone's overlap technique over the uploaded tokens finds every shared customer
    classes = {c: ColumnClass.JOIN_KEY for c in shared} | {"region": ColumnClass.DIMENSION}
    ctx = FakeContext({"bank": ("bank", bank, classes), "partner": ("partner", partner, classes)})
    technique = Overlap()
    plan = technique.plan({"datasets": ["bank", "partner"], "by": "region"}, ctx)
    rules = Rules(by_dataset={}, merged={"min_group_size": 10, "allowed_dimensions": ["region"]})
    released = technique.release(plan, technique.run(plan, ctx), rules)
    assert released.payload["overlap"] == files.overlap
    assert "by_match_key" not in released.payload  # both sides are protected here
    for table in tables:
        assert not {"email", "phone", "first_name", "last_name", "birth_date", "postcode"} & set(
            table.column_names
        )
