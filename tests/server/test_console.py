"""The owners' console over real HTTP: sign in, review, approve with CSRF, audit, budgets."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from collabzone.errors import NotAuthorisedError
from collabzone.model import Request, RequestStatus
from collabzone.zone import connect
from tests.conftest import CUSTOMER_SPEC, Parties, write_customers
from tests.server.conftest import Handles, console_sign_in


def _pending(
    served: Handles, tmp_path: Path, approval: str = "manual", epsilon: float = 0.3
) -> Request:
    """The bank's dp_count on the partner's customers (waiting, or released if automatic)."""
    served.partner.add_dataset(
        "partner_data", write_customers(tmp_path / "p.csv", 50), CUSTOMER_SPEC
    )
    served.partner.add_agreement(
        "partner_data",
        grantees=["bank"],
        technique="dp_count",
        purposes=["marketing"],
        approval=approval,
        rules={"epsilon_budget": 2.0},
    )
    made = served.bank.submit(
        "dp_count", {"dataset": "partner_data", "epsilon": epsilon}, "marketing"
    )
    assert isinstance(made, Request)
    return made


def _visible(html: str) -> str:
    """The text a reader sees (tags and their attributes dropped)."""
    return re.sub(r"<[^>]+>", " ", html)


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


def test_owner_signs_in_reviews_and_approves(served: Handles, tmp_path: Path) -> None:
    request = _pending(served, tmp_path)
    assert served.server is not None
    with httpx.Client(base_url=served.server.url, timeout=30) as browser:
        assert browser.get("/console/").status_code == 303  # not signed in
        wrong = console_sign_in(browser, "czt_wrong")
        assert "matches no party" in wrong.text and "cz_session" not in browser.cookies
        signed_in = console_sign_in(browser, served.tokens["partner"])
        assert signed_in.status_code == 303
        cookie = signed_in.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        page = browser.get("/console/")
        assert request.id in page.text and "ε 0.3" in page.text
        assert "ε 2.0 of 2.0 left" in page.text and "ε 1.7 of 2.0 left" in page.text
        plan = served.partner.request_plan(request.id)  # the same plan over REST
        assert plan["standing"]["partner_data"]["spent"]["epsilon"] == 0.0
        forged = browser.post(
            f"/console/requests/{request.id}/approve", data={"reason": "x", "csrf": "0" * 32}
        )
        assert forged.status_code == 403
        assert served.bank.request(request.id).status is RequestStatus.AWAITING_APPROVAL
        detail = browser.get(f"/console/requests/{request.id}")
        approved = browser.post(
            f"/console/requests/{request.id}/approve",
            data={"reason": "fine by us", "csrf": _csrf(detail.text)},
        )
        assert approved.status_code == 303
        after = browser.get(approved.headers["location"])
        assert 'id="status">released' in after.text and "Privacy receipt" in after.text
        assert "partner_data: ε 1.7 left" in after.text
        assert "nothing awaits you" in browser.get("/console/").text.lower()
        assert "fine by us" in browser.get(f"/console/requests/{request.id}").text
        assert request.id in browser.get("/console/history").text
        assert "audit log intact" in browser.get("/console/audit").text
        budget = browser.get("/console/budget").text
        assert '<dd class="spent">ε 0.3 of 2.0</dd>' in budget
        assert '<dd class="remaining">ε 1.7 of 2.0</dd>' in budget
        assert budget.count("<svg") == 1 and 'class="cap"' in budget and "{&#39;" not in budget
        csrf = _csrf(browser.get("/console/").text)
        assert browser.post("/console/logout", data={"csrf": csrf}).status_code == 303
        stolen = httpx.get(
            f"{served.server.url}/console/", cookies={"cz_session": signed_in.cookies["cz_session"]}
        )
        assert stolen.status_code == 303  # the signed-out session is revoked


def test_bank_cannot_decide_for_the_owner_in_the_console(served: Handles, tmp_path: Path) -> None:
    request = _pending(served, tmp_path)
    assert served.server is not None
    with httpx.Client(base_url=served.server.url, timeout=30) as browser:
        console_sign_in(browser, served.tokens["bank"])
        detail = browser.get(f"/console/requests/{request.id}")
        assert 'id="approve"' not in detail.text
        response = browser.post(
            f"/console/requests/{request.id}/approve",
            data={"reason": "self", "csrf": _csrf(detail.text)},
        )
        assert response.status_code == 403 and 'role="alert"' in response.text
    assert served.bank.request(request.id).status is RequestStatus.AWAITING_APPROVAL


def test_history_and_audit_filter_and_page(served: Handles, tmp_path: Path) -> None:
    request = _pending(served, tmp_path)
    assert served.server is not None
    bank = connect(served.root, token=served.tokens["bank"])  # in-process: quick refusals
    for i in range(30):
        refused = bank.submit("dp_count", {"dataset": "partner_data", "epsilon": 0.1}, f"p{i}")
        assert isinstance(refused, Request) and refused.status is RequestStatus.REFUSED
    with httpx.Client(base_url=served.server.url, timeout=60) as browser:
        console_sign_in(browser, served.tokens["partner"])
        first = browser.get("/console/history").text
        assert "Page 1 of 2 (31 in all)" in first and "awaiting_approval" not in _visible(first)
        assert "refused</span>" in first and 'href="?page=2"' in first
        waiting = browser.get("/console/history", params={"status": "awaiting_approval"}).text
        assert request.id in waiting and "(1 in all)" in waiting
        assert "waiting for approval</span>" in waiting
        found = browser.get("/console/history", params={"q": "p29"}).text
        assert "(1 in all)" in found
    with httpx.Client(base_url=served.server.url, timeout=60) as browser:
        console_sign_in(browser, served.tokens["auditor"])  # reads it all
        audit = browser.get("/console/audit", params={"actor": "zone"}).text
        actors = re.findall(r"data-label=\"Actor\">([^<]+)</td>", audit)
        assert len(actors) == 50 and set(actors) == {"zone"}
        assert re.search(r"<time datetime=\"[^\"]+\">\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", audit)
        refusals = browser.get("/console/audit", params={"action": "request.refused"}).text
        assert "(30 in all)" in refusals
        later = browser.get("/console/audit", params={"since": "2999-01-01T00:00"}).text
        assert "No event matches" in later
        paged_out = browser.get("/console/audit", params={"page": "2"}).text
        assert "Page 2 of" in paged_out
    with httpx.Client(base_url=served.server.url, timeout=60) as browser:
        console_sign_in(browser, served.tokens["partner"])
        form = {"reason": "not this quarter", "csrf": _csrf(browser.get("/console/").text)}
        denied = browser.post(
            f"/console/requests/{request.id}/deny", data={**form, "back": "pending"}
        )
        assert denied.status_code == 303 and denied.headers["location"] == "/console/"
        shown = browser.get(f"/console/requests/{request.id}").text
        assert 'id="status">refused' in shown and "not this quarter" in shown


def test_console_errors_are_html_pages(served: Handles) -> None:
    assert served.server is not None
    with httpx.Client(base_url=served.server.url, timeout=30) as browser:
        console_sign_in(browser, served.tokens["partner"])
        for path, status, title in [
            ("/console/no-such-page", 404, "Page not found"),
            ("/console/requests/rq-000000000000", 404, "Page not found"),
            ("/console/audit?since=yesterday", 422, "Some input was not valid"),
        ]:
            page = browser.get(path)
            assert page.status_code == status, path
            assert page.headers["content-type"].startswith("text/html"), path
            assert title in page.text and '{"error"' not in page.text, path
        bad_form = browser.post("/console/requests/rq-000000000000/approve", data={})
        assert bad_form.status_code == 422 and "text/html" in bad_form.headers["content-type"]
        api = browser.get("/v1/requests/rq-000000000000")  # the API keeps its JSON errors
        assert api.headers["content-type"].startswith("application/json")
    anonymous = httpx.get(f"{served.server.url}/console/history")
    assert anonymous.status_code == 303 and anonymous.headers["location"] == "/console/login"


def test_request_plan_shows_what_is_asked_to_those_who_may_read_it(
    make_zone: Callable[[str | None], Parties], tmp_path: Path
) -> None:
    parties = make_zone(None)
    parties.partner.add_dataset("d", write_customers(tmp_path / "d.csv", 30), CUSTOMER_SPEC)
    parties.partner.add_agreement(
        "d", grantees=["bank"], technique="dp_count", purposes=["m"], approval="manual",
        rules={"epsilon_budget": 2.0, "budget_period": "month"},
    )  # fmt: skip
    asked = parties.bank.submit("dp_count", {"dataset": "d", "epsilon": 0.25, "by": "region"}, "m")
    assert isinstance(asked, Request)
    plan = parties.partner.request_plan(asked.id)
    assert plan["outputs"] == "noisy counts with 95% confidence intervals"
    assert plan["details"] == {"entity": "token", "by": "region"}
    standing = plan["standing"]["d"]
    assert standing["period"].startswith("month:") and standing["cap"]["epsilon"] == 2.0
    assert standing["spent"]["epsilon"] == 0.0
    with pytest.raises(NotAuthorisedError):
        parties.insurer.request_plan(asked.id)
