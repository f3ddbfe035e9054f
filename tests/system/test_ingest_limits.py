"""Issue 12: ingest limits come first, nothing is dropped silently, headerless files work.

Each case was reproduced on the landed code: a 31 MB line vanished (exit 0, "10 rows"), a
100 MB header was an internal error (exit 70), 1e5 columns took minutes, blank lines were
skipped without a word, UCI's headerless ``adult.data`` could not be read at all.
"""

from __future__ import annotations

import io
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from rich.console import Console

from collabzone.errors import InvalidInputError
from collabzone.ingest import parse_spec, read_csv
from tests.conftest import SHARED_DATA, Parties
from tests.system.test_ingest_bad_input import snapshot

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from collabzone import cli, cli_support

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:typer.*")

SPEC = {
    "columns": [
        {"name": "token", "type": "string", "class": "join_key"},
        {"name": "note", "type": "string", "class": "other"},
    ]
}
ADULT = SHARED_DATA / "uci_adult_full" / "adult.data"
ADULT_SPEC = """\
description: UCI Adult (adult.data has no header line; fields are separated by ", ")
strip_spaces: true
columns:
  - {name: age, type: integer, class: quasi_identifier}
  - {name: workclass, type: string, class: dimension}
  - {name: fnlwgt, type: integer, class: other}
  - {name: education, type: string, class: quasi_identifier}
  - {name: education_num, type: integer, class: other}
  - {name: marital_status, type: string, class: quasi_identifier}
  - {name: occupation, type: string, class: dimension}
  - {name: relationship, type: string, class: other}
  - {name: race, type: string, class: quasi_identifier}
  - {name: sex, type: string, class: quasi_identifier, domain: [Female, Male]}
  - {name: capital_gain, type: integer, class: measure}
  - {name: capital_loss, type: integer, class: measure}
  - {name: hours_per_week, type: integer, class: measure}
  - {name: native_country, type: string, class: quasi_identifier}
  - {name: income, type: string, class: label, domain: ["<=50K", ">50K"]}
"""


def _cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., tuple[int, str, str]]:
    monkeypatch.setattr(cli.console, "width", 250)
    monkeypatch.setattr(cli.err_console, "width", 250)

    def run(*args: str) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["collabzone", *args])
        capsys.readouterr()
        try:
            cli.main()
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


def test_a_31_mb_line_is_refused_by_its_number_not_dropped(
    sqlite_zone: Parties, tmp_path: Path
) -> None:
    source = tmp_path / "long.csv"
    with source.open("w", encoding="utf-8") as handle:
        handle.write("token,note\n")
        for i in range(5):
            handle.write(f"t{i},short\n")
        handle.write("t5," + "x" * (31 << 20) + "\n")  # line 7
        for i in range(6, 11):
            handle.write(f"t{i},short\n")
    before = snapshot(sqlite_zone)
    with pytest.raises(InvalidInputError) as caught:
        sqlite_zone.bank.add_dataset("long", source, SPEC)
    assert caught.value.message.startswith("long.csv, line 7: line is too long")
    assert snapshot(sqlite_zone) == before


