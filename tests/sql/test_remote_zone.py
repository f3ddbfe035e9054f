"""Remote datasets through the real zone: registration, governed SQL in PostgreSQL, and a
connection string that nothing a party reads ever shows.

Each test gets its own schema and its own read-only role with a random password on the
machine's PostgreSQL (both dropped afterwards).
"""

from __future__ import annotations

import json
import random
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from collabzone.errors import CollabzoneError, InvalidInputError
from collabzone.model import RequestStatus
from tests.conftest import Parties
from tests.sql.remote_support import URL, conninfo
from tests.sql.test_zone import BANK_SPEC, CONVERSION, PARTNER_SPEC

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not URL, reason="COLLABZONE_TEST_POSTGRES_URL is not set"),
]
RULES: dict[str, Any] = {
    "analysis": ["aggregation", "dp"],
    "min_group_size": 5,
    "max_rows_per_entity": 1,
    "max_groups_per_entity": 1,
    "epsilon_budget": 1.0,
}


@dataclass
class Warehouse:
    schema: str
    role: str
    password: str

    @property
    def url(self) -> str:
        host = conninfo().split("@", 1)[1]
        return f"postgresql://{self.role}:{self.password}@{host}"


@pytest.fixture
def warehouse() -> Iterator[Warehouse]:
    import psycopg

    tag = secrets.token_hex(4)
    found = Warehouse(f"cz_wh_{tag}", f"cz_ro_{tag}", secrets.token_urlsafe(18))
    rng = random.Random(3)
    bank = [
        (f"t{i}", "new" if i == 0 else rng.choice(["gold", "silver", "bronze"]), rng.randint(0, 1))
        for i in range(400)
    ]
    partner = [(f"t{i}", rng.choice(["sport", "home", "kids"])) for i in range(0, 600, 2)]
    s = found.schema
    with psycopg.connect(conninfo(), autocommit=True) as con:
        con.execute(f'CREATE SCHEMA "{s}"')
        con.execute(f'CREATE TABLE "{s}".bank (token text, segment text, converted integer)')
        con.execute(f'CREATE TABLE "{s}".partner (token text PRIMARY KEY, partner_segment text)')
        with con.cursor() as cur:
            cur.executemany(f'INSERT INTO "{s}".bank VALUES (%s, %s, %s)', bank)
            cur.executemany(f'INSERT INTO "{s}".partner VALUES (%s, %s)', partner)
        con.execute(f"CREATE ROLE \"{found.role}\" LOGIN PASSWORD '{found.password}'")
        con.execute(f'GRANT USAGE ON SCHEMA "{s}" TO "{found.role}"')
        con.execute(f'GRANT SELECT ON ALL TABLES IN SCHEMA "{s}" TO "{found.role}"')
    try:
        yield found
    finally:
        with psycopg.connect(conninfo(), autocommit=True) as con:
            con.execute(f'DROP SCHEMA "{s}" CASCADE')
            con.execute(f'DROP OWNED BY "{found.role}"')
            con.execute(f'DROP ROLE "{found.role}"')


def _register(parties: Parties, wh: Warehouse, *, partner_remote: bool = True) -> None:
    parties.bank.add_remote_dataset("bank", BANK_SPEC, postgres=wh.url, table=f"{wh.schema}.bank")
    if partner_remote:
        parties.partner.add_remote_dataset(
            "partner", PARTNER_SPEC, postgres=wh.url, table=f"{wh.schema}.partner"
        )
    for owner, dataset, grantee in (
        (parties.bank, "bank", "partner"),
        (parties.partner, "partner", "bank"),
    ):
        if dataset == "partner" and not partner_remote:
            continue
        owner.add_agreement(
            dataset, grantees=[grantee], technique="sql", purposes=["marketing"], rules=RULES
        )


@pytest.fixture
def parties(make_zone: Callable[[str | None], Parties]) -> Parties:
    return make_zone(None)


