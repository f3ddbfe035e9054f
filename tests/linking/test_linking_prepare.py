"""prepare: raw file in, tokens out; raw PII and keys never in the output; bad input
gives a clear error and writes nothing."""

from __future__ import annotations

import base64
import json
import warnings
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from collabzone.errors import InvalidInputError, NotFoundError
from collabzone.keys import MASTER_KEY_ENV, LocalKeyring
from collabzone.techniques.linking import LinkSpec, OprfServer, _prepare, link_key, prepare

with warnings.catch_warnings():
    # typer 0.20 touches a click attribute that click deprecates; not ours to fix
    warnings.simplefilter("ignore", DeprecationWarning)
    from typer.testing import CliRunner

    from collabzone.techniques.linking.cli import app

HEADER = "CustomerId,Email,Mobile,FullName,DOB,PostCode,Address,Region,Balance\n"
ROWS = [
    "1,Jane.Doe@Example.com,07911 123456,Jane Doe,12/03/1980,SW1A 1AA,1 Mall,London,100",
    "2,j.o.h.n+promo@gmail.com,+44 20 7946 0958,John Smith,1975-07-01,M1 1AE,2 Road,North,250",
    "3,not-an-email,12,Zoë Ünal,31/02/1990,XYZ,3 Lane,London,50",
    "4,,,,,,4 Way,South,75",
]


def write_raw(path: Path, rows: list[str] = ROWS, header: str = HEADER) -> Path:
    path.write_text(header + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def listing(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_prepare_writes_tokens_and_drops_pii(
    tmp_path: Path, spec: LinkSpec, keyring: LocalKeyring
) -> None:
    raw = write_raw(tmp_path / "customers.csv")
    out, report_path = tmp_path / "upload.parquet", tmp_path / "report.json"
    report = prepare(raw, spec, out, keys=keyring, report=report_path)
    table = pq.read_table(out)
    assert table.column_names == [
        "CustomerId",
        "Region",
        "Balance",
        "link_email",
        "link_phone",
        "link_name_dob_postcode",
    ]
    text = out.read_bytes() + report_path.read_bytes()
    for pii in (b"Jane", b"jane", b"07911", b"7911123456", b"SW1A", b"1 Mall", b"1980"):
        assert pii not in text
    emails = table.column("link_email").to_pylist()
    assert emails[0] is not None and emails[0].startswith("v1:")
    assert emails[2] is None and emails[3] is None  # invalid and missing: no token
    assert table.column("link_name_dob_postcode").to_pylist()[2] is None  # 31/02 is impossible
    assert report.fields["email"].valid == 2
    assert report.fields["email"].invalid == 1 and report.fields["email"].missing == 1
    assert report.fields["dob"].invalid == 1
    assert report.fields["postcode"].invalid == 1
    assert report.match_keys["email"]["key_versions"] == ["v1"]
    assert report.output_columns["link_email"] == "join_key"
    saved = json.loads(report_path.read_text())
    assert saved["rows"] == 4 and saved["fields"]["phone"]["invalid"] == 1
    # keys never appear in what prepare writes
    material = link_key(keyring, spec.key_name, spec.zone, "email").material
    _, root = keyring.get(spec.key_name)
    for secret in (material, root):
        for form in (
            secret,
            secret.hex().encode(),
            base64.b64encode(secret),
            base64.urlsafe_b64encode(secret),
        ):
            assert form not in text
    assert listing(tmp_path) == ["customers.csv", "keys", "report.json", "upload.parquet"]


def test_equal_people_at_two_providers_get_equal_tokens(
    tmp_path: Path, spec: LinkSpec, keyring: LocalKeyring
) -> None:
    bank = write_raw(tmp_path / "bank.csv")
    partner = write_raw(
        tmp_path / "partner.csv",
        ["9,JANE.DOE@example.COM ,+447911123456,JANE  DOE,1980-03-12,sw1a1aa,x,London,1"],
    )
    prepare(bank, spec, tmp_path / "b.csv", keys=keyring)
    prepare(partner, spec, tmp_path / "p.csv", keys=keyring)
    b, p = pacsv.read_csv(tmp_path / "b.csv"), pacsv.read_csv(tmp_path / "p.csv")
    for column in ("link_email", "link_phone", "link_name_dob_postcode"):
        assert p.column(column)[0].as_py() == b.column(column)[0].as_py()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (HEADER.encode(), "no data rows"),
        (HEADER.replace("Mobile", "Phone").encode() + ROWS[0].encode(), "lacks"),
        (HEADER.encode() + b"1,caf\xe9@example.com,x,y,z,w,v,u,1\n", "UTF-8"),
        (
            (HEADER + "1,nope,12,R2D2,x,y,a,b,1\n2,nah,34,C3PO,z,w,a,b,2\n").encode(),
            "no valid value",
        ),
        (HEADER.replace("Region", "Email").encode() + ROWS[0].encode(), "duplicate"),
    ],
    ids=["empty", "header-only", "unknown-column", "mixed-encoding", "all-invalid", "dup-col"],
)
def test_bad_input_gives_clear_error_and_writes_nothing(
    tmp_path: Path, spec: LinkSpec, keyring: LocalKeyring, content: bytes, message: str
) -> None:
    raw = tmp_path / "raw.csv"
    raw.write_bytes(content)
    out = tmp_path / "out" / "upload.csv"
    before = listing(tmp_path)
    with pytest.raises(InvalidInputError, match=message) as caught:
        prepare(raw, spec, out, keys=keyring, report=tmp_path / "r.json")
    assert "caf" not in caught.value.message and "R2D2" not in caught.value.message
    assert listing(tmp_path) == before
    assert not out.exists()


