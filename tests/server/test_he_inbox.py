"""The HE mediator's inbox through the CLI, on an embedded zone and over HTTP: the recipient
publishes its public context, providers encrypt at their premises and deposit, the zone adds
the ciphertexts without any key, and only the recipient's client decrypts the total. Who
may publish and deposit what is checked on both paths."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from collabzone.errors import ConflictError, InvalidInputError, NotAuthorisedError
from collabzone.model import RequestStatus
from collabzone.techniques.mpc._he_inbox import deposit_as, publish_as
from collabzone.zone import connect
from tests.server.conftest import Handles, make_parties, run_cli

SPEC = {
    "columns": [
        {"name": "category", "type": "string", "class": "dimension", "domain": ["a", "b"]},
        {"name": "count", "type": "float", "class": "measure", "domain": {"min": 0, "max": 1e6}},
    ]
}
LENGTH = 12
PURPOSE = "sector statistics"


def _total_through_the_cli(
    parties: dict[str, Any], zone: str, tokens: dict[str, str], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> tuple[list[float], np.ndarray]:  # fmt: skip
    def run(party: str, *args: str) -> str:
        code, out = run_cli(monkeypatch, capsys, "--zone", zone, "--token", tokens[party], *args)
        assert code == 0, out
        return out

    keys = tmp_path / "bank-keys"
    run("bank", "he", "keys", "--out", str(keys))
    run("bank", "he", "publish", "--keys", str(keys))
    rng = np.random.default_rng(8)
    vectors = {}
    for party, dataset in (("partner", "counts_p"), ("insurer", "counts_i")):
        parties[party].register_dataset(dataset, SPEC, row_count=LENGTH)
        parties[party].add_agreement(
            dataset, grantees=["bank"], technique="he_sum", purposes=[PURPOSE],
            rules={"recipients": ["bank"], "min_providers": 2},
        )  # fmt: skip
        vectors[dataset] = rng.integers(0, 10_000, LENGTH).astype(float)
        values = tmp_path / f"{dataset}.json"
        values.write_text(json.dumps(list(vectors[dataset])))
        cipher = tmp_path / f"{dataset}.ckks"
        run(party, "he", "encrypt", str(values), "--recipient", "bank", "--out", str(cipher))
        run(party, "he", "deposit", str(cipher), "--dataset", dataset, "--recipient", "bank")
    request = parties["bank"].submit(
        "he_sum", {"datasets": ["counts_p", "counts_i"], "recipient": "bank"}, PURPOSE
    )
    assert request.status is RequestStatus.RELEASED, request.reasons
    out = run("bank", "he", "open", request.id, "--keys", str(keys), "--length", str(LENGTH))
    total = json.loads(out.strip().splitlines()[-1])
    return total, vectors["counts_p"] + vectors["counts_i"]


def test_he_totals_through_the_cli_on_an_embedded_zone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "zone"
    _, tokens = make_parties(root)
    parties = {name: connect(root, token) for name, token in tokens.items()}
    total, expected = _total_through_the_cli(
        parties, str(root), tokens, tmp_path, monkeypatch, capsys
    )
    assert np.allclose(total, expected, atol=1e-2)
    # nothing in the zone's inbox is a secret key or a plain vector
    inbox = root / "techniques" / "he_sum" / "bank"
    assert sorted(p.name for p in inbox.iterdir()) == ["context.pub", "counts_i.ckks", "counts_p.ckks"]  # fmt: skip
    with pytest.raises(InvalidInputError, match="secret key"):
        publish_as(parties["bank"], (tmp_path / "bank-keys" / "he-secret.ctx").read_bytes())
    with pytest.raises(NotAuthorisedError, match="does not own a dataset 'counts_i'"):
        deposit_as(parties["partner"], "bank", "counts_i", b"x")  # another owner's vector
    with pytest.raises(ConflictError, match="'insurer' has not published"):
        deposit_as(parties["partner"], "insurer", "counts_p", b"x")
    code, out = run_cli(monkeypatch, capsys, "--zone", str(root), "--token", tokens["partner"],
                        "he", "publish", "--keys", str(tmp_path / "none"))  # fmt: skip
    assert code != 0 and "cannot read the public context" in out


def test_he_totals_through_the_cli_over_http(
    served: Handles, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    assert served.server is not None
    parties = {"bank": served.bank, "partner": served.partner, "insurer": served.insurer}
    total, expected = _total_through_the_cli(
        parties, served.server.url, served.tokens, tmp_path, monkeypatch, capsys
    )
    assert np.allclose(total, expected, atol=1e-2)
    public = served.partner.octets("GET", "/v1/he/bank/context")
    with pytest.raises(NotAuthorisedError, match="only 'partner' publishes its own context"):
        served.bank.octets("PUT", "/v1/he/partner/context", public)
    with pytest.raises(NotAuthorisedError, match="does not own a dataset 'counts_i'"):
        served.partner.octets("PUT", "/v1/he/bank/ciphertexts/counts_i", b"x")
    with pytest.raises(NotAuthorisedError):  # an auditor holds no datasets:write scope
        served.auditor.octets("PUT", "/v1/he/bank/ciphertexts/counts_p", b"x")
    with pytest.raises(ConflictError, match="'nobody' has not published"):
        served.partner.octets("GET", "/v1/he/nobody/context")
