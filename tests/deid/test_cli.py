"""``collabzone deid run CONFIG`` at the provider, with no zone."""

from __future__ import annotations

import json
import warnings

import pyarrow.csv as pacsv

from .conftest import ADULT

# typer 0.20 imports a name click 8.5 deprecated; pytest turns that warning into an error.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from typer.testing import CliRunner

    from collabzone.techniques.deid.cli import app


def test_run_writes_the_file_and_the_report(tmp_path) -> None:  # type: ignore[no-untyped-def]
    rows = (ADULT / "adult.csv").read_text(encoding="utf-8").splitlines()[:801]
    (tmp_path / "in.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    config = tmp_path / "job.yaml"
    config.write_text(
        f"""
input: in.csv
output: out/released.csv
report: out/report.json
delimiter: ";"
quasi_identifiers:
  age: {{file: {ADULT / "adult_hierarchy_age.csv"}}}
  sex: {{file: {ADULT / "adult_hierarchy_sex.csv"}}}
  race: {{flat: true}}
sensitive: [occupation]
keep: [salary-class]
undeclared: drop
privacy: {{k: 10, l: 3}}
suppression_limit: 0.02
prepare:
  scrub: [native-country]
""",
        encoding="utf-8",
    )
    result = CliRunner().invoke(app, ["run", str(config)])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    released = pacsv.read_csv(
        tmp_path / "out" / "released.csv", parse_options=pacsv.ParseOptions(delimiter=";")
    )
    assert "native-country" not in released.column_names
    # every released column is declared; the undeclared ones were dropped, not released
    assert set(released.column_names) == {"age", "sex", "race", "occupation", "salary-class"}
    assert report["columns"]["dropped"] == ["marital-status", "education", "workclass"]
    assert released.num_rows == 800 - report["suppressed_rows"]
    assert list(report["transformation"]) == ["age", "sex", "race"]
    assert report["min_class_size"] >= 10 and "non_uniform_entropy" in report


def test_run_reports_a_bad_config_with_exit_code_2(tmp_path) -> None:  # type: ignore[no-untyped-def]
    config = tmp_path / "job.toml"
    config.write_text('input = "x.csv"\nquasi_identifiers = {}\n', encoding="utf-8")
    result = CliRunner().invoke(app, ["run", str(config)])
    assert result.exit_code == 2
    assert "quasi-identifier" in result.output
