"""The browser survey test: Chromium fills the zone's survey page; no server gets a plain answer.

A real zone server process serves the page (``COLLABZONE_SURVEY_DIR`` configures its
survey directory); Playwright drives Debian's headless Chromium, as tests/server/
test_browser.py does. Two respondents answer through their invitation links; the page's
script splits each answer into three Shamir shares (threshold 1) and seals one to each
compute server. Then each server opens its own inbox: its shares alone are not the answer
(no entry is 0 or the encoded 1), any two servers' shares reconstruct it, a re-used link
is refused in the page, and the report, run by three real MPyC processes, gives the
recipient the counts.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from collabzone.keys import MASTER_KEY_ENV
from collabzone.model import Request, RequestStatus
from collabzone.techniques import registry
from collabzone.techniques.mpc import (
    ProcessDriver,
    ShareStore,
    Survey,
    SurveyBox,
    SurveyDriver,
    open_survey,
    publish_server_key,
)
from collabzone.techniques.mpc._shares import frac_length, recombine
from collabzone.techniques.mpc._survey import one_hot
from collabzone.techniques.mpc._survey_box import open_inbox
from collabzone.techniques.mpc.survey_page import SCRIPT
from tests.server.conftest import (
    Server,
    console_sign_in,
    make_parties,
    servers,
    start_server,
)
from tests.server.test_browser import ARGS, CHROMIUM, DESKTOP

PURPOSE = "member satisfaction"
__all__ = ["servers"]  # the fixture, re-used from tests/server
QUESTIONS = [
    {"text": "How satisfied are you?", "answers": ["1", "2", "3", "4", "5"]},
    {"text": "Would you recommend us?", "answers": ["yes", "no"]},
    {"text": "Which branch do you use?", "answers": ["north", "south", "online"]},
]
CHOICES = [[3, 0, 2], [1, 1, 2]]  # what the two respondents click


@pytest.fixture
def browser_page() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport=DESKTOP)
            page.set_default_timeout(60_000)
            yield page
        finally:
            browser.close()


@pytest.mark.slow
def test_browser_splits_answers_no_server_receives_a_plain_answer(
    tmp_path: Path, servers: list[Server], browser_page: Any
) -> None:
    root, outbox = tmp_path / "surveys", tmp_path / "outbox"
    master_key = os.environ[MASTER_KEY_ENV]
    operator, tokens = make_parties(tmp_path / "zone")
    stores = [ShareStore(tmp_path / f"s{i}", master_key) for i in range(3)]
    for i, store in enumerate(stores):
        operator.add_party(f"s{i}", ["compute"])
        publish_server_key(root, f"s{i}", store.inbox_public())
    bank, partner = operator.as_party(tokens["bank"]), operator.as_party(tokens["partner"])
    partner.register_dataset(
        "members", {"columns": [{"name": "m", "type": "string", "class": "join_key"}]},
        row_count=20,
    )  # fmt: skip
    partner.add_agreement(
        "members", grantees=["bank"], technique="survey", purposes=[PURPOSE],
        rules={"recipients": ["bank"], "min_group_size": 2},
    )  # fmt: skip
    driver = SurveyDriver(stores, ProcessDriver([s.root for s in stores], outbox))
    registry.register("survey", Survey(root, driver))
    try:
        spec = {
            "title": "Members 2026", "questions": QUESTIONS, "recipient": "bank",
            "dataset": "members", "servers": ["s0", "s1", "s2"], "threshold": 1,
            "invitations": 5, "min_respondents": 2,
        }  # fmt: skip
        opened = bank.submit("survey", spec, PURPOSE)
        assert isinstance(opened, Request) and opened.status is RequestStatus.RELEASED
        links = partner.result(opened.id).payload["invitation_links"]
        box = SurveyBox(root, bank.result(opened.id).payload["survey"])
        server = start_server(tmp_path / "zone", env={"COLLABZONE_SURVEY_DIR": str(root)})
        servers.append(server)

        page = browser_page
        posted: list[str] = []
        page.on(
            "request", lambda r: posted.append(r.post_data or "") if r.method == "POST" else None
        )
        for link, choices in zip(links, CHOICES, strict=False):
            page.goto("about:blank")  # links differ in their fragment only: load afresh
            page.goto(server.url + link)
            for q, choice in enumerate(choices):
                page.check(f"input[name=q{q}][value='{choice}']")
            page.click("#send")
            page.wait_for_selector("text=Thank you")
        # the same link again: refused in the page, nothing stored
        page.goto("about:blank")
        page.goto(server.url + links[0])
        page.check("input[name=q0][value='0']")
        page.check("input[name=q1][value='0']")
        page.check("input[name=q2][value='0']")
        page.click("#send")
        page.wait_for_selector("text=already used")
        assert box.status() == {"answered": 2, "unused": 3}

        # what left the browser: sealed shares only, never the answers' words or choices
        assert len(posted) == 3
        for body in posted:
            doc = json.loads(body)
            assert set(doc) == {"token", "sealed"} and len(doc["sealed"]) == 3
            assert not any(word in body for word in ("north", "south", "online", '"yes"'))

        # each server alone: its shares are not the answers; two servers reconstruct them
        survey = box.spec()
        width, one = len(survey.columns()), 1 << frac_length()
        opened_shares = [
            open_inbox(box.inbox(i), s.inbox_key(), box.id, i, width) for i, s in enumerate(stores)
        ]
        ids = sorted(opened_shares[0])
        assert len(ids) == 2 and all(sorted(o) == ids for o in opened_shares)
        expected = sorted(one_hot(survey, c) for c in CHOICES)
        for pair in ((0, 1), (0, 2), (1, 2)):
            rebuilt = sorted(recombine({i: opened_shares[i][a] for i in pair}, 1) for a in ids)
            assert rebuilt == expected
        for shares in opened_shares:
            for answer_id in ids:
                assert shares[answer_id] not in expected
                assert not set(shares[answer_id]) & {0, one}

        # the report: three MPyC processes; the recipient opens the counts
        report = bank.submit("survey", {"close": box.id}, PURPOSE)
        assert isinstance(report, Request) and report.status is RequestStatus.RELEASED, (
            report.reasons
        )
        result = open_survey(bank.result(report.id).payload, survey, "bank")
        assert result["respondents"] == 2
        counts = [q["counts"] for q in result["questions"]]
        assert counts[0] == {"1": 0, "2": 1, "3": 0, "4": 1, "5": 0}
        assert counts[1] == {"yes": 1, "no": 1}
        assert counts[2] == {"north": 0, "south": 0, "online": 2}
        assert result["questions"][0]["mean"] == pytest.approx(3.0)

        # the organiser's console: the report's status, never a count
        with httpx.Client(base_url=server.url, timeout=60) as client:
            console_sign_in(client, tokens["bank"])
            html = client.get(f"/console/requests/{report.id}").text
        assert "counts computed" in html and "only the recipient" in html

        # a closed survey's page says so
        page.goto("about:blank")
        page.goto(server.url + links[2])
        assert "closed" in page.inner_text("body")
    finally:
        registry.register("survey", "collabzone.techniques.mpc:Survey")


def test_the_script_is_local_and_uses_web_crypto() -> None:
    """No CDN, Web Crypto randomness, BigInt field arithmetic (what the CSP allows)."""
    text = SCRIPT.read_text("utf-8")
    assert "crypto.getRandomValues" in text and "BigInt(" in text and "crypto.subtle" in text
    assert "http" not in text and "Math.random" not in text