def test_mixed_encoding_late_in_a_big_file_is_caught(
    tmp_path: Path, spec: LinkSpec, keyring: LocalKeyring
) -> None:
    good = [
        f"{i},u{i}@example.com,07911 123456,Ann Lee,1980-01-01,M1 1AE,a,b,1" for i in range(5000)
    ]
    raw = tmp_path / "raw.csv"
    raw.write_bytes(
        (HEADER + "\n".join(good) + "\n").encode() + b"9,x@y.com,1,M\xfcller,1,1,a,b,1\n"
    )
    with pytest.raises(InvalidInputError, match="UTF-8"):
        prepare(raw, spec, tmp_path / "o.csv", keys=keyring)
    assert not (tmp_path / "o.csv").exists()


def test_oprf_mode_prepare(tmp_path: Path, spec: LinkSpec, keyring: LocalKeyring) -> None:
    keyring.create("oprf:bank-retail")
    server = OprfServer(keyring, "oprf:bank-retail", "demo")
    oprf_spec = spec.model_copy(update={"mode": "oprf"})
    raw = write_raw(tmp_path / "c.csv")
    report = prepare(raw, oprf_spec, tmp_path / "o.csv", transport=server.evaluate)
    convert = pacsv.ConvertOptions(strings_can_be_null=True)
    tokens = pacsv.read_csv(tmp_path / "o.csv", convert_options=convert).column("link_email")
    tokens = tokens.to_pylist()
    assert tokens[0].startswith("o1:") and tokens[2] is None
    assert report.match_keys["email"]["key_versions"] == ["o1"]
    with pytest.raises(InvalidInputError, match="transport"):
        prepare(raw, oprf_spec, tmp_path / "x.csv")


def test_cli_keygen_prepare_rotate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MASTER_KEY_ENV, "a passphrase for the test keyring")
    runner = CliRunner()
    ring = tmp_path / "ring.json"
    spec_path = tmp_path / "link.json"
    from linking_support import SPEC_DOC

    spec_path.write_text(json.dumps(SPEC_DOC))
    raw = write_raw(tmp_path / "c.csv")
    result = runner.invoke(app, ["keygen", "bank-retail", "--keyring", str(ring)])
    assert result.exit_code == 0, result.output
    out = tmp_path / "u.csv"
    args = [
        "prepare",
        str(raw),
        "--spec",
        str(spec_path),
        "--out",
        str(out),
        "--keyring",
        str(ring),
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["rows"] == 4 and summary["invalid"]["email"] == 1
    assert runner.invoke(app, ["rotate", "bank-retail", "--keyring", str(ring)]).exit_code == 0
    bad = runner.invoke(app, ["prepare", str(tmp_path / "missing.csv"), *args[2:]])
    assert bad.exit_code == 2 and "does not exist" in bad.output
    current = runner.invoke(
        app, ["destroy", "bank-retail", "--version", "2", "--keyring", str(ring)]
    )
    assert current.exit_code == 2 and "rotate before" in current.output


def test_keys_never_reach_logs_or_errors(
    tmp_path: Path, spec: LinkSpec, keyring: LocalKeyring, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    caplog.set_level(logging.DEBUG)
    raw = write_raw(tmp_path / "c.csv")
    prepare(raw, spec, tmp_path / "o.csv", keys=keyring)
    with pytest.raises(NotFoundError) as caught:
        prepare(raw, spec, tmp_path / "o2.csv", keys=keyring, key_version=9)
    _, root = keyring.get(spec.key_name)
    derived = link_key(keyring, spec.key_name, spec.zone, "email").material
    seen = caplog.text + str(caught.value) + repr(keyring)
    for secret in (root, derived):
        for form in (
            secret.hex(),
            base64.b64encode(secret).decode(),
            base64.urlsafe_b64encode(secret).decode(),
        ):
            assert form not in seen


def test_prepare_never_overwrites_the_raw_file(
    tmp_path: Path, spec: LinkSpec, keyring: LocalKeyring
) -> None:
    raw = write_raw(tmp_path / "c.csv")
    before = raw.read_bytes()
    for out, report in ((raw, None), (tmp_path / "o.csv", raw)):
        with pytest.raises(InvalidInputError, match="differ from the raw file"):
            prepare(raw, spec, out, keys=keyring, report=report)
    assert raw.read_bytes() == before


def test_prepare_streams_small_batches_with_the_same_result(
    tmp_path: Path, spec: LinkSpec, keyring: LocalKeyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Block by block (many record batches) gives the file and the counts of one batch;
    a field valid only in a late batch still counts as valid."""
    rows = [
        f"{i},u{i}@example.com,07911 123456,Ann Lee,1980-01-01,M1 1AE,a,b,{i}" for i in range(800)
    ]
    rows[0] = "0,,,,,,a,b,0"
    raw = write_raw(tmp_path / "raw.csv", rows + ROWS[:3])
    whole = prepare(raw, spec, tmp_path / "whole.parquet", keys=keyring)
    monkeypatch.setattr(_prepare, "BLOCK_BYTES", 4096)
    monkeypatch.setattr(_prepare, "BATCH_ROWS", 50)
    written: list[int] = []
    original = _prepare._Writer.write

    def spy(self: _prepare._Writer, table: pa.Table) -> None:
        written.append(table.num_rows)
        original(self, table)

    monkeypatch.setattr(_prepare._Writer, "write", spy)
    streamed = prepare(raw, spec, tmp_path / "streamed.parquet", keys=keyring)
    assert len(written) > 8 and sum(written) == 803
    assert streamed == whole
    assert streamed.fields["email"].valid == 801 and streamed.fields["email"].missing == 1
    assert pq.read_table(tmp_path / "streamed.parquet").equals(
        pq.read_table(tmp_path / "whole.parquet")
    )
