"""``collabzone mpc upload / receive / server / open`` end to end with one server process."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from collabzone.cli import app

from .conftest import adult_columns


@pytest.mark.slow
def test_upload_receive_server_open(
    tmp_path: Path, master_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLLABZONE_MASTER_KEY", master_key)
    data = adult_columns(120)
    csv = tmp_path / "adult.csv"
    csv.write_text(
        "age,hours\n"
        + "\n".join(f"{a},{h}" for a, h in zip(data["age"], data["hours"], strict=True))
    )
    runner = CliRunner()
    result = runner.invoke(app, [
        "mpc", "upload", str(csv), "--dataset", "adult", "--provider", "census",
        "--column", "age:0:100", "--column", "hours:0:100", "--report", "mean",
        "--recipient", "ministry", "--out-dir", str(tmp_path / "out"), "--servers", "1",
        "--threshold", "0", "--min-group-size", "100",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    store = tmp_path / "server0"
    result = runner.invoke(
        app, ["mpc", "receive", str(tmp_path / "out" / "adult.server0.json"), "--store", str(store)]
    )
    assert result.exit_code == 0, result.output
    spec = {"report": "mean", "datasets": ["adult"], "columns": ["age"], "recipient": "ministry"}
    (tmp_path / "report.json").write_text(json.dumps(spec))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = runner.invoke(app, [
        "mpc", "server", "--store", str(store), "--report", str(tmp_path / "report.json"),
        "--shares-to", str(tmp_path / "share0.json"), "--party", f"127.0.0.1:{port}", "--index", "0",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        app, ["mpc", "open", str(tmp_path / "share0.json"), "--recipient", "ministry"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["result"]["age"] == pytest.approx(
        np.mean(data["age"]), abs=1e-6
    )


def test_upload_names_a_bad_column_spec(tmp_path: Path) -> None:
    csv = tmp_path / "x.csv"
    csv.write_text("age\n1\n")
    result = CliRunner().invoke(app, [
        "mpc", "upload", str(csv), "--dataset", "d", "--provider", "p", "--column", "age:zero:9",
        "--report", "mean", "--recipient", "r", "--out-dir", str(tmp_path),
    ])  # fmt: skip
    assert result.exit_code == 2
    assert "NAME:LOW:HIGH" in result.output


@pytest.mark.slow
def test_a_server_alone_gives_up_after_the_connect_timeout(
    tmp_path: Path, master_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If another server refused (or never started), this one exits with a clear error."""
    from .conftest import make_stores

    monkeypatch.setenv("COLLABZONE_MASTER_KEY", master_key)
    stores, _ = make_stores(tmp_path, master_key, servers=3, threshold=1, rows=20, min_group_size=5)
    spec = {"report": "mean", "datasets": ["adult"], "columns": ["age"], "recipient": "ministry"}
    (tmp_path / "report.json").write_text(json.dumps(spec))
    ports = []
    for _ in range(3):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
    result = CliRunner().invoke(app, [
        "mpc", "server", "--store", str(stores[0].root), "--report", str(tmp_path / "report.json"),
        "--shares-to", str(tmp_path / "share0.json"), "--index", "0", "--connect-timeout", "2",
        *(arg for p in ports for arg in ("--party", f"127.0.0.1:{p}")),
    ])  # fmt: skip
    assert result.exit_code == 6
    assert not (tmp_path / "share0.json").exists()
