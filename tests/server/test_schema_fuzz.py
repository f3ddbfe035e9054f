"""schemathesis runs every check it has (``--checks all``) against a real server: no 5xx,
every status the API answers is documented with its body and content type, schema-valid
data is accepted and schema-invalid data refused, 405s name the allowed methods.

Per-operation exceptions live in ``schemathesis.toml`` beside this file, each with its
reason. schemathesis caches under ``./.schemathesis``: it runs in the test's tmp dir.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import CUSTOMER_SPEC, write_customers
from tests.server.conftest import Server, make_parties, start_server

CONFIG = Path(__file__).with_name("schemathesis.toml")


def _fuzz(cli: str, url: str, token: str, tmp_path: Path, *extra: str) -> str:
    run = subprocess.run(
        [
            cli,
            "--config-file",
            str(CONFIG),
            "run",
            f"{url}/openapi.json",
            "--checks",
            "all",
            "-H",
            f"Authorization: Bearer {token}",
            "--seed",
            "7",
            "--request-timeout",
            "30",
            "--suppress-health-check",
            "too_slow",  # 2 shared cores: a slow example is not an API defect
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,  # schemathesis caches crashes under ./.schemathesis: not the checkout
    )
    summary = run.stdout.split("SUMMARY")[-1]
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    generated = re.search(r"(\d+) generated, (\d+) passed", summary)
    assert generated and generated.group(1) == generated.group(2), summary
    assert int(generated.group(1)) > 100, summary  # it really generated and sent requests
    assert "Failures:" not in summary and "Server error" not in run.stdout
    return summary


@pytest.mark.slow
def test_every_schemathesis_check_passes_against_a_running_server(
    tmp_path: Path, servers: list[Server]
) -> None:
    cli = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    if cli is None:
        pytest.skip("schemathesis is not installed in this environment")
    operator, tokens = make_parties(tmp_path / "zone")
    partner = operator.as_party(tokens["partner"])
    partner.add_dataset("partner_data", write_customers(tmp_path / "p.csv", 50), CUSTOMER_SPEC)
    partner.add_agreement(
        "partner_data",
        grantees=["bank"],
        technique="dp_count",
        purposes=["marketing"],
        rules={"epsilon_budget": 10.0},
    )
    server = start_server(
        tmp_path / "zone",
        *("--rate", "100000", "--burst", "100000", "--max-failures", "100000"),
    )
    servers.append(server)
    schema = httpx.get(f"{server.url}/openapi.json").json()
    assert schema["components"]["securitySchemes"]["OAuth2"]["flows"]["clientCredentials"]
    token = {
        party: httpx.post(
            f"{server.url}/oauth/token",
            data={"grant_type": "client_credentials", "client_secret": tokens[party]},
        ).json()["access_token"]
        for party in ("partner", "operator")
    }
    # a data owner and analyst with every scope of its roles: all routes but the operator's
    _fuzz(cli, server.url, token["partner"], tmp_path, "--max-examples", "10")
    # the operator's own routes (parties, keys) with the operator's token
    _fuzz(
        cli, server.url, token["operator"], tmp_path, "--max-examples", "5",
        "--include-tag", "parties", "--include-tag", "keys",
    )  # fmt: skip
    assert "Traceback" not in server.log.read_text(errors="replace")
