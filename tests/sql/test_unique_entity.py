"""A join key declared ``unique`` (one row per person, checked at ingest) lets DP skip the
per-person bounding step on queries that read that table alone, or join it only on keys
declared unique on both sides; and only then.

The owner declares it in the dataset spec; ingest refuses a file where a value repeats
(naming the line), so the shortcut rests on a checked fact, not on trust (smartnoise's
``max_ids: 1`` is trusted metadata). A join on a column that may repeat can put one
person on many rows, so such a query keeps the bounding, whoever owns that table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from collabzone.errors import InvalidInputError
from collabzone.ingest import parse_spec, read_file
from collabzone.model import Column
from tests.sql.sql_support import (
    BANK,
    DP_RULES,
    SHOP,
    FakeZone,
    agreement,
    bank_people,
    dataset,
    shop_people,
)


def _unique(ds: Any) -> Any:
    """``ds`` with its join key ``pid`` declared unique."""
    columns = [
        Column.model_validate({**c.model_dump(by_alias=True), "unique": True})
        if c.name == "pid"
        else c
        for c in ds.columns
    ]
    return dataset(ds.name, ds.owner, columns, ds.row_count)


def _zone(bank: Any, tables: dict[str, pa.Table], rules: dict[str, Any]) -> FakeZone:
    return FakeZone(
        datasets={"bank": bank, "shop": _unique(SHOP)},
        agreements=[agreement("bank", "bank", rules), agreement("shop", "shop", rules)],
        tables=tables,
    )


def _rewritten(zone: FakeZone, sql: str) -> str:
    """The SQL the engine runs for a DP query (what the bounding step made of it)."""
    from collabzone.techniques.sql._technique import compile_for

    ctx = zone.as_party("analyst")
    try:
        compiled = compile_for({"sql": sql, "epsilon": 1.0}, ctx)  # type: ignore[arg-type]
        return compiled.rewritten().sql(dialect="duckdb")
    finally:
        ctx.close()


def test_ingest_refuses_a_repeated_value_in_a_unique_column(tmp_path: Path) -> None:
    spec = parse_spec(
        {"columns": [{"name": "pid", "type": "string", "class": "join_key", "unique": True},
                     {"name": "segment", "type": "string", "class": "dimension"}]}
    )  # fmt: skip
    good = tmp_path / "good.csv"
    good.write_text("pid,segment\na,x\nb,y\nc,x\n", encoding="utf-8")
    assert read_file(good, spec).num_rows == 3
    bad = tmp_path / "bad.csv"
    bad.write_text("pid,segment\na,x\nb,y\nc,x\nb,z\n", encoding="utf-8")
    with pytest.raises(InvalidInputError) as refused:
        read_file(bad, spec)
    message = str(refused.value)
    assert "line 5" in message and "'pid'" in message and "unique" in message
    assert "nothing was stored" in message


def test_a_unique_key_drops_the_per_person_step_unless_a_join_can_repeat_someone() -> None:
    zone = _zone(_unique(BANK), {"bank": bank_people(), "shop": shop_people()}, DP_RULES)
    alone = _rewritten(zone, "SELECT segment, COUNT(*) FROM bank GROUP BY segment")
    assert "ARG_MIN" not in alone and 'GROUP BY "bank"."pid"' not in alone
    joined = _rewritten(
        zone,
        "SELECT b.segment, COUNT(*) FROM bank b JOIN shop s ON b.pid = s.pid GROUP BY b.segment",
    )
    # both sides one row per key (checked at ingest): the join cannot repeat anyone
    assert "ARG_MIN" not in joined and 'GROUP BY "b"."pid"' not in joined
    repeating = FakeZone(
        datasets={"bank": _unique(BANK), "shop": SHOP},  # shop's pid may repeat
        agreements=[agreement("bank", "bank", DP_RULES), agreement("shop", "shop", DP_RULES)],
        tables={"bank": bank_people(), "shop": shop_people()},
    )
    joined = _rewritten(
        repeating,
        "SELECT b.segment, COUNT(*) FROM bank b JOIN shop s ON b.pid = s.pid GROUP BY b.segment",
    )
    # a join can repeat a person: bounded per person again (ARG_MIN, or one MIN when the
    # groups are public and the kept row is packed)
    assert 'GROUP BY "b"."pid"' in joined
    on_token = _rewritten(  # joined on another column than the unique one: bounded
        zone,
        "SELECT b.segment, COUNT(*) FROM bank b JOIN shop s ON b.pid = s.token GROUP BY b.segment",
    )
    assert 'GROUP BY "b"."pid"' in on_token
    plain = _zone(BANK, {"bank": bank_people(), "shop": shop_people()}, DP_RULES)
    assert 'GROUP BY "bank"."pid"' in _rewritten(
        plain, "SELECT segment, COUNT(*) FROM bank GROUP BY segment"
    )


def test_unique_key_answers_match_the_bounded_path_and_need_no_derived_limits() -> None:
    """Same exact counts behind the noise, and no budget spent deriving limits that the
    checked declaration already fixes at one row per person."""
    rules = {"analysis": ["dp"], "max_epsilon_per_query": 5.0}  # no limits in the agreement
    tables = {"bank": bank_people(), "shop": shop_people()}
    payload, outcome = _zone(_unique(BANK), tables, rules).submit_outcome(
        "analyst", {"sql": "SELECT segment, COUNT(*) AS n FROM bank GROUP BY segment",
                    "epsilon": 4.0}
    )  # fmt: skip
    assert not any("derived privately" in note for note in payload["notes"])
    assert payload["contribution_bounds"]["max_rows_per_entity"] == 1
    assert outcome.spent["bank"].epsilon == 4.0
    truth = tables["bank"].group_by("segment").aggregate([("pid", "count")]).to_pylist()
    exact = {row["segment"]: row["pid_count"] for row in truth}
    released = {row[0]: row[1] for row in payload["rows"]}
    for segment, count in released.items():  # epsilon 4 on counts: noise of a few units
        assert abs(count - exact[segment]) <= 15, (segment, count, exact[segment])


def test_a_join_still_caps_one_person_repeated_by_the_other_side() -> None:
    """The attacker owns the other table and points 300 rows at one person of a table whose
    key is declared unique: the join is still bounded, the person still counts once."""
    bank = bank_people()
    victim = bank.column("pid")[1].as_py()
    shop = shop_people()
    flood = pa.table({
        "pid": [victim] * 300, "token": [f"x{i}" for i in range(300)],
        "shop_segment": ["sport"] * 300, "spend": [1.0] * 300,
    })  # fmt: skip
    shop_rows = pa.concat_tables([shop, flood.cast(shop.schema)])
    shop_ds = dataset("shop", "shop", list(SHOP.columns), shop_rows.num_rows)  # not unique
    zone = FakeZone(
        datasets={"bank": _unique(BANK), "shop": shop_ds},
        agreements=[agreement("bank", "bank", DP_RULES), agreement("shop", "shop", DP_RULES)],
        tables={"bank": bank, "shop": shop_rows},
    )
    sql = (
        "SELECT s.shop_segment, COUNT(*) AS n FROM bank b JOIN shop s ON b.pid = s.pid "
        "GROUP BY s.shop_segment"
    )
    payload = zone.submit("analyst", {"sql": sql, "epsilon": 4.0})
    released = {row[0]: row[1] for row in payload["rows"]}
    matched = set(bank.column("pid").to_pylist())
    people = {
        seg: len({p for p, s in zip(shop.column("pid").to_pylist(),
                                    shop.column("shop_segment").to_pylist(), strict=True)
                  if s == seg and p in matched} | ({victim} if seg == "sport" else set()))
        for seg in ("sport", "home", "kids")
    }  # fmt: skip
    # without bounding "sport" would be about 300 higher; bounded, it is one person more
    assert abs(released["sport"] - people["sport"]) <= 15, (released, people)
