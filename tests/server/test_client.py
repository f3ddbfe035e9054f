"""The remote client without a server: injected transport (httpx.MockTransport)."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from collabzone.client import RateLimitedError, RemoteZone, ZoneUnavailableError
from collabzone.errors import BudgetExhaustedError, InvalidInputError, NotFoundError, PolicyRefusal

Handler = Callable[[httpx.Request], httpx.Response]


def _zone(handler: Handler, calls: list[str]) -> RemoteZone:
    def recording(request: httpx.Request) -> httpx.Response:
        calls.append(f"{request.method} {request.url.path}")
        if request.url.path == "/oauth/token":
            return httpx.Response(200, json={"access_token": f"t{len(calls)}", "expires_in": 3600})
        return handler(request)

    return RemoteZone("http://zone.test", client_id="bank", client_secret="czt_x",
                      transport=httpx.MockTransport(recording))  # fmt: skip


def _error(status: int, type_: str, **extra: object) -> httpx.Response:
    return httpx.Response(
        status, json={"error": {"type": type_, "code": "C", "message": "m", **extra}}
    )


def test_refusals_come_back_with_their_reasons() -> None:
    reason = {"code": "BUDGET_EXHAUSTED", "rule": "budget on d", "message": "m", "owner": "partner"}
    zone = _zone(lambda _: _error(403, "BudgetExhaustedError", reasons=[reason]), [])
    with pytest.raises(BudgetExhaustedError) as caught:
        zone.request("rq-1")
    assert isinstance(caught.value, PolicyRefusal)
    assert caught.value.reasons[0].owner == "partner"


def test_status_codes_map_when_the_body_is_not_ours() -> None:
    with pytest.raises(NotFoundError):
        _zone(lambda _: httpx.Response(404, text="<html>"), []).datasets()
    limited = _zone(lambda _: httpx.Response(429, headers={"Retry-After": "7"},
                                             json={"error": {"message": "slow"}}), [])  # fmt: skip
    with pytest.raises(RateLimitedError) as caught:
        limited.datasets()
    assert caught.value.retry_after == 7.0


def test_token_is_fetched_once_and_renewed_when_revoked() -> None:
    calls: list[str] = []
    zone = _zone(lambda _: httpx.Response(200, json=[]), calls)
    zone.datasets()
    zone.datasets()
    assert calls.count("POST /oauth/token") == 1
    zone.revoke_token()
    zone.datasets()
    assert calls.count("POST /oauth/token") == 2


def test_transport_failures_and_bad_specs() -> None:
    def down(_: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    with pytest.raises(ZoneUnavailableError):
        _zone(down, []).datasets()
    sent: list[bytes] = []

    def echo(request: httpx.Request) -> httpx.Response:
        sent.append(request.content)
        return httpx.Response(200, json={"technique": "dp_count"})

    import datetime as dt

    _zone(echo, []).price("dp_count", {"at": dt.date(2026, 1, 2)})
    assert json.loads(sent[0])["spec"] == {"at": "2026-01-02"}
    with pytest.raises(InvalidInputError):
        _zone(echo, []).submit("dp_count", ["not", "a", "mapping"])  # type: ignore[arg-type]