def test_governed_sql_runs_in_the_warehouse(parties: Parties, warehouse: Warehouse) -> None:
    _register(parties, warehouse)
    (bank,) = [d for d in parties.bank.datasets() if d.name == "bank"]
    assert bank.row_count == 400
    request = parties.bank.submit("sql", {"sql": CONVERSION}, "marketing")
    assert not isinstance(request, dict)
    assert request.status is RequestStatus.RELEASED, request.reasons
    rows = parties.bank.result(request.id).payload["rows"]
    assert {r[0] for r in rows} == {"sport", "home", "kids"} and all(r[1] >= 5 for r in rows)
    # the partner asks of the bank's table: the one-person segment is suppressed
    by_segment = parties.partner.submit(
        "sql", {"sql": "SELECT b.segment, COUNT(*) FROM bank b JOIN partner p "
                       "ON b.token = p.token GROUP BY b.segment"}, "marketing")  # fmt: skip
    assert not isinstance(by_segment, dict) and by_segment.status is RequestStatus.RELEASED
    shown = parties.partner.result(by_segment.id).payload["rows"]
    assert "new" not in {r[0] for r in shown}
    dp = parties.partner.submit(
        "sql", {"sql": "SELECT segment, COUNT(*) FROM bank GROUP BY segment", "epsilon": 0.5},
        "marketing")  # fmt: skip
    assert not isinstance(dp, dict) and dp.status is RequestStatus.RELEASED, dp.reasons
    assert parties.partner.receipt(dp.id).budget_spent["bank"]["epsilon"] == 0.5


def test_the_connection_string_is_never_shown(
    parties: Parties, warehouse: Warehouse, tmp_path: Path
) -> None:
    _register(parties, warehouse)
    request = parties.bank.submit("sql", {"sql": CONVERSION}, "marketing")
    assert not isinstance(request, dict)
    seen: list[Any] = [
        [d.model_dump(mode="json") for d in parties.bank.datasets()],
        [d.model_dump(mode="json") for d in parties.partner.datasets()],
        parties.bank.catalogue(),
        parties.bank.result(request.id).model_dump(mode="json"),
        parties.partner.receipt(request.id).model_dump(mode="json"),
        parties.auditor.audit_events(),
        parties.bank.audit_events(),
        parties.bank.request_plan(request.id),
        repr(parties.bank),
    ]
    # a failed registration and a failing query say nothing of it either
    for bad in (warehouse.url.replace(warehouse.role, warehouse.role + "x"),):
        with pytest.raises(InvalidInputError) as caught:
            parties.insurer.add_remote_dataset(
                "other", BANK_SPEC, postgres=bad, table=f"{warehouse.schema}.bank"
            )
        seen.append(str(caught.value))
    text = json.dumps(seen, default=str)
    assert warehouse.password not in text
    assert warehouse.role not in text
    # at rest: sealed (neither the metadata database nor any zone file holds it in clear)
    for path in parties.root.rglob("*"):
        if path.is_file():
            assert warehouse.password.encode() not in path.read_bytes(), path


def test_registration_checks_the_table_against_the_spec(
    parties: Parties, warehouse: Warehouse
) -> None:
    wrong = {"columns": [*BANK_SPEC["columns"][:2],
                         {"name": "converted", "type": "string", "class": "dimension"}]}  # fmt: skip
    with pytest.raises(InvalidInputError, match=r"'converted' is integer .* not string"):
        parties.bank.add_remote_dataset(
            "bank", wrong, postgres=warehouse.url, table=f"{warehouse.schema}.bank"
        )
    unique = {"columns": [{**BANK_SPEC["columns"][0], "unique": True}, *BANK_SPEC["columns"][1:]]}
    with pytest.raises(InvalidInputError, match="no unique index"):
        parties.bank.add_remote_dataset(
            "bank", unique, postgres=warehouse.url, table=f"{warehouse.schema}.bank"
        )
    with pytest.raises(InvalidInputError, match="does not exist"):
        parties.bank.add_remote_dataset(
            "bank", BANK_SPEC, postgres=warehouse.url, table=f"{warehouse.schema}.nothing"
        )
    with pytest.raises(InvalidInputError, match=r"schema\.table"):
        parties.bank.add_remote_dataset(
            "bank", BANK_SPEC, postgres=warehouse.url, table='x"; DROP TABLE bank; --'
        )
    assert parties.bank.datasets() == []
    # the partner's token is a primary key: unique: true is accepted there
    spec = {"columns": [{**PARTNER_SPEC["columns"][0], "unique": True},
                        *PARTNER_SPEC["columns"][1:]]}  # fmt: skip
    made = parties.partner.add_remote_dataset(
        "partner", spec, postgres=warehouse.url, table=f"{warehouse.schema}.partner"
    )
    assert made.row_count == 300 and made.columns[0].unique


