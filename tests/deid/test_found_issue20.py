"""Issue 20, section 3: each finding reproduced as an attack, then checked fixed.

Every released column must be a declared quasi-identifier, sensitive attribute or
non-identifying (``keep``) column, and the reported k must be the k an attacker gets over
the columns actually released (recomputed independently with pycanon).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from collabzone.errors import InvalidInputError
from collabzone.model import ColumnClass
from collabzone.techniques.deid import Mediate, mediate, parse_config

from .conftest import ADULT, FakeContext, make_agreement, make_dataset

anonymity = pytest.importorskip("pycanon.anonymity")

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from typer.testing import CliRunner

    from collabzone.techniques.deid.cli import app


def _life_stage(age: int) -> str:
    return "young" if age < 30 else "adult" if age < 65 else "senior"


def _write_job(tmp: Path, *, keep_key: bool) -> Path:
    """An extract of Adult (sex, race, age, occupation) and a reference table keyed on
    age giving ``age_band`` and ``life_stage``, as in the finding."""
    adult = pacsv.read_csv(ADULT / "adult.csv", parse_options=pacsv.ParseOptions(delimiter=";"))
    extract = adult.slice(0, 3000).select(["sex", "race", "age", "occupation"])
    pacsv.write_csv(extract, tmp / "extract.csv")
    ages = sorted(set(adult.column("age").to_pylist()))
    reference = pa.table(
        {
            "age": ages,
            "age_band": [f"{a // 10 * 10}s" for a in ages],
            "life_stage": [_life_stage(a) for a in ages],
        }
    )
    pacsv.write_csv(reference, tmp / "life.csv")
    job = tmp / "job.yaml"
    job.write_text(
        f"""
input: extract.csv
output: out/released.csv
report: out/report.json
quasi_identifiers:
  sex: {{file: {ADULT / "adult_hierarchy_sex.csv"}}}
  race: {{file: {ADULT / "adult_hierarchy_race.csv"}}}
sensitive: [occupation]
privacy: {{k: 10}}
prepare:
  enrich:
    - {{column: age, reference: life.csv, columns: [age_band, life_stage], keep_key: {str(keep_key).lower()}}}
