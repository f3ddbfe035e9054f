"""A real browser (Playwright driving Debian's headless Chromium) signs in as the owner,
approves a pending request and sees it released; a screenshot is saved as evidence."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from collabzone.model import Request, RequestStatus
from tests.conftest import CUSTOMER_SPEC, write_customers
from tests.server.conftest import Handles

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
SCREENSHOTS_ENV = "COLLABZONE_SCREENSHOTS"  # where CI keeps the screenshots (else tmp_path)


@pytest.mark.slow
def test_owner_approves_in_the_browser(served: Handles, tmp_path: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)")
    assert served.server is not None
    served.partner.add_dataset(
        "partner_data", write_customers(tmp_path / "p.csv", 80), CUSTOMER_SPEC
    )
    served.partner.add_agreement(
        "partner_data",
        grantees=["bank"],
        technique="dp_count",
        purposes=["marketing"],
        approval="manual",
        rules={"epsilon_budget": 1.0},
    )
    asked = served.bank.submit("dp_count", {"dataset": "partner_data", "epsilon": 0.2}, "marketing")
    assert isinstance(asked, Request) and asked.status is RequestStatus.AWAITING_APPROVAL

    shots = Path(os.environ.get(SCREENSHOTS_ENV) or tmp_path / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page()
            page.goto(f"{served.server.url}/console/")
            assert page.url.endswith("/console/login")
            page.fill("#token", served.tokens["partner"])
            page.click("button[type=submit]")
            section = page.locator(f"#pending-{asked.id}")
            assert "0.2" in section.inner_text()
            section.locator("a").first.click()
            page.fill("#approve-reason", "spring campaign")
            page.click("#approve")
            page.wait_for_url(f"**/console/requests/{asked.id}")
            assert page.inner_text("#status") == "released"
            assert "Privacy receipt" in page.content()
            page.screenshot(path=str(shots / "console-approved.png"), full_page=True)
            page.goto(f"{served.server.url}/console/budget")
            assert page.locator("#budget-chart svg").count() == 1
            page.screenshot(path=str(shots / "console-budget.png"), full_page=True)
        finally:
            browser.close()
    assert served.bank.result(asked.id).payload
    assert (shots / "console-approved.png").stat().st_size > 1000
