"""`collabzone query` in-process through cli.main: table, CSV, dry run, refusal exit code."""

from __future__ import annotations

import json
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Parties
from tests.sql.test_zone import CONVERSION, _populate

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from collabzone import cli

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:typer.*")


@pytest.fixture
def run(
    make_zone: Callable[[str | None], Parties],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[..., tuple[int, str, str]]:
    parties = make_zone(None)
    _populate(parties, tmp_path, dp_budget=1.0)
    monkeypatch.setattr(cli.console, "width", 250)

    def call(party: str, *args: str) -> tuple[int, str, str]:
        argv = ["collabzone", "--zone", str(parties.root), "--token", parties.tokens[party], *args]
        monkeypatch.setattr(sys, "argv", argv)
        capsys.readouterr()
        try:
            cli.main()
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        out = capsys.readouterr()
        return code, out.out, out.err

    return call


def test_query_prints_table_with_protections(run: Callable[..., tuple[int, str, str]]) -> None:
    code, out, err = run("bank", "query", CONVERSION, "--purpose", "marketing")
    assert code == 0, (out, err)
    assert "partner_segment" in out and "released" in out
    assert "left out" in out


def test_query_csv_and_dry_run(run: Callable[..., tuple[int, str, str]]) -> None:
    code, out, err = run("bank", "query", CONVERSION, "--purpose", "marketing", "--format", "csv")
    assert code == 0
    assert '"partner_segment","customers","conversion"' in out
    assert "left out" in err
    dp_sql = "SELECT p.partner_segment, COUNT(*) FROM partner p JOIN bank b ON p.token = b.token GROUP BY p.partner_segment"
    code, out, _ = run(
        "partner", "query", dp_sql, "--purpose", "marketing", "--epsilon", "0.5", "--dry-run"
    )
    assert code == 0
    price = json.loads(out)
    assert price["plan"]["cost"]["bank"]["epsilon"] == 0.5
    assert price["budget"]["bank"]["remaining"]["epsilon"] == 1.0


def test_refused_query_exits_7(run: Callable[..., tuple[int, str, str]]) -> None:
    code, out, _ = run("bank", "query", "SELECT p.token, COUNT(*) FROM partner p GROUP BY p.token",
                       "--purpose", "marketing")  # fmt: skip
    assert code == 7
    assert "JOIN_KEY_MISUSE" in out
