"""The owner's visual report: written by ``deid run --html``, read in a real Chromium."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from collabzone.errors import InvalidInputError
from collabzone.techniques.deid import deidentify, parse_config
from collabzone.techniques.deid._html import classification_accuracy, records_by_class_size
from collabzone.techniques.deid.cli import run_config

from .conftest import ADULT

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
QIS = ["sex", "age", "race", "marital-status", "education"]


def _config(tmp_path: Path, **extra: object) -> Any:
    subset = tmp_path / "adult.csv"
    table = pacsv.read_csv(ADULT / "adult.csv", parse_options=pacsv.ParseOptions(delimiter=";"))
    pacsv.write_csv(table.slice(0, 3000), subset, write_options=pacsv.WriteOptions(delimiter=";"))
    return parse_config(
        {
            "input": str(subset),
            "output": str(tmp_path / "out.csv"),
            "report": str(tmp_path / "out.json"),
            "delimiter": ";",
            "quasi_identifiers": {
                q: {"file": str(ADULT / f"adult_hierarchy_{q}.csv")} for q in QIS
            },
            "keep": ["salary-class"],
            "undeclared": "drop",
            "privacy": {"k": 5},
            "suppression_limit": 0.02,
            **extra,
        }
    )


@pytest.fixture
def page() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser.new_page(viewport={"width": 1280, "height": 900})
        finally:
            browser.close()


def test_the_report_renders_in_chromium(tmp_path: Path, page: Any) -> None:
    if not (ADULT / "adult.csv").exists():
        pytest.skip("shared Adult data not found")
    html = tmp_path / "report" / "report.html"
    report = run_config(_config(tmp_path), tmp_path, None, html, "salary-class")
    pngs = sorted(p.name for p in html.parent.glob("*.png"))
    assert pngs == [
        "report-class-sizes.png",
        "report-lattice.png",
        "report-loss.png",
        "report-risk.png",
        "report-utility.png",
    ]
    page.goto(html.as_uri())
    assert page.locator("h1").inner_text() == "De-identification report"
    headings = page.locator("h2").all_inner_texts()
    assert headings[0] == "Equivalence class sizes" and len(headings) == 5
    widths = page.eval_on_selector_all("img", "imgs => imgs.map(i => i.complete && i.naturalWidth)")
    assert len(widths) == 5 and all(w and w > 300 for w in widths)  # every chart loaded
    assert f"{report['rows_out']}" in page.locator("table").inner_text()
    page.screenshot(path=str(tmp_path / "report.png"), full_page=True)


def test_class_size_buckets_and_their_shares() -> None:
    shares = records_by_class_size(np.array([1, 1, 2, 5, 100]))  # 109 records
    assert shares[0] == pytest.approx(2 / 109)  # two uniques
    assert shares[1] == pytest.approx(2 / 109)  # one pair
    assert shares[3] == pytest.approx(5 / 109)  # 5-9
    assert shares[-1] == pytest.approx(100 / 109)  # 100+
    assert sum(shares) == pytest.approx(1.0)


def test_fully_generalised_features_predict_no_better_than_the_majority() -> None:
    rng = np.random.default_rng(5)
    n = 400
    age = rng.integers(20, 70, size=n)
    label = np.where(age > 45, "high", "low")  # the target depends on age only
    table = pa.table({"age": age.tolist(), "label": label.tolist()})
    cfg = {"quasi_identifiers": {"age": {"intervals": [10, 50]}}, "keep": ["label"]}
    diag: dict[str, Any] = {}
    released, _ = deidentify(table, parse_config({**cfg, "privacy": {"k": n}}), diagnostics=diag)
    top = classification_accuracy(diag["prepared"], released, diag["rows"], ["age"], "label")
    assert top["de-identified"] == pytest.approx(top["majority"])  # every age is '*'
    assert top["original"] > 0.9  # the original ages separate the classes
    diag = {}
    released, _ = deidentify(table, parse_config({**cfg, "privacy": {"k": 5}}), diagnostics=diag)
    fine = classification_accuracy(diag["prepared"], released, diag["rows"], ["age"], "label")
    assert fine["de-identified"] > top["de-identified"]
    with pytest.raises(InvalidInputError, match="must be a released column"):
        classification_accuracy(diag["prepared"], released, diag["rows"], ["age"], "age")
