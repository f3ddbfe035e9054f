"""``collabzone synth run`` then ``synth report`` on small files."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from collabzone.cli import app
from tests.synthetic.test_zone import SPEC, _write


def test_run_then_report_writes_html_png_and_flags_a_copy(tmp_path: Path) -> None:
    import yaml

    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(SPEC), encoding="utf-8")
    real = _write(tmp_path / "real.csv", 300)
    frame = pd.read_csv(real)
    frame.iloc[:150].to_csv(tmp_path / "train.csv", index=False)
    frame.iloc[150:].to_csv(tmp_path / "control.csv", index=False)
    runner = CliRunner()
    synth = tmp_path / "synth.csv"
    ran = runner.invoke(
        app,
        [
            "synth",
            "run",
            str(tmp_path / "train.csv"),
            "--spec",
            str(spec),
            "--out",
            str(synth),
            "--epsilon",
            "1",
            "--bins",
            "4",
            "--iters",
            "20",
            "--seed",
            "1",
        ],
    )
    assert ran.exit_code == 0, ran.output
    assert "OpenDP measurements" in ran.output
    assert list(pd.read_csv(synth).columns) == ["region", "plan", "age"]
    # the copy of the training rows: the report must put an attack above the control
    frame.iloc[:150].to_csv(tmp_path / "copy.csv", index=False)
    out = tmp_path / "report"
    reported = runner.invoke(
        app,
        [
            "synth",
            "report",
            str(tmp_path / "train.csv"),
            str(tmp_path / "copy.csv"),
            "--spec",
            str(spec),
            "--out",
            str(out),
            "--control",
            str(tmp_path / "control.csv"),
            "--bins",
            "8",
            "--attacks",
            "100",
        ],
    )
    assert reported.exit_code == 0, reported.output
    document = json.loads((out / "report.json").read_text())
    assert document["fidelity"]["tvd_3way"] == 0.0  # an exact copy
    assert document["privacy"]["dcr"]["median_dcr_train"] == 0.0
    assert (out / "marginals.png").stat().st_size > 1000 and (out / "correlations.png").exists()
    page = (out / "report.html").read_text()
    assert "marginals.png" in page and "singling_out" in page


def test_run_refuses_an_unknown_method(tmp_path: Path) -> None:
    import yaml

    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(SPEC), encoding="utf-8")
    real = _write(tmp_path / "real.csv", 20)
    ran = CliRunner().invoke(
        app,
        ["synth", "run", str(real), "--spec", str(spec), "--out", str(tmp_path / "s.csv"),
         "--method", "ctgan"],
    )  # fmt: skip
    assert ran.exit_code != 0 and "privbayes" in ran.output
    assert not (tmp_path / "s.csv").exists()


def test_run_refuses_an_option_of_another_method_and_passes_its_own(tmp_path: Path) -> None:
    import yaml

    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(SPEC), encoding="utf-8")
    real = _write(tmp_path / "real.csv", 200)
    base = ["synth", "run", str(real), "--spec", str(spec), "--bins", "4", "--seed", "1"]
    wrong = CliRunner().invoke(app, [*base, "--out", str(tmp_path / "a.csv"), "--degree", "2"])
    assert wrong.exit_code == 2 and "option of aim and privbayes, not of mst" in wrong.output
    assert not (tmp_path / "a.csv").exists()
    ran = CliRunner().invoke(
        app,
        [*base, "--out", str(tmp_path / "b.csv"), "--method", "privbayes", "--degree", "1"],
    )
    assert ran.exit_code == 0, ran.output
    assert list(pd.read_csv(tmp_path / "b.csv").columns) == ["region", "plan", "age"]
