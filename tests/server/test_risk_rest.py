"""The owner's risk summary over HTTP: the REST route, the console page and the CLI."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from collabzone import cli
from collabzone.errors import NotAuthorisedError
from tests.server.conftest import Handles, console_sign_in
from tests.system.test_risk import BY_TIER, SPEC, _ask, _customers


def test_risk_over_rest_console_and_cli(
    served: Handles,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert served.server is not None
    served.partner.add_dataset("customers", _customers(tmp_path / "c.csv"), SPEC)
    served.partner.add_agreement(
        "customers", grantees=["bank"], technique="sql", purposes=["study"],
        rules={"analysis": "aggregation", "min_group_size": 10}, approval="manual",
    )  # fmt: skip
    pending = _ask(served.bank, BY_TIER)
    report = served.partner.request_risk(pending.id)  # the remote client, over REST
    assert report["would_be"] == "released" and report["summary"]
    with pytest.raises(NotAuthorisedError):
        served.bank.request_risk(pending.id)
    plan = served.partner.request_plan(pending.id)  # what the console shows, over REST
    assert "tier" in plan["details"]["governed_sql"] and plan["outputs"]
    with httpx.Client(base_url=served.server.url, timeout=30) as browser:
        console_sign_in(browser, served.tokens["partner"])
        page = browser.get(f"/console/requests/{pending.id}").text
        assert "Risk if approved" in page and re.search(r'id="risk"', page)
    monkeypatch.setattr(cli.console, "width", 250)
    argv = ["collabzone", "--zone", served.server.url, "--token", served.tokens["partner"],
            "request", "risk", pending.id]  # fmt: skip
    monkeypatch.setattr("sys.argv", argv)
    capsys.readouterr()
    try:
        cli.main()
    except SystemExit as exc:
        assert not exc.code
    out = capsys.readouterr().out
    assert pending.id in out and "would be released" in out
