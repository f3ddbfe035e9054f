"""Sealed code as the look-alike model: the bank's own train+score module runs in the
sandbox on the partner's features (never its tokens); the partner approves it by hash and
reads the same audience rules; the bank reads the size and DP-noised quality."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow.csv as pacsv
import pytest

from collabzone.errors import InvalidInputError
from collabzone.model import RequestStatus
from collabzone.techniques.lookalike._synthetic import (
    PARTNER_COLUMNS,
    SEED_COLUMNS,
    LookalikeData,
    generate,
)
from collabzone.techniques.sealed import Limits, isolation_mode, make_manifest, upload

pytestmark = pytest.mark.skipif(isolation_mode() is None, reason="no network namespace here")

MARKER = "BANK_PROPENSITY_MODEL_e41b"
CODE = f'''"""{MARKER}"""
import math


def train_and_score(inputs):
    for row in inputs["train"] + inputs["score"]:
        assert not any(key.startswith("link_") for key in row)  # never a token
    pos = [r for r in inputs["train"] if r["label"]]
    neg = [r for r in inputs["train"] if not r["label"]]

    def mean(rows, key):
        return sum(r[key] for r in rows) / len(rows)

    w_income = mean(pos, "income") - mean(neg, "income")
    w_age = mean(pos, "age") - mean(neg, "age")
    return [{{"score": 1 / (1 + math.exp(-(w_income * (r["income"] - 40)
                                            + w_age * (r["age"] - 45)) / 50))}}
            for r in inputs["score"]]
'''
INPUTS = {"customers": ("partner_customers", ("age", "income"))}


@pytest.fixture(scope="module")
def data() -> LookalikeData:
    return generate(2000, overlap_share=0.3, seed=31)


def _zone(
    make_zone: Callable[[str | None], Any],
    tmp_path: Path,
    data: LookalikeData,
    code: str = CODE,
    **rules: Any,
) -> tuple[Any, str]:
    zone = make_zone(None)
    pacsv.write_csv(data.partner, tmp_path / "partner.csv")
    pacsv.write_csv(data.seed, tmp_path / "seed.csv")
    zone.partner.add_dataset(
        "partner_customers", tmp_path / "partner.csv", {"columns": PARTNER_COLUMNS}
    )
    zone.bank.add_dataset("bank_seed", tmp_path / "seed.csv", {"columns": SEED_COLUMNS})
    manifest = make_manifest(code, "train_and_score", INPUTS, {"score": "float"}, Limits())
    upload(zone.bank, "bank_model", code, manifest, tmp_path)
    agreed = {"min_audience": 50, "delivery_rate": 0.5, "quality_epsilon": 1.0, "epsilon_budget": 5,
              "allowed_code_sha256": [manifest.code_sha256], **rules}  # fmt: skip
    zone.partner.add_agreement(
        "partner_customers", grantees=["bank"], technique="lookalike", purposes=["marketing"],
        rules={k: v for k, v in agreed.items() if v is not None},
    )  # fmt: skip
    return zone, manifest.code_sha256


def _spec(code_hash: str, **more: Any) -> dict[str, Any]:
    return {"seed": "bank_seed", "label": "bought", "features": "partner_customers",
            "model": {"sealed": code_hash}, "audience_size": 100, **more}  # fmt: skip


def test_sealed_model_scores_and_the_audience_follows_the_same_rules(
    make_zone: Callable[[str | None], Any], tmp_path: Path, data: LookalikeData
) -> None:
    zone, code_hash = _zone(make_zone, tmp_path, data)
    request = zone.bank.submit("lookalike", _spec(code_hash), "marketing")
    assert request.status is RequestStatus.RELEASED, request.reasons
    partner_view = zone.partner.result(request.id).payload
    audience = [row[0] for row in partner_view["audience"]["rows"]]
    assert len(audience) == 100 and not set(audience) & data.overlap
    bank_view = zone.bank.result(request.id).payload
    assert bank_view["model"] == f"sealed:{code_hash}" and "audience" not in bank_view
    assert bank_view["quality_epsilon"] == 1.0 and bank_view["quality"]["auc"] is not None
    # the partner approved by hash and declaration: it reads those, never the code
    plan = zone.partner.request_plan(request.id)
    assert code_hash in plan["outputs"] and "age, income" in plan["outputs"]
    assert plan["details"]["sealed"]["code_sha256"] == code_hash
    seen = json.dumps([plan, partner_view, zone.partner.audit_events()], default=str)
    assert MARKER not in seen and "train_and_score(inputs)" not in seen
    # the sealed model actually ranks: the audience's true propensity beats the average
    income = dict(zip(data.partner.column("link_email").to_pylist(),
                      data.partner.column("income").to_pylist(), strict=True))  # fmt: skip
    average = sum(income.values()) / len(income)
    assert sum(income[t] for t in audience) / len(audience) > average + 5


@pytest.mark.parametrize(
    ("rules", "code"),
    [
        ({"allowed_code_sha256": []}, "CODE_NOT_APPROVED"),
        ({"quality_epsilon": None}, "QUALITY_DP_REQUIRED"),
        ({"max_memory_mb": 64}, "LIMIT_TOO_HIGH"),
    ],
)
def test_partner_rules_gate_a_sealed_model(
    make_zone: Callable[[str | None], Any],
    tmp_path: Path,
    data: LookalikeData,
    rules: dict[str, Any],
    code: str,
) -> None:
    zone, code_hash = _zone(make_zone, tmp_path, data, **rules)
    request = zone.bank.submit("lookalike", _spec(code_hash), "marketing")
    assert request.status is RequestStatus.REFUSED
    assert any(r.startswith(f"{code}:") for r in request.reasons), request.reasons


def test_sealed_model_specs_that_would_leak_are_errors(
    make_zone: Callable[[str | None], Any], tmp_path: Path, data: LookalikeData
) -> None:
    zone, code_hash = _zone(make_zone, tmp_path, data)
    for spec, said in ((_spec(code_hash, score_threshold=0.5), "score_threshold"),
                       (_spec("0" * 64), "no sealed module")):  # fmt: skip
        try:
            request = zone.bank.submit("lookalike", spec, "marketing")
        except InvalidInputError as exc:
            assert said in exc.message
        else:
            assert request.status is RequestStatus.REFUSED
            assert any(said in r for r in request.reasons), request.reasons


def test_hostile_sealed_model_is_stopped(
    make_zone: Callable[[str | None], Any], tmp_path: Path, data: LookalikeData
) -> None:
    hostile = CODE.replace(
        '    pos = [r for r in inputs["train"] if r["label"]]',
        '    import socket\n    pos = [r for r in inputs["train"] if r["label"]]',
    )
    zone, code_hash = _zone(make_zone, tmp_path, data, code=hostile)
    request = zone.bank.submit("lookalike", _spec(code_hash), "marketing")
    done = zone.bank.request(request.id)
    assert done.status is RequestStatus.FAILED
    assert any("sealed model stopped: network" in r for r in done.reasons), done.reasons
    assert zone.partner.budget() == [] or all(
        float(b["spent"].get("epsilon") or 0) == 0 for b in zone.partner.budget()
    )  # nothing released, nothing charged


def test_cli_uploads_a_sealed_model_and_asks_with_it(
    make_zone: Callable[[str | None], Any], tmp_path: Path, data: LookalikeData,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    from tests.lookalike.test_cli_lookalike_sealed import _call

    zone, _ = _zone(make_zone, tmp_path, data)  # an agreement on another hash
    module = tmp_path / "model.py"
    module.write_text(CODE.replace(MARKER, "cli copy"), encoding="utf-8")
    code, out, err = _call(
        monkeypatch, capsys, zone, "bank", "sealed", "upload", str(module), "--name", "cli_model",
        "--entry", "train_and_score", "--input", "customers=partner_customers:age,income",
        "--output", "score=float",
    )  # fmt: skip
    assert code == 0, err
    code_hash = json.loads(out[out.index("{") :])["code_sha256"]
    zone.partner.add_agreement(
        "partner_customers", grantees=["bank"], technique="lookalike", purposes=["cli"],
        rules={"min_audience": 50, "allowed_code_sha256": [code_hash], "quality_epsilon": 1,
               "epsilon_budget": 2},
    )  # fmt: skip
    code, out, err = _call(
        monkeypatch, capsys, zone, "bank", "lookalike", "run", "--seed", "bank_seed",
        "--label", "bought", "--features", "partner_customers", "--size", "60",
        "--model", f"sealed:{code_hash}", "--purpose", "cli",
    )  # fmt: skip
    assert code == 0, err
    shown = json.loads(out[out.index("{") :])
    assert shown["model"] == f"sealed:{code_hash}" and shown["audience_size"] == 60
    assert shown["quality_epsilon"] == 1.0 and "audience" not in shown
