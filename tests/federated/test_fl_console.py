"""The console's request page: the owner's risk summary with the membership check before
approval, then the released federated job's facts and curves for the analyst."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from collabzone.model import RequestStatus
from collabzone.techniques.federated._technique import result_view
from collabzone.zone import connect
from tests.conftest import Parties
from tests.federated.zone_support import make_nodes, run_through, submit
from tests.server.conftest import console_sign_in, free_port, start_server


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


def test_a_running_job_shows_its_progress_in_the_console_api_and_cli(
    sqlite_zone: Parties, tmp_path: Path
) -> None:
    """The aggregator took the job and audited two of four rounds: the analyst's page
    shows round 2 of 4 with the accuracy curve and refreshes itself, the API and
    ``fl status`` say the same; once released, the page has no Progress section."""
    from typer.testing import CliRunner

    from collabzone.cli import app

    nodes = make_nodes(sqlite_zone, tmp_path)
    request_id = submit(nodes)
    for owner, agent in nodes.agents.items():
        agent.approve(request_id, f"{owner}: as agreed")
    nodes.host.start_fanout(request_id, {"aggregator": "in-process"})
    owners = sorted(nodes.agents)
    for r, accuracy in ((1, 0.61), (2, 0.72)):
        nodes.host.job_event(request_id, "federated.round", {
            "round": r, "clients": owners, "clipping_norm": 1.0, "noise_std": 2.0,
            "epsilon": 0.5 * r, "accuracy": accuracy, "loss": 1.0 - accuracy,
        })  # fmt: skip
    import threading
    import time

    import uvicorn

    from collabzone.server import ServerSettings, create_app

    host = connect(sqlite_zone.root, host=True)
    app_ = create_app(ServerSettings(zone_dir=sqlite_zone.root), host)
    port = free_port()  # in this process: no interpreter start (the page is the point)
    server = uvicorn.Server(
        uvicorn.Config(app_, host="127.0.0.1", port=port, log_level="error", ws="none")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    try:
        browser = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)
        console_sign_in(browser, nodes.world.analyst_token)
        page = browser.get(f"/console/requests/{request_id}").text
        found = re.search(r'<section id="progress"[^>]*>(.*?)</section>', page, re.S)
        assert found, "a running job has a Progress section"
        shown = found.group(1)
        assert "round 2 of 4" in shown and "Accuracy per round" in shown
        assert shown.count('class="line"') == 2
        assert '<meta http-equiv="refresh" content="5">' in page
        token = browser.post("/oauth/token", data={
            "grant_type": "client_credentials", "client_id": "lab",
            "client_secret": nodes.world.analyst_token,
        }).json()["access_token"]  # fmt: skip
        doc = browser.get(f"/v1/requests/{request_id}/progress",
                          headers={"Authorization": f"Bearer {token}"}).json()  # fmt: skip
        assert (doc["round"], doc["rounds"], doc["status"]) == (2, 4, "running")
        assert doc["clients"] == owners and doc["last"] == {"accuracy": 0.72, "loss": 0.28}
        assert [m["round"] for m in doc["metrics"]] == [1, 2]
    finally:
        server.should_exit = True
        thread.join(10)
    cli = CliRunner().invoke(app, ["--zone", str(sqlite_zone.root), "--token",
                                   nodes.world.analyst_token, "fl", "status", request_id])  # fmt: skip
    assert cli.exit_code == 0, cli.output
    assert "running" in cli.output and "round 2 of 4" in cli.output and "0.72" in cli.output
