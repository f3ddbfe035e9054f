"""`make test` leaves the checkout as it found it: no tracked file is a tool's cache."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _git(*args: str) -> str:
    git = shutil.which("git")
    if git is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    return subprocess.run([git, *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout


def test_no_tool_cache_is_tracked_and_caches_are_ignored() -> None:
    tracked = _git("ls-files", ".schemathesis", ".hypothesis", ".pytest_cache").split()
    assert tracked == [], f"tool caches are tracked (the tests rewrite them): {tracked}"
    for cache in (".schemathesis/default/cache/crashes/x.json", ".hypothesis/examples/x"):
        ignored = _git("check-ignore", "--no-index", cache)
        assert ignored.strip(), f"add {cache.split('/')[0]}/ to .gitignore"


def test_the_fuzz_test_runs_schemathesis_outside_the_checkout() -> None:
    source = (ROOT / "tests" / "server" / "test_schema_fuzz.py").read_text(encoding="utf-8")
    assert "cwd=tmp_path" in source
