"""Remote datasets through both transports: registered over HTTP, sealed on the server,
queried in PostgreSQL; the connection string never comes back, local Spark is refused."""

from __future__ import annotations

import json

import pytest

from collabzone.errors import InvalidInputError
from collabzone.model import RequestStatus
from tests.server.conftest import Handles
from tests.sql.remote_support import URL
from tests.sql.test_remote_zone import RULES, Warehouse, warehouse  # noqa: F401 (fixture)
from tests.sql.test_zone import BANK_SPEC

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not URL, reason="COLLABZONE_TEST_POSTGRES_URL is not set"),
]


def test_register_and_query_a_remote_table(api: Handles, warehouse: Warehouse) -> None:  # noqa: F811
    made = api.bank.add_remote_dataset(
        "bank", BANK_SPEC, postgres=warehouse.url, table=f"{warehouse.schema}.bank"
    )
    assert made.row_count == 400
    api.bank.add_agreement(
        "bank", grantees=["partner"], technique="sql", purposes=["marketing"], rules=RULES
    )
    request = api.partner.submit(
        "sql", {"sql": "SELECT segment, COUNT(*) FROM bank GROUP BY segment"}, "marketing"
    )
    assert not isinstance(request, dict)
    assert request.status is RequestStatus.RELEASED, request.reasons
    rows = api.partner.result(request.id).payload["rows"]
    assert rows and "new" not in {r[0] for r in rows}
    seen = json.dumps(
        [[d.model_dump(mode="json") for d in api.partner.datasets()], api.bank.audit_events()],
        default=str,
    )
    assert warehouse.password not in seen and warehouse.role not in seen
    if api.transport == "remote":
        with pytest.raises(InvalidInputError, match="only through a cluster"):
            api.insurer.add_remote_dataset("lake", BANK_SPEC, spark="local[1]", path="/etc")