def test_a_remote_and_an_ingested_dataset_are_not_joined(
    parties: Parties, warehouse: Warehouse, tmp_path: Path
) -> None:
    _register(parties, warehouse, partner_remote=False)
    path = tmp_path / "partner.csv"
    path.write_text("token,partner_segment\n" + "".join(f"t{i},home\n" for i in range(0, 60, 2)))
    parties.partner.add_dataset("partner", path, PARTNER_SPEC)
    parties.partner.add_agreement(
        "partner", grantees=["bank"], technique="sql", purposes=["marketing"], rules=RULES
    )
    request = parties.bank.submit("sql", {"sql": CONVERSION}, "marketing")
    assert not isinstance(request, dict)
    assert request.status is not RequestStatus.RELEASED
    assert any("'bank' is left in PostgreSQL and 'partner' is held" in r for r in request.reasons)


def test_other_techniques_refuse_a_remote_dataset(parties: Parties, warehouse: Warehouse) -> None:
    _register(parties, warehouse)
    parties.bank.add_agreement(
        "bank", grantees=["partner"], technique="dp_count", purposes=["marketing"],
        rules={"epsilon_budget": 1.0},
    )  # fmt: skip
    request = parties.partner.submit("dp_count", {"dataset": "bank", "epsilon": 0.1}, "marketing")
    assert not isinstance(request, dict)
    assert request.status is not RequestStatus.RELEASED
    assert any("only governed SQL" in r for r in request.reasons), request.reasons


def test_key_rotation_reseals_the_location(parties: Parties, warehouse: Warehouse) -> None:
    _register(parties, warehouse)
    parties.operator.rotate_key("data-at-rest")
    request = parties.bank.submit("sql", {"sql": CONVERSION}, "marketing")
    assert not isinstance(request, dict) and request.status is RequestStatus.RELEASED


def test_cli_add_remote_reads_the_url_from_the_environment(
    parties: Parties, warehouse: Warehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from collabzone import cli

    spec = tmp_path / "bank.json"
    spec.write_text(json.dumps(BANK_SPEC))
    monkeypatch.setenv("COLLABZONE_ZONE", str(parties.root))
    monkeypatch.setenv("COLLABZONE_TOKEN", parties.tokens["bank"])
    monkeypatch.setenv("COLLABZONE_WAREHOUSE_URL", warehouse.url)
    runner = CliRunner()
    result = runner.invoke(
        cli.app, ["dataset", "add-remote", "bank", "--table", f"{warehouse.schema}.bank",
                  "--spec", str(spec)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "400 rows" in result.output and warehouse.password not in result.output
    listed = runner.invoke(cli.app, ["dataset", "list"])
    assert "bank" in listed.output and warehouse.password not in listed.output


def test_unreachable_warehouse_is_one_fixed_message(parties: Parties) -> None:
    with pytest.raises(CollabzoneError) as caught:
        parties.bank.add_remote_dataset(
            "bank", BANK_SPEC, postgres="postgresql://ro:hunter2@127.0.0.1:1/x", table="a.b"
        )
    assert "could not reach the PostgreSQL warehouse" in str(caught.value)
    assert "hunter2" not in str(caught.value)
