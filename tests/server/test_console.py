"""The owners' console over real HTTP: sign in, review, approve with CSRF, audit, budgets."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import httpx

from collabzone.model import Request, RequestStatus
from collabzone.server._chart import Series, budget_series, svg_chart
from tests.conftest import CUSTOMER_SPEC, write_customers
from tests.server.conftest import Handles, console_sign_in


def _pending(served: Handles, tmp_path: Path) -> Request:
    served.partner.add_dataset(
        "partner_data", write_customers(tmp_path / "p.csv", 50), CUSTOMER_SPEC
    )
    served.partner.add_agreement(
        "partner_data",
        grantees=["bank"],
        technique="dp_count",
        purposes=["marketing"],
        approval="manual",
        rules={"epsilon_budget": 2.0},
    )
    made = served.bank.submit("dp_count", {"dataset": "partner_data", "epsilon": 0.3}, "marketing")
    assert isinstance(made, Request)
    return made


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
        assert request.id in page.text and "&#34;epsilon&#34;: 0.3" in page.text
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
        assert "nothing awaits you" in browser.get("/console/").text.lower()
        assert "fine by us" in browser.get(f"/console/requests/{request.id}").text
        assert request.id in browser.get("/console/history").text
        assert "audit log intact" in browser.get("/console/audit").text
        budget = browser.get("/console/budget").text
        assert "<svg" in budget and "bank on partner_data" in budget
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


def test_budget_series_is_cumulative_per_party_and_dataset() -> None:
    at = "2026-01-01T00:00:0{}+00:00"
    events = [
        {
            "seq": i,
            "action": "request.released",
            "subject": f"rq-{i}",
            "at": at.format(i),
            "details": {"receipt": {"budget_spent": {"d": {"epsilon": eps}}}},
        }
        for i, eps in enumerate([0.1, 0.2, 0.3])
    ] + [
        {
            "seq": 9,
            "action": "request.refused",
            "subject": "rq-9",
            "at": at.format(9),
            "details": {},
        }
    ]
    owners = {"rq-0": "bank", "rq-1": "other", "rq-2": "bank"}
    series = budget_series(events, owners)
    assert [(s.party, [round(v, 6) for _, v in s.points]) for s in series] == [
        ("bank", [0.1, 0.4]),
        ("other", [0.2]),
    ]
    svg = svg_chart(series)
    assert svg.count("<path") == 2 and "bank on d: 0.4" in svg
    hostile = Series("<script>", "d", ((dt.datetime(2026, 1, 1, tzinfo=dt.UTC), 1.0),))
    assert "<script>" not in svg_chart([hostile])
    assert "No privacy budget" in svg_chart([])
