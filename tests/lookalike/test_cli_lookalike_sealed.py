"""``collabzone lookalike`` and ``collabzone sealed`` through the real CLI (in process)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow.csv as pacsv
import pytest

from collabzone import cli
from collabzone.techniques.lookalike._synthetic import PARTNER_COLUMNS, SEED_COLUMNS, generate
from collabzone.techniques.sealed import isolation_mode


def _call(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], zone: Any, party: str,
    *args: str,
) -> tuple[int, str, str]:  # fmt: skip
    argv = ["collabzone", "--zone", str(zone.root), "--token", zone.tokens[party], *args]
    monkeypatch.setattr(sys, "argv", argv)
    capsys.readouterr()
    code = 0
    try:
        cli.main()
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_lookalike_run_and_partner_audience(
    make_zone: Callable[[str | None], Any], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    zone = make_zone(None)
    data = generate(1200, seed=4)
    pacsv.write_csv(data.partner, tmp_path / "p.csv")
    pacsv.write_csv(data.seed, tmp_path / "s.csv")
    zone.partner.add_dataset("partner_customers", tmp_path / "p.csv", {"columns": PARTNER_COLUMNS})
    zone.bank.add_dataset("bank_seed", tmp_path / "s.csv", {"columns": SEED_COLUMNS})
    zone.partner.add_agreement(
        "partner_customers", grantees=["bank"], technique="lookalike", purposes=["m"],
        rules={"min_audience": 20, "allowed_models": ["logistic_regression"]},
    )  # fmt: skip
    code, out, err = _call(
        monkeypatch, capsys, zone, "bank", "lookalike", "run", "--seed", "bank_seed",
        "--label", "bought", "--features", "partner_customers", "--size", "30",
        "--purpose", "m",
    )  # fmt: skip
    assert code == 0, err
    shown = json.loads(out[out.index("{") :])
    assert shown["audience_size"] == 30 and "audience" not in shown
    request_id = zone.bank.requests()[-1].id
    code, out, err = _call(monkeypatch, capsys, zone, "partner", "lookalike", "audience",
                           request_id)  # fmt: skip
    assert code == 0, err
    tokens = out.split()[1:]
    assert len(tokens) == 30 and not set(tokens) & data.overlap
    code, out, err = _call(monkeypatch, capsys, zone, "auditor", "lookalike", "audience",
                           request_id)  # fmt: skip
    assert code != 0 and "no audience is addressed to you" in err


@pytest.mark.skipif(isolation_mode() is None, reason="no network namespace here")
def test_sealed_upload_show_and_run(
    make_zone: Callable[[str | None], Any], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    zone = make_zone(None)
    pacsv.write_csv(generate(300, seed=6).partner, tmp_path / "p.csv")
    zone.partner.add_dataset("partner_customers", tmp_path / "p.csv", {"columns": PARTNER_COLUMNS})
    module = tmp_path / "rules.py"
    module.write_text("def ok(inputs):\n    return [{'token': r['link_email']} "
                      "for r in inputs['c'] if r['income'] > 50]\n")  # fmt: skip
    code, out, err = _call(
        monkeypatch, capsys, zone, "bank", "sealed", "upload", str(module), "--name", "rules",
        "--entry", "ok", "--input", "c=partner_customers:link_email,income",
        "--output", "token=string",
    )  # fmt: skip
    assert code == 0, err
    manifest = json.loads(out)
    assert manifest["inputs"]["c"]["dataset"] == "partner_customers" and "code" not in manifest
    code, out, err = _call(monkeypatch, capsys, zone, "bank", "sealed", "show", "rules")
    assert code == 0 and json.loads(out)["code_sha256"] == manifest["code_sha256"]
    zone.partner.add_agreement(
        "partner_customers", grantees=["bank"], technique="sealed", purposes=["credit"],
        rules={"allowed_code_sha256": [manifest["code_sha256"]], "allowed_outputs": ["token"],
               "min_group_size": 5},
    )  # fmt: skip
    code, out, err = _call(monkeypatch, capsys, zone, "bank", "sealed", "run", "rules",
                           "--purpose", "credit")  # fmt: skip
    assert code == 0, err
    assert json.loads(out[out.index("{") :])["count"] > 5