""",
        encoding="utf-8",
    )
    return job


def _run_cli(job: Path) -> tuple[pa.Table, dict[str, object]]:
    result = CliRunner().invoke(app, ["run", str(job)])
    assert result.exit_code == 0, result.output
    released = pacsv.read_csv(job.parent / "out" / "released.csv")
    report = json.loads((job.parent / "out" / "report.json").read_text())
    return released, report


def _k_over_released(released: pa.Table, sensitive: list[str]) -> int:
    qis = [c for c in released.column_names if c not in sensitive]
    return int(anonymity.k_anonymity(released.to_pandas(), qis))


@pytest.mark.parametrize("keep_key", [False, True])
def test_enriched_and_kept_key_columns_are_quasi_identifiers(tmp_path, keep_key) -> None:  # type: ignore[no-untyped-def]
    # Found: age_band / life_stage (and with keep_key the raw age) left unchanged while the
    # report claimed k over sex and race only.
    released, report = _run_cli(_write_job(tmp_path, keep_key=keep_key))
    expected = {"sex", "race", "occupation", "age_band", "life_stage"} | (
        {"age"} if keep_key else set()
    )
    assert set(released.column_names) == expected
    k = _k_over_released(released, ["occupation"])
    assert k == report["privacy"]["k"] >= 10  # type: ignore[index]
    assert set(report["transformation"]) == expected - {"occupation"}  # type: ignore[arg-type]


def test_undeclared_input_columns_are_refused_naming_them(tmp_path) -> None:  # type: ignore[no-untyped-def]
    job = _write_job(tmp_path, keep_key=False)
    text = job.read_text().replace("sensitive: [occupation]\n", "")
    job.write_text(text)
    result = CliRunner().invoke(app, ["run", str(job)])
    assert result.exit_code == 2
    assert "'occupation'" in result.output and "keep" in result.output
    assert not (tmp_path / "out" / "released.csv").exists()


def test_unknown_config_key_is_named_with_the_allowed_ones() -> None:
    with pytest.raises(InvalidInputError) as info:
        parse_config(
            {"quasi_identifiers": {"age": None}, "privacy": {"k": 2, "this_key_does_not_exist": 1}}
        )
    message = info.value.message
    assert "this_key_does_not_exist" in message and "allowed" in message and "l_variant" in message


def _zone(n: int = 2) -> FakeContext:
    classes = {
        "age": ColumnClass.QUASI_IDENTIFIER,
        "company": ColumnClass.JOIN_KEY,
        "disease": ColumnClass.SENSITIVE,
    }
    tables, agreements = {}, []
    diseases = ["flu", "cold", "hiv", "none"]
    for i in range(n):
        table = pa.table(
            {
                "age": [20 + (j * 7 + i) % 50 for j in range(80)],
                "company": [f"C{(j * 3 + i) % 8}" for j in range(80)],
                "disease": [diseases[(j + i) % 4] for j in range(80)],
            }
        )
        name = f"ds{i}"
        tables[name] = (make_dataset(name, f"owner{i}", table, classes), table)
        agreements.append(
            make_agreement(name, f"owner{i}", "mediate", {"k": 5, "references": ["companies"]})
        )
    ref = pa.table({"company": [f"C{i}" for i in range(8)], "sector": ["retail", "bank"] * 4})
    tables["companies"] = (
        make_dataset("companies", "ml", ref, {"company": ColumnClass.JOIN_KEY}),
        ref,
    )
    return FakeContext(tables, agreements)


def test_mediate_request_with_an_unknown_key_is_an_error_naming_it() -> None:
    ctx = _zone()
    spec = {"datasets": ["ds0", "ds1"], "this_key_does_not_exist": 1}
    with pytest.raises(InvalidInputError, match=r"this_key_does_not_exist.*allowed"):
        Mediate().plan(spec, ctx)


def test_mediator_enriches_after_merging_in_the_zone() -> None:
    # Found: the mediator ignored prepare (and so released the join key's information
    # nowhere, or refused nothing); it must merge, then enrich with the approved reference.
    ctx = _zone()
    tech = Mediate()
    spec = {
        "datasets": ["ds0", "ds1"],
        "prepare": {
            "enrich": [{"column": "company", "reference": "companies", "columns": ["sector"]}]
        },
    }
    plan = tech.plan(spec, ctx)
    assert "companies" in plan.datasets
    payload = tech.run(plan, ctx).payload
    assert set(payload["columns"]) == {"age", "disease", "sector"}
    frame = pa.table(
        {c: [r[i] for r in payload["rows"]] for i, c in enumerate(payload["columns"])}
    ).to_pandas()
    k = anonymity.k_anonymity(frame, ["age", "sector"])
    assert k == payload["report"]["privacy"]["k"] >= 5


def test_mediate_in_process_enriches_the_union() -> None:
    a = pa.table({"zip": ["1000", "1001", "1002"] * 4, "d": ["x", "y"] * 6})
    b = pa.table({"zip": ["1000", "1003", "1002"] * 4, "d": ["y", "x"] * 6})
    ref = pa.table({"zip": ["1000", "1001", "1002", "1003"], "region": ["N", "N", "S", "S"]})
    cfg = parse_config(
        {
            "quasi_identifiers": {"region": None},
            "sensitive": ["d"],
            "privacy": {"k": 3},
            "prepare": {
                "enrich": [{"column": "zip", "reference": "regions", "columns": ["region"]}]
            },
        }
    )
    out, report = mediate([a, b], cfg, np.random.default_rng(0), references={"regions": ref})
    assert set(out.column_names) == {"region", "d"}
    assert report["rows_out"] == 24
