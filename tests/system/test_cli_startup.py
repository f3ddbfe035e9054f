"""The CLI starts without importing the techniques' sub-commands it is not asked to run.

Every command used to import every technique's CLI module (FastAPI, pandas, sqlglot...):
3.8 s of CPU before doing anything, 1.6 s without them (docs/benchmarks.md, "CI suite
time"). cli_plugins.PluginGroup mounts a technique's sub-app when its name is used.
"""

from __future__ import annotations

import re
import subprocess
import sys
import warnings

from collabzone.cli_plugins import SUBCOMMANDS

with warnings.catch_warnings():
    # typer 0.20 reaches for click.utils.get_binary_stream, deprecated in click 8.5
    warnings.simplefilter("ignore", DeprecationWarning)
    import typer.main
    from typer.testing import CliRunner

    from collabzone.cli import app

HEAVY = ("collabzone.server.app", "collabzone.techniques.deid", "fastapi", "pandas", "sqlglot")
PROBE = f"""
import sys
import typer.main
from collabzone.cli import app
group = typer.main.get_command(app)
assert group.get_command(None, "party") is not None
print(",".join(m for m in {HEAVY!r} if m in sys.modules))
assert group.get_command(None, "deid") is not None
print(",".join(m for m in {HEAVY!r} if m in sys.modules))
"""


def test_a_core_command_does_not_import_the_techniques() -> None:
    run = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120, check=False
    )
    assert run.returncode == 0, run.stderr[-3000:]
    before, after = run.stdout.splitlines()
    assert before == "", f"imported at start-up: {before}"
    assert "collabzone.techniques.deid" in after.split(",")  # named: mounted on demand


def test_help_lists_every_technique_command_in_order() -> None:
    group = typer.main.get_command(app)
    names = group.list_commands(None)  # type: ignore[attr-defined, arg-type]
    plugins = [n for n, _ in SUBCOMMANDS]
    assert names[-len(plugins) :] == plugins
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert result.exit_code == 0, result.output
    rows = re.findall(r"^\W*(\w[\w-]*)\s", result.output, re.MULTILINE)
    assert [r for r in rows if r in plugins] == plugins, result.output


def test_a_misspelt_technique_command_is_still_suggested() -> None:
    result = CliRunner().invoke(app, ["sytnh"], env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert result.exit_code != 0
    assert "synth" in result.output
