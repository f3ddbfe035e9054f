"""The OpenAPI document describes failures as they are (issue 12 item 9): every route
lists the statuses it can answer, each with the one error body the API sends, and a 405
names every method the path serves."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.server.conftest import Shared

ERROR = "#/components/schemas/ErrorOut"


@pytest.fixture(scope="module")
def client(shared_server: Shared) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=shared_server.server.url, timeout=30) as http:
        yield http


def _refs(response: dict[str, Any]) -> set[str]:
    schema = response["content"]["application/json"]["schema"]
    options = schema.get("anyOf", [schema])
    return {option["$ref"] for option in options}


def test_every_api_route_documents_its_failures_with_the_error_body(client: httpx.Client) -> None:
    schema = client.get("/openapi.json").json()
    assert "HTTPValidationError" not in schema["components"]["schemas"]  # FastAPI's default
    operations = [
        (method, path, op)
        for path, ops in schema["paths"].items()
        for method, op in ops.items()
        if path.startswith("/v1/")
    ]
    assert len(operations) >= 35
    for method, path, op in operations:
        statuses = set(op["responses"])
        assert {"401", "403", "429"} <= statuses, (method, path)
        if "requestBody" in op:
            assert {"400", "413", "422"} <= statuses, (method, path)
        if "{" in path:
            assert "404" in statuses or "422" in statuses, (method, path)
        for status, response in op["responses"].items():
            if status.startswith(("4", "5")):
                assert _refs(response) == {ERROR}, (method, path, status)
        assert "Retry-After" in op["responses"]["429"]["headers"]
    token = schema["paths"]["/oauth/token"]["post"]["responses"]
    assert _refs(token["401"]) == {"#/components/schemas/OAuthErrorOut"}
    assert _refs(token["400"]) == {"#/components/schemas/OAuthErrorOut", ERROR}


@pytest.mark.parametrize(
    ("path", "methods"),
    [
        ("/v1/agreements", "GET, POST"),
        ("/v1/audit/verify", "GET, POST"),
        ("/v1/notifications", "GET, PUT"),
        ("/v1/me", "GET"),
        ("/v1/datasets/registered", "POST"),  # not DELETE of /v1/datasets/{name}
        ("/v1/datasets/some_name", "DELETE"),
    ],
)
def test_method_not_allowed_names_every_method_of_the_path(
    client: httpx.Client, path: str, methods: str
) -> None:
    answer = client.request("PATCH", path)
    assert answer.status_code == 405
    assert answer.headers["Allow"] == methods
    assert answer.json()["error"]["code"] == "HTTP_405"


def test_an_undocumented_body_shape_is_refused_with_the_error_body(client: httpx.Client) -> None:
    token = client.post("/oauth/token", data={"grant_type": "password", "client_secret": "x"})
    assert token.status_code == 400 and token.json()["error"] == "unsupported_grant_type"
    unreadable = client.post(
        "/v1/requests", content=b"\xff{", headers={"Content-Type": "application/json"}
    )
    assert unreadable.status_code in (400, 401)
    assert set(unreadable.json()["error"]) >= {"type", "code", "message"}


def test_schema_lists_the_registered_techniques(client: httpx.Client) -> None:
    from collabzone.techniques import registry

    schema = client.get("/openapi.json").json()["components"]["schemas"]
    assert schema["SubmitIn"]["properties"]["technique"]["enum"] == registry.names()
    assert schema["AgreementIn"]["properties"]["approval"]["enum"] == ["auto", "manual"]
