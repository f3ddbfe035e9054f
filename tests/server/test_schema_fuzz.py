"""schemathesis fuzzes the published OpenAPI schema: no input may cause a 5xx."""

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


@pytest.mark.slow
def test_fuzzing_the_openapi_schema_finds_no_server_error(
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
    server = start_server(tmp_path / "zone", "--rate", "100000", "--burst", "100000")
    servers.append(server)
    schema = httpx.get(f"{server.url}/openapi.json").json()
    assert schema["components"]["securitySchemes"]["OAuth2"]["flows"]["clientCredentials"]
    for party in ("partner", "operator"):
        token = httpx.post(
            f"{server.url}/oauth/token",
            data={"grant_type": "client_credentials", "client_secret": tokens[party]},
        ).json()["access_token"]
        run = subprocess.run(
            [
                cli,
                "run",
                f"{server.url}/openapi.json",
                "--checks",
                "not_a_server_error",
                "-H",
                f"Authorization: Bearer {token}",
                "--max-examples",
                "12",
                "--seed",
                "7",
                "--request-timeout",
                "30",
            ],
            capture_output=True,
            text=True,
            timeout=600,
            cwd=tmp_path,  # schemathesis caches crashes under ./.schemathesis: not the checkout
        )
        assert run.returncode == 0, run.stdout[-4000:]
        summary = run.stdout.split("SUMMARY")[-1]
        generated = re.search(r"(\d+) generated, (\d+) passed", summary)
        assert generated and generated.group(1) == generated.group(2), summary
        assert "Server error" not in run.stdout
    assert "Traceback" not in server.log.read_text(errors="replace")
