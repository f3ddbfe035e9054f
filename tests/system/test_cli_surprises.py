"""Issue 12, "CLI and ingest that never surprise": each finding reproduced as a user meets it.

Commands run in-process through ``cli.main`` (exit code, stdout and stderr as a user sees
them) unless a test needs a real child process.
"""

from __future__ import annotations

import json
import re
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import typer

from collabzone.errors import ERROR_CATALOGUE, PolicyRefusal
from collabzone.model import Request
from collabzone.server._settings import ServerSettings
from tests.conftest import CUSTOMER_SPEC, Parties, write_customers

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from collabzone import cli

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:typer.*")


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def call(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Result]:
    """Run one `collabzone` command in this process through cli.main."""
    monkeypatch.setattr(cli.console, "width", 250)
    monkeypatch.setattr(cli.err_console, "width", 250)

    def run(*args: str, token: str | None = None, zone: Path | None = None) -> Result:
        argv = ["collabzone"]
        if zone is not None:
            argv += ["--zone", str(zone)]
        if token:
            argv += ["--token", token]
        monkeypatch.setattr(sys, "argv", [*argv, *args])
        capsys.readouterr()
        try:
            cli.main()
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


def test_the_server_ignores_a_party_token_in_the_environment(
    sqlite_zone: Parties, monkeypatch: pytest.MonkeyPatch
) -> None:
    from collabzone.server.app import create_app

    monkeypatch.setenv("COLLABZONE_TOKEN", sqlite_zone.tokens["bank"])
    app = create_app(ServerSettings(zone_dir=sqlite_zone.root))  # used to refuse: derive_key
    assert app.title


REQUEST_ID = re.compile(r"\brq-[0-9a-f]{12}\b")


def _share(parties: Parties, tmp_path: Path, *, manual: bool) -> None:
    parties.bank.add_dataset("customers", write_customers(tmp_path / "c.csv", 60), CUSTOMER_SPEC)
    parties.bank.add_agreement(
        "customers",
        grantees=["partner"],
        technique="dp_count",
        purposes=["sizing"],
        rules={"epsilon_budget": 1.0},
        approval="manual" if manual else "auto",
    )


def test_a_refused_submit_does_not_exit_0(
    sqlite_zone: Parties, tmp_path: Path, call: Callable[..., Result]
) -> None:
    _share(sqlite_zone, tmp_path, manual=False)
    spec = '{"dataset": "customers", "epsilon": 5.0}'  # over the whole budget
    refused = call(
        "request", "submit", "dp_count", "--spec", spec, "--purpose", "sizing",
        zone=sqlite_zone.root, token=sqlite_zone.tokens["partner"],
    )  # fmt: skip
    assert "refused" in refused.out
    assert refused.code == ERROR_CATALOGUE[PolicyRefusal].exit_code == 7


def test_request_ids_are_whole_in_narrow_tables_and_prefixes_work(
    sqlite_zone: Parties,
    tmp_path: Path,
    call: Callable[..., Result],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _share(sqlite_zone, tmp_path, manual=True)
    partner, bank = sqlite_zone.tokens["partner"], sqlite_zone.tokens["bank"]
    spec = '{"dataset": "customers", "epsilon": 0.1}'
    ids: list[str] = []
    while len({i[3] for i in ids}) == len(ids):  # until two ids share a first digit
        waiting = sqlite_zone.partner.submit("dp_count", json.loads(spec), "sizing")
        assert isinstance(waiting, Request)
        ids.append(waiting.id)
    twins = [i for i in ids if [j[3] for j in ids].count(i[3]) > 1]
    monkeypatch.setattr(cli.console, "width", 50)  # a narrow terminal
    listing = call("request", "list", zone=sqlite_zone.root, token=bank)
    assert listing.code == 0
    assert set(REQUEST_ID.findall(listing.out)) == set(ids), listing.out

    first = ids[-1]
    short = first[
        : next(n for n in range(4, 16) if not any(i.startswith(first[:n]) for i in ids[:-1]))
    ]
    approved = call(
        "approve", short, "--reason", "fine", zone=sqlite_zone.root, token=bank
    )  # a unique prefix names it
    assert approved.code == 0 and first in approved.out and "released" in approved.out
    shown = call("request", "show", first[3:9], zone=sqlite_zone.root, token=partner)
    assert shown.code == 0 and first in shown.out  # without "rq-" too

    ambiguous = call("request", "show", twins[0][:4], zone=sqlite_zone.root, token=partner)
    assert ambiguous.code == 2 and "give more of the id" in ambiguous.err
    unknown = call("request", "show", "rq-zzz", zone=sqlite_zone.root, token=partner)
    assert unknown.code == 3 and "no request of yours" in unknown.err


def test_the_documented_exit_codes_are_the_catalogue() -> None:
    from collabzone import cli_support, errors

    doc = (Path(__file__).resolve().parents[2] / "docs" / "cli.md").read_text(encoding="utf-8")
    documented: dict[str, int] = {}
    for code, classes in re.findall(r"^\| (\d+) \|[^|]*\| ([^|]*) \|", doc, re.MULTILINE):
        for name in re.findall(r"`(\w+)`", classes):
            documented[name] = int(code)
    for cls, info in ERROR_CATALOGUE.items():
        assert documented.get(cls.__name__) == info.exit_code, cls.__name__
    assert set(documented) <= {c.__name__ for c in ERROR_CATALOGUE}
    assert f"| {cli_support.EXIT_REQUEST_FAILED} | the request was accepted but failed" in doc
    assert f"| {cli_support.EXIT_INTERNAL} | internal error" in doc
    assert errors.ERROR_CATALOGUE[errors.InternalError].exit_code == cli_support.EXIT_INTERNAL


def test_the_identifier_refusal_names_the_real_command(
    sqlite_zone: Parties, tmp_path: Path, call: Callable[..., Result]
) -> None:
    raw = tmp_path / "raw.csv"
    raw.write_text("email,region\na@example.org,north\n", encoding="utf-8")
    refused = call(
        "dataset", "add", "raw", str(raw), "-c", "email:string:identifier",
        "-c", "region:string:dimension",
        zone=sqlite_zone.root, token=sqlite_zone.tokens["bank"],
    )  # fmt: skip
    assert refused.code == 2
    command = re.search(r"`(collabzone [a-z ]+)`", refused.err)
    assert command and command.group(1) == "collabzone link prepare", refused.err
    assert any(c.name == "prepare" for c in cli_link_app().registered_commands)


def cli_link_app() -> typer.Typer:
    from collabzone.techniques.linking.cli import app

    return app


def test_submitting_a_spec_file_that_is_missing_is_invalid_input(
    sqlite_zone: Parties, call: Callable[..., Result]
) -> None:
    missing = call(
        "request", "submit", "dp_count", "--spec", "@no/such/spec.json",
        zone=sqlite_zone.root, token=sqlite_zone.tokens["partner"],
    )  # fmt: skip
    assert missing.code == 2 and "cannot read no/such/spec.json" in missing.err, missing


def test_an_unknown_status_is_invalid_input_not_an_internal_error(
    sqlite_zone: Parties, call: Callable[..., Result]
) -> None:
    listed = call(
        "request", "list", "--status", "waiting", "--ids",
        zone=sqlite_zone.root, token=sqlite_zone.tokens["partner"],
    )  # fmt: skip
    assert listed.code == 2 and "awaiting_approval" in listed.err, listed
