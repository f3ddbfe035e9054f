"""The `collabzone` command line end to end.

Most commands run as a real subprocess (``python -m collabzone``: exit codes, one-line
errors, output as a user sees it). Read-only listings and the second half of the lifecycle
run in-process through the same ``cli.main`` entry point to keep the suite fast (each
subprocess costs about a second).
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from collabzone.errors import (
    ERROR_CATALOGUE,
    AuthenticationError,
    IntegrityError,
    InvalidInputError,
    NotAuthorisedError,
)
from collabzone.keys import MASTER_KEY_ENV
from tests.conftest import CUSTOMER_SPEC, Parties, write_customers

with warnings.catch_warnings():
    # typer 0.20 reaches for click.utils.get_binary_stream, deprecated in click 8.5
    warnings.simplefilter("ignore", DeprecationWarning)
    from collabzone import cli

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:typer.*")

TOKEN = re.compile(r"czt_[A-Za-z0-9_-]{20,}")
REQUEST_ID = re.compile(r"\brq-[0-9a-f]{12}\b")
AGREEMENT_ID = re.compile(r"\bag-[0-9a-f]{10}\b")
SPEC_YAML = """\
description: tokenised customers
columns:
  - {name: token, type: string, class: join_key}
  - {name: region, type: string, class: dimension, domain: [north, south, east]}
  - {name: spend, type: float, class: measure, domain: {min: 0, max: 1000}}
