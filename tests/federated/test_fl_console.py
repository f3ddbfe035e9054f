"""The console's request page: the owner's risk summary with the membership check before
approval, then the released federated job's facts and curves for the analyst."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from collabzone.model import RequestStatus
from collabzone.techniques.federated._technique import result_view
from tests.conftest import Parties
from tests.federated.zone_support import make_nodes, run_through, submit
from tests.server.conftest import console_sign_in, start_server


def test_the_request_page_shows_the_accuracy_curve(sqlite_zone: Parties, tmp_path: Path) -> None:
    nodes = make_nodes(sqlite_zone, tmp_path)
    request_id = submit(nodes)
    server = start_server(sqlite_zone.root)
    try:
        with httpx.Client(base_url=server.url, timeout=60) as browser:
            # the owner deciding sees the membership-inference check in the risk summary
            console_sign_in(browser, sqlite_zone.tokens["partner"])
            page = browser.get(f"/console/requests/{request_id}").text
            found = re.search(r'<ul id="risk">(.*?)</ul>', page, re.S)
            assert found and "membership inference (loss threshold" in found.group(1)
        assert run_through(nodes, request_id).status is RequestStatus.RELEASED
        payload = nodes.world.analyst.result(request_id).payload
        view = result_view(payload)
        assert ("rounds run", "4") in view.facts
        assert [c.y_label for c in view.curves] == ["accuracy", "loss"]
        (accuracy,) = view.curves[0].lines.values()
        assert [x for x, _ in accuracy] == [1.0, 2.0, 3.0, 4.0]
        with httpx.Client(base_url=server.url, timeout=30) as browser:
            console_sign_in(browser, nodes.world.analyst_token)
            page = browser.get(f"/console/requests/{request_id}").text
            found = re.search(r'<section id="result">(.*?)</section>', page, re.S)
            assert found, "the analyst sees a Result section"
            shown = found.group(1)
            assert "<svg" in shown and "Accuracy per round" in shown
            assert shown.count('class="line"') == 2  # accuracy and loss
            assert "epsilon spent (client-level)" in shown and "sealed model" in shown
        with httpx.Client(base_url=server.url, timeout=30) as browser:
            console_sign_in(browser, sqlite_zone.tokens["bank"])
            page = browser.get(f"/console/requests/{request_id}").text
            assert "Privacy receipt" in page and '<section id="result">' not in page
    finally:
        server.stop()
