"""The request page's "Result" section: each reader sees its own view of a release."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from collabzone.model import Request, RequestStatus
from collabzone.server._result_view import _shown, svg_curves
from collabzone.techniques.view import (
    MAX_TABLE_ROWS,
    CurveView,
    ImageView,
    ResultView,
    default_view,
)
from tests.server.conftest import Handles, console_sign_in
from tests.server.test_console import _pending

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16


def _released(served: Handles, tmp_path: Path) -> Request:
    made = _pending(served, tmp_path, approval="auto", epsilon=0.5)
    assert made.status is RequestStatus.RELEASED, made
    return made


def _section(html: str) -> str:
    found = re.search(r'<section id="result">(.*?)</section>', html, re.S)
    return found.group(1) if found else ""


def test_the_requester_reads_its_result_and_the_owner_does_not(
    served: Handles, tmp_path: Path
) -> None:
    request = _released(served, tmp_path)
    payload = served.bank.result(request.id).payload
    assert served.server is not None
    with httpx.Client(base_url=served.server.url, timeout=30) as browser:
        console_sign_in(browser, served.tokens["bank"])
        shown = _section(browser.get(f"/console/requests/{request.id}").text)
        assert shown, "the requester sees a Result section"
        numbers = [v for v in payload.values() if isinstance(v, int | float)]
        assert numbers and any(f"{v:,.4g}" in shown or f"{v:,}" in shown for v in numbers)
    with httpx.Client(base_url=served.server.url, timeout=30) as browser:
        console_sign_in(browser, served.tokens["partner"])
        page = browser.get(f"/console/requests/{request.id}").text
        assert "Privacy receipt" in page  # the owner reads the receipt ...
        assert not _section(page)  # ... never the payload addressed to the bank


def test_default_view_lists_facts_and_cuts_long_tables() -> None:
    rows = [[f"g{i}", i * 1.5] for i in range(MAX_TABLE_ROWS + 7)]
    view = default_view(
        {
            "epsilon": 0.25,
            "note": "<b>bold</b>",
            "_parts": {"partner": {"secret": 1}},
            "table": {"columns": [{"name": "grp"}, {"name": "total"}], "rows": rows},
        }
    )
    assert ("epsilon", "0.25") in view.facts and ("note", "<b>bold</b>") in view.facts
    assert all("secret" not in label for label, _ in view.facts)
    (table,) = view.tables
    assert table.columns == ("grp", "total") and len(table.rows) == MAX_TABLE_ROWS
    assert table.more == 7 and table.rows[3] == ("g3", "4.5")


def test_curves_are_escaped_svg_with_one_path_per_line() -> None:
    curve = CurveView(
        "Accuracy per round",
        "round",
        "accuracy",
        {"train": ((1, 0.6), (2, 0.7), (3, 0.75)), "<script>x</script>": ((1, 0.5), (3, 0.7))},
    )
    svg = svg_curves(curve, "c0")
    assert svg.startswith("<svg") and svg.count('class="line"') == 2
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert "Accuracy per round" in svg and "round" in svg
    assert "nothing to draw" in svg_curves(CurveView("empty", "x", "y", {"a": ()}), "c1")


def test_images_become_data_uris_and_an_empty_view_is_nothing() -> None:
    shown = _shown(ResultView(images=(ImageView("Marginals", PNG, "age, real vs synthetic"),)))
    (image,) = shown.images
    assert image.source.startswith("data:image/png;base64,iVBORw0KGgo")
    assert not ResultView() and ResultView(facts=(("a", "1"),))
