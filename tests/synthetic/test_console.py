"""The request page shows the synthetic release's report: figures and facts, released data only."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from collabzone.client import connect_remote
from collabzone.keys import MASTER_KEY_ENV, new_master_key
from collabzone.model import Request, RequestStatus
from tests.server.conftest import console_sign_in, make_parties, start_server
from tests.synthetic.test_zone import SPEC, _write

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def released(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, dict[str, str], Request, Path]]:
    tmp_path = tmp_path_factory.mktemp("synthetic_console")
    with pytest.MonkeyPatch.context() as patch:  # one zone for the module: its own key
        patch.setenv(MASTER_KEY_ENV, new_master_key())
        _, tokens = make_parties(tmp_path / "zone")
        server = start_server(tmp_path / "zone")
    try:
        handles = {  # the release runs MST inside the request: a patient client
            name: connect_remote(
                server.url, client_id=name, client_secret=tokens[name], timeout=600
            )
            for name in ("bank", "partner")
        }
        data = _write(tmp_path / "c.csv", 300)
        handles["bank"].add_dataset("customers", data, SPEC)
        handles["bank"].add_agreement(
            "customers",
            grantees=["partner"],
            technique="synthetic",
            purposes=["exploration"],
            rules={"epsilon_budget": 2.0, "delta_budget": 1e-5},
        )
        spec = {"dataset": "customers", "epsilon": 1.0, "iters": 20, "bins": 4}
        made = handles["partner"].submit("synthetic", spec, "exploration")
        assert isinstance(made, Request) and made.status is RequestStatus.RELEASED, made
        yield server.url, tokens, made, data
    finally:
        server.stop()


def _section(page: str) -> str:
    found = re.search(r'<section id="result">(.*?)</section>', page, re.S)
    return found.group(1) if found else ""


def test_request_page_shows_the_report_figures_and_facts(released) -> None:  # type: ignore[no-untyped-def]
    url, tokens, request, _ = released
    with httpx.Client(base_url=url, timeout=60) as browser:
        console_sign_in(browser, tokens["partner"])
        shown = _section(browser.get(f"/console/requests/{request.id}").text)
    assert "1-way marginals: measured (noisy) vs synthetic" in shown
    assert "Association heat map" in shown
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', shown)
    assert len(images) == 2
    assert all(base64.b64decode(i).startswith(PNG_MAGIC) for i in images)
    for fact in ("tvd 1way vs measured", "tvd 2way vs measured", "epsilon", "rho spent"):
        assert fact in shown, fact
    with httpx.Client(base_url=url, timeout=60) as browser:  # the owner reads no payload
        console_sign_in(browser, tokens["bank"])
        page = browser.get(f"/console/requests/{request.id}").text
    assert not _section(page) and "data:image/png" not in page


def test_the_report_holds_noisy_measurements_never_exact_real_statistics(released) -> None:  # type: ignore[no-untyped-def]
    url, tokens, request, data = released
    partner = connect_remote(url, client_id="partner", client_secret=tokens["partner"])
    report = partner.result(request.id).payload["report"]
    assert set(report) == {"one_way", "association", "fidelity", "privacy"}
    real = pd.read_csv(data)
    region = next(m for m in report["one_way"] if m["column"] == "region")
    exact = [float((real["region"] == v).mean()) for v in ("north", "south", "east")]
    measured = region["measured"][:3]
    assert not np.allclose(measured, exact, atol=1e-6)  # noise, not the real shares
    assert region["labels"] == ["north", "south", "east", "other"]
    assert report["privacy"]["rho_spent"] == pytest.approx(report["privacy"]["rho"], rel=1e-9)
    assert report["fidelity"]["measured_1way_marginals"] == 3
