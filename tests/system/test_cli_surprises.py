"""Issue 12, "CLI and ingest that never surprise": each finding reproduced as a user meets it.

Commands run in-process through ``cli.main`` (exit code, stdout and stderr as a user sees
them) unless a test needs a real child process.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from collabzone.server._settings import ServerSettings
from tests.conftest import Parties

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
