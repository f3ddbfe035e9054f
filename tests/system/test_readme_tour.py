"""The README's five-minute tour runs as written, end to end.

The ```bash block under "A five-minute tour of the CLI" is executed with ``bash -e`` in a
fresh directory that looks like a checkout: ``examples`` is the project's own, and
``.venv/bin/activate`` puts a ``collabzone`` on the PATH that runs this source tree.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import collabzone

ROOT = Path(__file__).resolve().parents[2]


def tour_script() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## A five-minute tour of the CLI", 1)[1]
    match = re.search(r"```bash\n(.*?)```", section, re.DOTALL)
    assert match, "the tour has no ```bash block"
    return match.group(1)


def _checkout_like(where: Path) -> dict[str, str]:
    """A directory shaped like a checkout, and an environment without any COLLABZONE_*."""
    (where / "examples").symlink_to(ROOT / "examples", target_is_directory=True)
    bin_dir = where / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    command = bin_dir / "collabzone"
    command.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m collabzone "$@"\n', "utf-8")
    command.chmod(command.stat().st_mode | stat.S_IXUSR)
    (bin_dir / "activate").write_text(f'export PATH="{bin_dir}:$PATH"\n', encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("COLLABZONE_")}
    source = str(Path(collabzone.__file__).resolve().parents[1])
    env.update(
        {
            "PYTHONPATH": os.pathsep.join([source, env.get("PYTHONPATH", "")]),
            "NO_COLOR": "1",
            "COLUMNS": "200",
            "TERM": "dumb",
        }
    )
    return env


@pytest.mark.slow
def test_the_readme_tour_runs_as_written(tmp_path: Path) -> None:
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("bash is not installed")
    env = _checkout_like(tmp_path)
    script = tmp_path / "tour.sh"
    script.write_text("set -euo pipefail\nset -x\n" + tour_script(), encoding="utf-8")
    run = subprocess.run(
        [bash, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    transcript = run.stdout + run.stderr
    assert run.returncode == 0, transcript[-6000:]
    assert "Traceback" not in transcript
    assert re.search(r"rq-[0-9a-f]{12} released dp_count by bank", run.stdout), transcript
    assert re.search(r"rq-[0-9a-f]{12} awaiting_approval", run.stdout), transcript
    assert "approved: aggregate only" in run.stdout
    assert "audit log intact" in run.stdout
    assert (tmp_path / "audit.jsonl").stat().st_size > 0
    assert (tmp_path / "zone" / "zone.toml").exists()