"""


@dataclass
class Result:
    code: int
    out: str
    err: str


def _env(master_key: str | None) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("COLLABZONE_") and k not in ("FORCE_COLOR", "CLICOLOR_FORCE")
    }
    env.update({"NO_COLOR": "1", "COLUMNS": "250", "TERM": "dumb"})
    if master_key:
        env[MASTER_KEY_ENV] = master_key
    return env


def run(root: Path, *args: str, token: str | None = None, key: str | None = None) -> Result:
    """One `collabzone` command in a child process."""
    command = [sys.executable, "-m", "collabzone", "--zone", str(root)]
    if token:
        command += ["--token", token]
    proc = subprocess.run(
        [*command, *args], env=_env(key), capture_output=True, text=True, timeout=120
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def inline(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Result]:
    """Run one `collabzone` command in this process through cli.main."""
    monkeypatch.setattr(cli.console, "width", 250)
    monkeypatch.setattr(cli.err_console, "width", 250)

    def call(root: Path, *args: str, token: str | None = None, key: str) -> Result:
        monkeypatch.setenv(MASTER_KEY_ENV, key)
        argv = ["collabzone", "--zone", str(root), *(["--token", token] if token else []), *args]
        monkeypatch.setattr(sys, "argv", argv)
        capsys.readouterr()
        try:
            cli.main()
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return call


def _one_error_line(result: Result, expected_code: int) -> str:
    assert result.code == expected_code, (result.code, result.out, result.err)
    lines = [line for line in result.err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.err
    assert "Traceback" not in result.err + result.out
    return lines[0]


def test_cli_lifecycle_end_to_end(tmp_path: Path, inline: Callable[..., Result]) -> None:
    call = inline
    root = tmp_path / "zone"

    # init without a master key in the environment: it makes one and prints it once
    init = run(root, "init")
    assert init.code == 0, init.err
    [key] = re.findall(rf"{MASTER_KEY_ENV}=(\S+)", init.out)
    [operator] = TOKEN.findall(init.out)
    assert (root / "zone.toml").exists()
    assert key not in (root / "keyring.json").read_text()

    added = run(
        root, "party", "add", "bank", "-r", "provider", "-r", "analyst", token=operator, key=key
    )
    assert added.code == 0, added.err
    [bank] = TOKEN.findall(added.out)
    [partner] = TOKEN.findall(
        call(root, "party", "add", "partner", "-r", "analyst", token=operator, key=key).out
    )
    listed = call(root, "party", "list", token=partner, key=key).out
    for name, role in (("operator", "operator"), ("bank", "provider"), ("partner", "analyst")):
        assert re.search(rf"{name}\s.*{role}", listed), listed

    # datasets: with a YAML spec and with --column flags
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC_YAML, encoding="utf-8")
    customers = write_customers(tmp_path / "customers.csv", 400)
    out = run(
        root,
        "dataset",
        "add",
        "customers",
        str(customers),
        "--spec",
        str(spec),
        token=bank,
        key=key,
    )
    assert out.code == 0 and "customers v1: 400 rows, 3 columns" in out.out, out
    visits = tmp_path / "visits.csv"
    visits.write_text(
        "token,visits\n" + "".join(f"t{i},{i % 7}\n" for i in range(300)), encoding="utf-8"
    )
    out = run(
        root,
        "dataset",
        "add",
        "visits",
        str(visits),
        "--column",
        "token:string:join_key",
        "--column",
        "visits:integer:measure",
        token=bank,
        key=key,
    )
    assert out.code == 0 and "visits v1: 300 rows, 2 columns" in out.out, out
    listed = call(root, "dataset", "list", token=bank, key=key).out
    assert "customers" in listed and "visits(measure)" in listed

    # agreements: auto on customers (subprocess), manual on visits (in-process)
    out = run(
        root,
        "agreement",
        "add",
        "customers",
        "-g",
        "partner",
        "--technique",
        "dp_count",
        "-p",
        "*",
        "--rules",
        '{"epsilon_budget": 1.0}',
        token=bank,
        key=key,
    )
    assert out.code == 0, out.err
    [auto_agreement] = AGREEMENT_ID.findall(out.out)
    out = call(
        root,
        "agreement",
        "add",
        "visits",
        "-g",
        "partner",
        "--technique",
        "dp_count",
        "-p",
        "research",
        "--rules",
        '{"epsilon_budget": 2.0}',
        "--manual",
        token=bank,
        key=key,
    )
    [manual_agreement] = AGREEMENT_ID.findall(out.out)
    shown = json.loads(call(root, "agreement", "show", token=partner, key=key).out)
    assert {a["id"]: a["approval"] for a in shown} == {
        auto_agreement: "auto",
        manual_agreement: "manual",
    }
    [one] = json.loads(
        call(root, "agreement", "show", manual_agreement, token=partner, key=key).out
    )
    assert one["rules"] == {"epsilon_budget": 2.0}

    # requests: price first (records nothing), then submit
    spec_json = '{"dataset": "customers", "epsilon": 0.25}'
    priced = run(
        root,
        "request",
        "submit",
        "dp_count",
        "--spec",
        spec_json,
        "--purpose",
        "sizing",
        "--dry-run",
        token=partner,
        key=key,
    )
    assert priced.code == 0, priced.err
    price = json.loads(priced.out)
    assert price["would_be_refused"] == []
    assert price["budget"]["customers"]["remaining"]["epsilon"] == 1.0
    assert call(root, "request", "list", token=partner, key=key).out.count("rq-") == 0

    released = run(
        root,
        "request",
        "submit",
        "dp_count",
        "--spec",
        spec_json,
        "--purpose",
        "sizing",
        token=partner,
        key=key,
    )
    assert released.code == 0, released.err
    first = REQUEST_ID.findall(released.out)[0]
    assert "released" in released.out and "discrete Laplace" in released.out
    assert re.search(r"audit\s+event\s+ev-[0-9a-f]{16}", released.out)

    manual_spec = '{"dataset": "visits", "epsilon": 0.5}'
    waiting = call(
        root,
        "request",
        "submit",
        "dp_count",
        "--spec",
        manual_spec,
        "--purpose",
        "research",
        token=partner,
        key=key,
    )
    [second] = set(REQUEST_ID.findall(waiting.out))
    assert "awaiting_approval" in waiting.out and "approval by bank: pending" in waiting.out
    approved = run(root, "approve", second, "--reason", "fine for research", token=bank, key=key)
    assert approved.code == 0 and "released" in approved.out, approved
    third_out = call(
        root,
        "request",
        "submit",
        "dp_count",
        "--spec",
        manual_spec,
        "--purpose",
        "research",
        token=partner,
        key=key,
    )
    [third] = set(REQUEST_ID.findall(third_out.out))
    denied = call(root, "deny", third, "--reason", "too soon", token=bank, key=key)
    assert "refused" in denied.out and "too soon" in denied.out

    listing = call(root, "request", "list", token=partner, key=key).out
    assert {first, second, third} <= set(REQUEST_ID.findall(listing))
    assert re.search(rf"{third}\s+.*refused", listing)
    assert "OWNER_DENIED" in call(root, "request", "show", third, token=partner, key=key).out
    result = call(root, "request", "result", second, token=partner, key=key)
    assert result.code == 0 and "ci95_low" in result.out and "receipt" in result.out

    catalogue = run(root, "catalogue", token=partner, key=key)
    assert catalogue.code == 0, catalogue.err
    assert "customers (owner bank, about 400 rows)" in catalogue.out
    assert "mock sample (not real data)" in catalogue.out
    budget = run(root, "budget", token=partner, key=key)
    assert re.search(r"partner\s.*customers\s.*total\s.*0\.25\s.*0\.75", budget.out), budget.out
    assert re.search(r"partner\s.*visits\s.*total\s.*0\.5\s.*1\.5", budget.out), budget.out

    # revoke and remove end the sharing
    assert (
        call(
            root, "agreement", "revoke", auto_agreement, "--reason", "done", token=bank, key=key
        ).code
        == 0
    )
    assert call(root, "dataset", "remove", "visits", token=bank, key=key).code == 0
    assert "visits" not in call(root, "dataset", "list", token=bank, key=key).out
    refused = call(
        root,
        "request",
        "submit",
        "dp_count",
        "--spec",
        spec_json,
        "--purpose",
        "x",
        token=partner,
        key=key,
    )
    assert refused.code != 0 or "refused" in refused.out, refused  # no longer shared

    verified = run(root, "audit", "verify", token=operator, key=key)
    assert verified.code == 0 and "audit log intact" in verified.out, verified
    events = int(re.findall(r"(\d+) events", verified.out)[0])
    export = tmp_path / "audit.jsonl"
    exported = run(root, "audit", "export", str(export), token=operator, key=key)
    assert exported.code == 0 and f"{events} events written" in exported.out
    lines = export.read_text(encoding="utf-8").splitlines()
    assert len(lines) == events + 2  # header, events, closing checkpoint
    actions = [json.loads(line)["action"] for line in lines[1:-1]]
    offline = run(root, "audit", "verify-export", str(export))
    assert offline.code == 0 and f"export intact: {events} events" in offline.out, offline
    for action in (
        "zone.created",
        "party.added",
        "dataset.added",
        "agreement.signed",
        "request.released",
        "request.denied_by",
        "agreement.revoked",
        "dataset.removed",
    ):
        assert action in actions


def test_cli_errors_exit_codes_and_tampering(sqlite_zone: Parties, tmp_path: Path) -> None:
    root, key = sqlite_zone.root, os.environ[MASTER_KEY_ENV]
    sqlite_zone.bank.add_dataset(
        "customers", write_customers(tmp_path / "c.csv", 50), CUSTOMER_SPEC
    )

    wrong = run(root, "party", "list", token="czt_not-a-real-token-at-all-xxxx", key=key)
    assert "matches no party" in _one_error_line(
        wrong, ERROR_CATALOGUE[AuthenticationError].exit_code
    )

    theirs = run(
        root, "dataset", "remove", "customers", token=sqlite_zone.tokens["partner"], key=key
    )
    assert "belongs to 'bank'" in _one_error_line(
        theirs, ERROR_CATALOGUE[NotAuthorisedError].exit_code
    )

    bad = tmp_path / "bad.csv"
    bad.write_text("token,region,spend\nt1,north,1\nt2,south,PRIVATE-VALUE\n", encoding="utf-8")
    failed = run(
        root,
        "dataset",
        "add",
        "more",
        str(bad),
        "-c",
        "token:string:join_key",
        "-c",
        "region:string:dimension",
        "-c",
        "spend:float:measure",
        token=sqlite_zone.tokens["bank"],
        key=key,
    )
    line = _one_error_line(failed, ERROR_CATALOGUE[InvalidInputError].exit_code)
    assert "bad.csv, line 3, column 'spend'" in line and "PRIVATE-VALUE" not in line
    assert [d.name for d in sqlite_zone.bank.datasets()] == ["customers"]

    # an edited audit event: verify exits with the IntegrityError code and names the event
    assert sqlite_zone.operator.verify_audit().ok
    with sqlite3.connect(root / "zone.sqlite") as db:
        db.execute(
            "UPDATE audit_events SET details = '{\"rows\": 1}' WHERE action = 'dataset.added'"
        )
        seq = db.execute("SELECT seq FROM audit_events WHERE action = 'dataset.added'").fetchone()[
            0
        ]
    db.close()
    tampered = run(root, "audit", "verify", token=sqlite_zone.tokens["auditor"], key=key)
    assert tampered.code == ERROR_CATALOGUE[IntegrityError].exit_code == 8
    assert f"BROKEN at event {seq}" in tampered.err and "edited" in tampered.err