def test_a_100_mb_header_is_a_clean_error(
    sqlite_zone: Parties,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    source = tmp_path / "header.csv"
    with source.open("w", encoding="utf-8") as handle:
        handle.write("token,note" + "x" * (100 << 20) + "\nt1,a\n")
    code, out, err = _cli(monkeypatch, capsys)(
        "--zone", str(sqlite_zone.root), "--token", sqlite_zone.tokens["bank"],
        "dataset", "add", "wide", str(source), "-c", "token:string:join_key",
        "-c", "note:string:other",
    )  # fmt: skip
    assert code == 2 and out == "", err
    assert err.strip().startswith("error: header.csv, line 1: line is too long"), err
    assert "internal error" not in err


@pytest.mark.timeout(60)
def test_a_hundred_thousand_columns_are_checked_in_linear_time(tmp_path: Path) -> None:
    names = [f"c{i}" for i in range(100_000)]
    source = tmp_path / "wide.csv"
    source.write_text(",".join(names) + "\n" + ",".join("1" for _ in names) + "\n", "utf-8")
    default = parse_spec({"columns": [{"name": n, "type": "integer", "class": "measure"}
                                      for n in names]})  # fmt: skip
    with pytest.raises(
        InvalidInputError, match=r"line 1: has 100000 columns, over the limit of 500"
    ):
        read_csv(source, default)  # the limit is checked before any per-column work

    raised = parse_spec(
        {
            "columns": [{"name": n, "type": "integer", "class": "measure"} for n in names[1:]],
            "limits": {"max_columns": 200_000},
        }
    )
    with pytest.raises(InvalidInputError, match="'c0' are not declared"):
        read_csv(source, raised)  # matching 1e5 names against 1e5 declared ones is linear


def test_blank_lines_are_reported_with_their_numbers(
    sqlite_zone: Parties,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    source = tmp_path / "gaps.csv"
    source.write_text("token,note\nt1,a\n\nt2,b\n\nt3,c\n\n", encoding="utf-8")
    code, out, err = _cli(monkeypatch, capsys)(
        "--zone", str(sqlite_zone.root), "--token", sqlite_zone.tokens["bank"],
        "dataset", "add", "gaps", str(source), "-c", "token:string:join_key",
        "-c", "note:string:other",
    )  # fmt: skip
    assert code == 0, err
    assert "gaps v1: 3 rows, 2 columns" in out
    assert "gaps.csv: skipped 3 blank lines (lines 3, 5, 7)" in err
    [event] = [e for e in sqlite_zone.operator.audit_events() if e["action"] == "dataset.added"]
    assert event["details"]["notices"] == ["gaps.csv: skipped 3 blank lines (lines 3, 5, 7)"]


def test_adult_data_ingests_without_a_header_in_the_specs_order(
    sqlite_zone: Parties,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if not ADULT.exists():
        pytest.skip(f"{ADULT} is absent")
    spec = tmp_path / "adult.yaml"
    spec.write_text(ADULT_SPEC, encoding="utf-8")
    code, out, err = _cli(monkeypatch, capsys)(
        "--zone", str(sqlite_zone.root), "--token", sqlite_zone.tokens["bank"],
        "dataset", "add", "adult", str(ADULT), "--spec", str(spec), "--no-header",
    )  # fmt: skip
    assert code == 0, err
    assert "adult v1: 32561 rows, 15 columns" in out
    assert "adult.data: skipped 1 blank line (line 32562)" in err
    [adult] = [d for d in sqlite_zone.bank.datasets() if d.name == "adult"]
    assert [c.name for c in adult.columns][:3] == ["age", "workclass", "fnlwgt"]

    table = read_csv(ADULT, parse_spec({**yaml.safe_load(ADULT_SPEC), "header": False}))
    assert table.slice(0, 1).to_pylist()[0] | {"fnlwgt": 0} == {
        "age": 39, "workclass": "State-gov", "fnlwgt": 0, "education": "Bachelors",
        "education_num": 13, "marital_status": "Never-married", "occupation": "Adm-clerical",
        "relationship": "Not-in-family", "race": "White", "sex": "Male", "capital_gain": 2174,
        "capital_loss": 0, "hours_per_week": 40, "native_country": "United-States",
        "income": "<=50K",
    }  # fmt: skip

    # without --no-header the first record is taken for a header and refused by name
    code, _, err = _cli(monkeypatch, capsys)(
        "--zone", str(sqlite_zone.root), "--token", sqlite_zone.tokens["bank"],
        "dataset", "add", "adult2", str(ADULT), "--spec", str(spec),
    )  # fmt: skip
    assert code == 2 and "line 1" in err and "not declared" in err


def test_big_files_show_percent_rows_per_second_and_time_left(
    sqlite_zone: Parties, tmp_path: Path
) -> None:
    source = tmp_path / "big.csv"
    rows = 400_000
    with source.open("w", encoding="utf-8") as handle:
        handle.write("token,note\n")
        handle.writelines(f"t{i},note number {i}\n" for i in range(rows))
    size = source.stat().st_size
    assert size > cli_support.PROGRESS_FROM_BYTES
    heard: list[tuple[str, float, int]] = []
    screen = io.StringIO()
    terminal = Console(file=screen, force_terminal=True, width=120)
    with cli_support.ingest_progress(terminal, size, source.name) as progress:
        assert progress is not None

        def both(step: str, fraction: float, rows: int) -> None:
            heard.append((step, fraction, rows))
            progress(step, fraction, rows)

        dataset = sqlite_zone.bank.add_dataset("big", source, SPEC, progress=both)
    assert dataset.row_count == rows
    scanned = [h for h in heard if h[0] == "scanning"]
    assert scanned[-1] == ("scanning", 1.0, rows + 1) and scanned == sorted(scanned)
    assert heard[-1] == ("parsing", 1.0, rows)  # every physical line but the header
    drawn = screen.getvalue()
    assert "%" in drawn and "rows/s" in drawn, drawn
    with cli_support.ingest_progress(terminal, 10, "small.csv") as none:
        assert none is None  # small files: a spinner, no bar
