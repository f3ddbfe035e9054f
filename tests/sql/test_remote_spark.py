"""The same governed questions on DuckDB, PostgreSQL and Spark (local mode) agree.

One Spark session for the module (the JVM starts once); the fake zone's tables are written
as Parquet files Spark reads in place, and loaded into a PostgreSQL schema for the third
engine. Released rows, suppressions and refusals must be identical on the three.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from collabzone.errors import CollabzoneError
from collabzone.remote_tables import Location, SparkTable
from tests.conftest import Parties
from tests.sql.remote_support import URL, pg_schema, remote_copy
from tests.sql.sql_support import DP_RULES, FakeZone, make_fake_zone
from tests.sql.test_remote_postgres import EXACT, _answer
from tests.sql.test_remote_postgres import QUERIES as PG_QUERIES

pytest.importorskip("pyspark")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.postgres,
    pytest.mark.skipif(not URL, reason="COLLABZONE_TEST_POSTGRES_URL is not set"),
]
MASTER = "local[1]"


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("lake")
    for name, table in make_fake_zone().tables.items():
        pq.write_table(table, root / f"{name}.parquet")
    return root


@pytest.fixture(scope="module")
def schema() -> Iterator[str]:
    with pg_schema(make_fake_zone().tables) as name:
        yield name


def _spark(zone: FakeZone, lake: Path) -> FakeZone:
    def opener(dataset: str) -> SparkTable:
        return SparkTable(Location("spark", ("parquet", str(lake / f"{dataset}.parquet")), MASTER))

    return remote_copy(zone, opener=opener)


QUERIES = [PG_QUERIES[i] for i in (0, 1, 2, 3, 5)]  # the engine-equality subset Spark runs


@pytest.mark.parametrize("party", ["analyst", "bank"])
@pytest.mark.parametrize("sql", QUERIES)
def test_same_answer_on_duckdb_postgres_and_spark(
    lake: Path, schema: str, sql: str, party: str
) -> None:
    local = make_fake_zone(EXACT, EXACT)
    expected = _answer(local, party, {"sql": sql})
    assert _answer(remote_copy(local, schema), party, {"sql": sql}) == expected
    assert _answer(_spark(local, lake), party, {"sql": sql}) == expected


def test_a_differencing_sequence_is_withheld_alike_on_spark(lake: Path) -> None:
    local = make_fake_zone(EXACT, EXACT)
    spark = _spark(local, lake)
    sequence = [
        "SELECT COUNT(*) FROM bank",
        "SELECT segment, COUNT(*) FROM bank GROUP BY segment",
        "SELECT COUNT(*) FROM bank WHERE segment IN ('gold', 'silver', 'bronze')",
        "SELECT COUNT(*) FROM bank WHERE age > 30",
        "SELECT COUNT(*) FROM bank WHERE age > 31",
    ]
    answers: list[Any] = []
    for sql in sequence:
        expected = _answer(local, "analyst", {"sql": sql})
        assert _answer(spark, "analyst", {"sql": sql}) == expected, sql
        answers.append(expected)
    assert any(isinstance(a, dict) and not a["rows"] for a in answers)


def test_dp_runs_bounded_in_spark(lake: Path) -> None:
    spark = _spark(make_fake_zone(DP_RULES, DP_RULES), lake)
    sql = (
        "SELECT b.segment, COUNT(*), SUM(b.balance) FROM bank b JOIN shop s ON b.pid = s.pid "
        "GROUP BY b.segment"
    )
    payload = spark.submit("analyst", {"sql": sql, "epsilon": 1.0})
    assert payload["analysis"] == "dp" and payload["spent"]["epsilon"] == 1.0
    assert {row[0] for row in payload["rows"]} <= {"gold", "silver", "bronze", "new"}
    with pytest.raises(CollabzoneError, match="MEDIAN"):
        spark.submit("analyst", {"sql": "SELECT MEDIAN(balance) FROM bank", "epsilon": 1.0})


def test_spark_checks_columns_and_refuses_constraints_it_cannot_enforce(lake: Path) -> None:
    from collabzone.model import Column
    from collabzone.remote_tables import check_spark_columns

    table = SparkTable(Location("spark", ("parquet", str(lake / "bank.parquet")), MASTER))
    found = table.describe()
    assert found["age"][0] == "bigint" and table.count() == 600
    ok = Column.model_validate({"name": "age", "type": "integer", "class": "dimension"})
    check_spark_columns([ok], found, "bank.parquet")
    wrong = Column.model_validate({"name": "age", "type": "string", "class": "dimension"})
    unique = Column.model_validate(
        {"name": "pid", "type": "string", "class": "join_key", "unique": True}
    )
    with pytest.raises(CollabzoneError, match=r"'age' is bigint .*'pid': Spark enforces no"):
        check_spark_columns([wrong, unique], found, "bank.parquet")


def test_a_parquet_lake_registered_in_the_zone_is_queried_by_spark(
    make_zone: Callable[[str | None], Parties], tmp_path: Path
) -> None:
    import pyarrow as pa

    from collabzone.model import RequestStatus
    from tests.sql.test_zone import BANK_SPEC

    rows = 200
    pq.write_table(
        pa.table({
            "token": [f"t{i}" for i in range(rows)],
            "segment": ["new" if i == 0 else ["gold", "silver", "bronze"][i % 3] for i in range(rows)],
            "converted": [i % 2 for i in range(rows)],
        }),
        tmp_path / "bank.parquet",
    )  # fmt: skip
    parties = make_zone(None)
    made = parties.bank.add_remote_dataset(
        "bank", BANK_SPEC, spark=MASTER, path=str(tmp_path / "bank.parquet")
    )
    assert made.row_count == rows
    parties.bank.add_agreement(
        "bank", grantees=["partner"], technique="sql", purposes=["marketing"],
        rules={"analysis": ["aggregation"], "min_group_size": 5},
    )  # fmt: skip
    request = parties.partner.submit(
        "sql", {"sql": "SELECT segment, COUNT(*) FROM bank GROUP BY segment"}, "marketing"
    )
    assert not isinstance(request, dict)
    assert request.status is RequestStatus.RELEASED, request.reasons
    shown = {r[0]: r[1] for r in parties.partner.result(request.id).payload["rows"]}
    assert "new" not in shown and sum(shown.values()) == rows - 1


def test_a_rewritten_parquet_file_is_read_anew_by_the_next_request(tmp_path: Path) -> None:
    """The session keeps a Parquet view between requests (reading a path is a Spark job):
    once the file changes, the next request must see the new rows, not the old listing."""
    import pyarrow as pa

    bank, shop = make_fake_zone().tables["bank"], make_fake_zone().tables["shop"]
    for name, table in (("bank", bank), ("shop", shop)):
        pq.write_table(table, tmp_path / f"{name}.parquet")
    zone = _spark(make_fake_zone(EXACT, EXACT), tmp_path)
    sql = {"sql": "SELECT COUNT(*) FROM bank"}
    assert zone.submit("analyst", sql)["rows"] == [[bank.num_rows]]
    pq.write_table(pa.concat_tables([bank, bank.slice(0, 7)]), tmp_path / "bank.parquet")
    assert zone.submit("analyst", sql)["rows"] == [[bank.num_rows + 7]]
