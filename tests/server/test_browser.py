"""A real browser (Playwright driving Debian's headless Chromium) uses the owners' console.

The owner reads a pending request in plain words, approves from the pending list, and reads
the budget (with 1 and with 500 releases), the audit log and an error page, at 1280 px and
at a phone's width. Screenshots go to ``tests/artifacts/console`` (or
``$COLLABZONE_SCREENSHOTS``) for CI to keep; each page is also asserted on.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from collabzone.model import Request, RequestStatus
from collabzone.zone import Zone
from tests.conftest import CUSTOMER_SPEC, write_customers
from tests.server.conftest import Server, make_parties, start_server
from tests.system.test_risk import BY_TIER, SPEC, _customers

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS_ENV = "COLLABZONE_SCREENSHOTS"  # where CI keeps the screenshots
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "console"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
MANY = 500
VIEWER_ZONE = "Asia/Kolkata"  # times are shown in the viewer's zone: UTC+05:30 all year


@dataclass
class World:
    """A served zone: the partner owns the data, the bank asks; handles act in-process."""

    server: Server
    tokens: dict[str, str]
    bank: Zone
    partner: Zone
    count_id: str
    sql_id: str


@pytest.fixture
def world(tmp_path: Path, servers: list[Server]) -> World:
    operator, tokens = make_parties(tmp_path / "zone")
    bank, partner = operator.as_party(tokens["bank"]), operator.as_party(tokens["partner"])
    partner.add_dataset("partner_data", write_customers(tmp_path / "p.csv", 80), CUSTOMER_SPEC)
    partner.add_agreement(
        "partner_data", grantees=["bank"], technique="dp_count", purposes=["marketing"],
        approval="manual", rules={"epsilon_budget": 2.0},
    )  # fmt: skip
    partner.add_dataset("customers", _customers(tmp_path / "c.csv"), SPEC)
    partner.add_agreement(
        "customers", grantees=["bank"], technique="sql", purposes=["study"],
        rules={"analysis": "aggregation", "min_group_size": 10}, approval="manual",
    )  # fmt: skip
    count = bank.submit("dp_count", {"dataset": "partner_data", "epsilon": 0.3}, "marketing")
    sql = bank.submit("sql", {"sql": BY_TIER}, "study")
    assert isinstance(count, Request) and isinstance(sql, Request)
    assert count.status is RequestStatus.AWAITING_APPROVAL
    server = start_server(tmp_path / "zone")
    servers.append(server)
    return World(server, tokens, bank, partner, count.id, sql.id)


@pytest.fixture
def page() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport=DESKTOP, timezone_id=VIEWER_ZONE)
            page.set_default_timeout(120_000)  # two shared cores: the first release imports OpenDP
            yield page
        finally:
            browser.close()


def _shots() -> Path:
    shots = Path(os.environ.get(SCREENSHOTS_ENV) or ARTIFACTS)
    shots.mkdir(parents=True, exist_ok=True)
    return shots


def _fits(page: Any) -> None:
    """Nothing wider than the window: the page never scrolls sideways."""
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], f"page is {width}px wide"


def _check(page: Any, shot: Path) -> None:
    """Every page: plain status words, no dict or JSON dump, fits at desktop and phone."""
    text = page.inner_text("body")
    assert "awaiting_approval" not in text and "{'" not in text and '{"' not in text
    _fits(page)
    page.screenshot(path=str(shot), full_page=True)
    page.set_viewport_size(PHONE)
    _fits(page)
    page.screenshot(path=str(shot.with_name(shot.stem + "-phone.png")), full_page=True)
    page.set_viewport_size(DESKTOP)


@pytest.mark.slow
def test_owner_uses_the_console_in_the_browser(world: World, page: Any) -> None:
    shots, url = _shots(), world.server.url
    page.goto(f"{url}/console/")
    assert page.url.endswith("/console/login")
    page.fill("#token", world.tokens["partner"])
    page.click("button[type=submit]")

    # the pending list: each request in one sentence, its cost against the budget
    count = page.locator(f"#pending-{world.count_id}")
    assert "would receive a differentially private count" in count.inner_text()
    costs = count.locator(f"#cost-{world.count_id}").inner_text()
    assert "ε 0.3" in costs and "ε 2.0 of 2.0 left" in costs and "ε 1.7 of 2.0 left" in costs
    _check(page, shots / "console-pending.png")

    # the request page: what the analyst receives, the rewritten SQL, the risk
    page.click(f"#title-{world.sql_id} a")
    page.wait_for_url(f"**/console/requests/{world.sql_id}")
    assert "would receive aggregates" in page.inner_text("#receives")
    sql = page.inner_text("#governed-sql")
    assert "customers" in sql and re.search(r"HAVING|>=\s*10", sql), sql
    assert page.inner_text("#status") == "waiting for approval"
    assert page.locator("#risk li").count() >= 1
    _check(page, shots / "console-request.png")

    # approve from the pending list, with a reason, and land back on the list
    page.goto(f"{url}/console/")
    page.fill(f"#approve-reason-{world.count_id}", "spring campaign")
    page.click(f"#approve-{world.count_id}")
    page.wait_for_url(f"{url}/console/")
    assert page.locator(f"#pending-{world.count_id}").count() == 0
    assert world.bank.request(world.count_id).status is RequestStatus.RELEASED

    # the budget with one release: words, not dicts; a chart with its cap and ticks
    page.goto(f"{url}/console/budget")
    one = page.locator("section.budget", has_text="bank on partner_data")
    assert one.locator("dd.spent").inner_text() == "ε 0.3 of 2.0"
    assert one.locator("dd.remaining").inner_text() == "ε 1.7 of 2.0"
    assert one.locator("svg line.cap").count() == 1
    assert one.locator("svg text").count() >= 6  # tick labels on both axes
    _check(page, shots / "console-budget-1.png")

    # 500 more releases on a second dataset (auto-approved): the chart still fits
    world.partner.add_dataset(
        "partner_stream", write_customers(Path(world.server.root).parent / "s.csv", 60, "s"),
        CUSTOMER_SPEC,
    )  # fmt: skip
    world.partner.add_agreement(
        "partner_stream", grantees=["bank"], technique="dp_count", purposes=["marketing"],
        rules={"epsilon_budget": 2.0},
    )  # fmt: skip
    for _ in range(MANY):
        done = world.bank.submit(
            "dp_count", {"dataset": "partner_stream", "epsilon": 0.002}, "marketing"
        )
        assert isinstance(done, Request) and done.status is RequestStatus.RELEASED
    page.goto(f"{url}/console/budget")
    many = page.locator("section.budget", has_text="bank on partner_stream")
    assert many.locator("dd.spent").inner_text() == f"ε {MANY * 0.002:.1f} of 2.0"
    assert many.locator("dd.releases").inner_text() == str(MANY)
    steps = many.locator("svg path.spent").get_attribute("d") or ""
    assert steps.count("V") == MANY
    box, chart = many.bounding_box(), many.locator("svg").bounding_box()
    assert box and chart and chart["x"] + chart["width"] <= box["x"] + box["width"] + 1
    _check(page, shots / "console-budget-500.png")

    # the audit log: filter by action, page through, no sideways scrolling
    page.goto(f"{url}/console/audit")
    assert "audit log intact" in page.inner_text("#verification")
    page.select_option("#f-action", "request.released")
    page.click("form.filters button[type=submit]")
    actions = page.locator("#events tr td:nth-child(4)").all_inner_texts()
    assert len(actions) == 50 and set(actions) == {"request released"}
    assert f"({MANY + 1} in all)" in page.inner_text("nav.pages")
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\+05:30", page.inner_text("#events"))
    page.locator("#events details summary").first.click()  # one event's details, as lines
    assert "receipt.budget_spent.partner_stream.epsilon" in page.inner_text("#events")
    _check(page, shots / "console-audit.png")
    page.click("nav.pages a[rel=next]")
    assert "Page 2 of" in page.inner_text("nav.pages") and "action=request.released" in page.url
    assert set(page.locator("#events tr td:nth-child(4)").all_inner_texts()) == {"request released"}

    # history filtered by status; an unknown page is an HTML page, not JSON
    page.goto(f"{url}/console/history?status=awaiting_approval")
    rows = page.locator("#history tr td:nth-child(5)").all_inner_texts()
    assert rows == ["waiting for approval"]
    missing = page.goto(f"{url}/console/no-such-page")
    assert missing is not None and missing.status == 404
    assert page.inner_text("#error-title") == "Page not found"
    assert "no console page at /console/no-such-page" in page.inner_text("#error-message")
    _check(page, shots / "console-error.png")
