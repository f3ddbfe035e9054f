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


DP_SQL = (
    "SELECT p.partner_segment, COUNT(*) FROM partner p JOIN bank b ON p.token = b.token "
    "GROUP BY p.partner_segment"
)


def test_csv_and_json_put_only_data_on_stdout(
    run: Callable[..., tuple[int, str, str]], tmp_path: Path
) -> None:
    code, out, err = run("bank", "query", CONVERSION, "--purpose", "marketing", "--format", "csv")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == '"partner_segment","customers","conversion"', out
    assert all(line.count(",") == 2 for line in lines), out  # no request line, no footer
    assert "rq-" in err and "released" in err

    code, out, err = run("bank", "query", CONVERSION, "--purpose", "marketing", "--format", "json")
    assert code == 0, err
    document = json.loads(out)  # the whole of stdout is one JSON document
    assert document["payload"]["columns"] == ["partner_segment", "customers", "conversion"]
    assert "rq-" in err

    target = tmp_path / "result.json"
    code, out, err = run(
        "bank", "query", CONVERSION, "--purpose", "marketing", "--format", "json", "--out",
        str(target),
    )  # fmt: skip
    assert code == 0 and out == "", (out, err)
    assert json.loads(target.read_text(encoding="utf-8"))["payload"]["rows"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--format", "parquet"), "--format parquet needs --out FILE"),
        (("--format", "xml"), "--format must be one of"),
        (("--out", "x.csv"), "--out needs --format csv, json or parquet"),
        (("--format", "csv", "--out", "no/such/folder/x.csv"), "does not exist"),
    ],
)
def test_bad_output_arguments_are_refused_before_anything_is_charged(
    run: Callable[..., tuple[int, str, str]], extra: tuple[str, ...], message: str
) -> None:
    code, out, err = run(
        "partner", "query", DP_SQL, "--purpose", "marketing", "--epsilon", "0.5", *extra
    )
    assert code == 2, (out, err)
    assert message in err and out == ""
    code, out, _ = run("partner", "request", "list")
    assert "rq-" not in out  # nothing was submitted
    code, out, _ = run("partner", "budget")
    assert "0.5" not in out  # nothing was spent


def test_dry_run_prices_post_processing_at_nothing_extra(
    run: Callable[..., tuple[int, str, str]],
) -> None:
    """A ratio, a function, HAVING, ORDER BY and LIMIT on noisy values cost what the
    aggregates cost: the dry-run price is the epsilon asked, and so is the debit."""
    sql = (
        "SELECT p.partner_segment, COUNT(*) AS n, SUM(b.converted) / COUNT(*) AS rate, "
        "ROUND(100 * AVG(b.converted), 1) AS pct FROM partner p JOIN bank b "
        "ON p.token = b.token GROUP BY p.partner_segment HAVING n > 0 ORDER BY rate DESC LIMIT 2"
    )
    args = ("query", sql, "--purpose", "marketing", "--epsilon", "0.5", "--format", "json")
    code, out, err = run("partner", *args, "--dry-run")
    assert code == 0, (out, err)
    price = json.loads(out)
    assert price["plan"]["cost"]["bank"]["epsilon"] == 0.5
    assert price["plan"]["details"]["refusals"] == []
    code, out, err = run("partner", *args)
    assert code == 0, (out, err)
    payload = json.loads(out)["payload"]
    assert payload["spent"]["epsilon"] == 0.5 and len(payload["rows"]) <= 2
    rates = [row[2] for row in payload["rows"]]
    assert rates == sorted(rates, key=lambda r: (r is None, -(r or 0)))
    code, out, _ = run("partner", "budget")
    assert "0.5" in out
