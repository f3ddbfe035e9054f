"""The packed DP bounding (``rules/packed_bounding``) keeps the row the shipped form keeps.

With public GROUP BY domains, each person's kept row travels as one BIGINT (group index
and clamped values) instead of a struct. Same salt, same key: the same row of each
person, so the bounded per-group table is the shipped one restricted to the public groups
(the release drops the others in both forms). Domains it cannot pack, and digits that would
not fit in 63 bits, fall back to the shipped form.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pytest
from sqlglot import exp

from collabzone.techniques.sql._execute import execute
from collabzone.techniques.sql._technique import compile_for
from collabzone.techniques.sql.rules import packed_bounding
from collabzone.techniques.sql.rules.packed_bounding import MAX_DOMAIN, packable_domains
from tests.sql.sql_support import DP_RULES, FakeZone, make_fake_zone

JOIN = "FROM bank b JOIN shop s ON b.pid = s.pid"


def _zone(
    bounds: dict[str, list[float]] | None = None, bank: dict[str, list[float]] | None = None
) -> FakeZone:
    """The test zone with people on many joined rows, NULL spends, shop segments outside
    the declared domain and NULL segments (rows that count in no public group)."""
    rules = {**DP_RULES, "bounds": bounds or {"spend": [0, 100]}}
    bank_rules = {**DP_RULES, "bounds": bank or {"balance": [-1000, 20000]}}
    zone = make_fake_zone(bank_rules, rules)
    n = 240
    extra = pa.table({
        "pid": [f"p{i % 60:05d}" for i in range(n)],
        "token": ["t"] * n,
        "shop_segment": [["kids", "home", "garden", None][i % 4] for i in range(n)],
        "spend": [None if i % 7 == 0 else float((i * 37) % 900) - 50.5 for i in range(n)],
    })  # fmt: skip
    shop = zone.tables["shop"]
    zone.tables["shop"] = pa.concat_tables([shop, extra.cast(shop.schema)])
    return zone


def _trees(zone: FakeZone, sql: str, salt: int) -> tuple[exp.Select, exp.Select]:
    """(packed, shipped) rewrites of a DP query with the same salt."""
    ctx = zone.as_party("analyst")
    try:
        compiled = compile_for({"sql": sql, "epsilon": 1.0}, ctx)  # type: ignore[arg-type]
    finally:
        ctx.close()
    packed = compiled.rewritten(salt=salt)
    with _shipped():
        shipped = compiled.rewritten(salt=salt)
    return packed, shipped


class _shipped:
    """Rewrites inside use the shipped (struct) form."""

    def __enter__(self) -> None:
        packed_bounding.PACKING = False

    def __exit__(self, *exc: object) -> None:
        packed_bounding.PACKING = True


def _run(zone: FakeZone, tree: exp.Expression) -> pa.Table:
    ctx = zone.as_party("analyst")
    try:
        return execute(ctx.connection(), tree.sql("duckdb"), timeout_s=30, max_rows=None)
    finally:
        ctx.close()


def _public_rows(table: pa.Table, domains: list[list[Any]]) -> list[tuple[Any, ...]]:
    """The rows of groups inside the public domains, sorted (what the release keeps)."""
    rows = [tuple(r.values()) for r in table.to_pylist()]
    inside = [r for r in rows if all(r[i] in d for i, d in enumerate(domains))]
    return sorted(inside, key=repr)


def _is_packed(tree: exp.Expression) -> bool:
    return not any(True for _ in tree.find_all(exp.Struct)) and "_cz_g" in tree.sql("duckdb")


QUERIES = [
    (f"SELECT s.shop_segment, COUNT(*), SUM(s.spend) {JOIN} GROUP BY s.shop_segment",
     [["sport", "home", "kids"]]),
    (f"SELECT b.segment, s.shop_segment, COUNT(s.spend), SUM(s.spend), COUNT(*) {JOIN} "
     "GROUP BY b.segment, s.shop_segment", None),
    (f"SELECT b.region, SUM(b.balance), SUM(s.spend) {JOIN} GROUP BY b.region", None),
    (f"SELECT s.shop_segment, COUNT(DISTINCT b.pid) {JOIN} GROUP BY s.shop_segment",
     [["sport", "home", "kids"]]),
    # public bins: values from the literals and the declared bounds of age
    (f"SELECT FLOOR(b.age / 10) * 10, COUNT(*), SUM(s.spend) {JOIN} "
     "GROUP BY FLOOR(b.age / 10) * 10", None),
    (f"SELECT CASE WHEN b.age < 40 THEN 'young' ELSE 'older' END, s.shop_segment, COUNT(*) "
     f"{JOIN} GROUP BY 1, 2", None),
    (f"SELECT width_bucket(b.age, 20, 80, 3), SUM(s.spend) {JOIN} GROUP BY 1", None),
]  # fmt: skip


@pytest.mark.parametrize(("sql", "domains"), QUERIES)
@pytest.mark.parametrize("salt", [3, 11, 2**31 - 1])
def test_packed_and_shipped_bounded_tables_are_equal(
    sql: str, domains: list[list[Any]] | None, salt: int
) -> None:
    _assert_same_tables(_zone(), sql, domains, salt)


def test_wide_packed_values_keep_arg_min_and_the_same_tables() -> None:
    """A packed value of more than 40 bits leaves too few key bits for the one-MIN form:
    ARG_MIN(packed, key), with the same bounded table."""
    zone = _zone({"spend": [0, 10**6]})
    sql = f"SELECT s.shop_segment, SUM(b.balance), SUM(s.spend) {JOIN} GROUP BY s.shop_segment"
    packed, _ = _trees(zone, sql, 5)
    assert packed.find(exp.ArgMin) is not None and packed.find(exp.Min) is None
    assert _trees(_zone(), sql, 5)[0].find(exp.ArgMin) is None  # narrower: one MIN
    for salt in (5, 6):
        _assert_same_tables(zone, sql, [["sport", "home", "kids"]], salt)


def _assert_same_tables(
    zone: FakeZone, sql: str, domains: list[list[Any]] | None, salt: int
) -> None:
    packed, shipped = _trees(zone, sql, salt)
    assert _is_packed(packed) and not _is_packed(shipped)
    out = _run(zone, packed)
    if domains is None:
        ctx = zone.as_party("analyst")
        compiled = compile_for({"sql": sql, "epsilon": 1.0}, ctx)  # type: ignore[arg-type]
        ctx.close()
        assert compiled.public_keys is not None
        width = len(compiled.shape.group_by)
        domains = [list({k[i] for k in compiled.public_keys}) for i in range(width)]
    assert out.num_rows > 0
    assert _public_rows(out, domains) == _public_rows(_run(zone, shipped), domains)
    assert out.column_names == _run(zone, shipped).column_names


def _kept_rows(zone: FakeZone, tree: exp.Select) -> dict[Any, Any]:
    """Person -> the ARG_MIN result of the bounding step (the row kept for them)."""
    inner = next(
        s.copy()
        for s in tree.find_all(exp.Select)
        if s.args.get("group") is not None and any(e.alias == "_cz_k" for e in s.expressions)
    )
    group = inner.args["group"].expressions[0]
    inner.set("expressions", [*inner.expressions, exp.alias_(group.copy(), "_who")])
    table = _run(zone, inner)
    return dict(zip(table.column("_who").to_pylist(), table.column("_cz_k").to_pylist(),
                    strict=True))  # fmt: skip


def test_each_person_keeps_the_same_row_in_both_forms() -> None:
    """Decoding each person's packed BIGINT gives the struct the shipped form keeps."""
    zone = _zone()
    sql = f"SELECT s.shop_segment, COUNT(*), SUM(s.spend) {JOIN} GROUP BY s.shop_segment"
    for salt in (5, 99):
        packed, shipped = _trees(zone, sql, salt)
        got, want = _kept_rows(zone, packed), _kept_rows(zone, shipped)
        assert got.keys() == want.keys() and len(got) > 100
        segments = ["sport", "home", "kids"]
        radix = 100 * 100 + 2  # spend in cents over [0, 100], NULL as 0
        repeated = 0
        for who, k in got.items():
            index, code = divmod(k, radix)
            row = want[who]
            value = list(row.values())[-1]  # the scaled spend (COUNT(*) is the field before)
            segment = segments[index] if index < len(segments) else None
            if segment is not None or row["d0"] in segments:
                assert segment == row["d0"], who
            assert (None if code == 0 else code - 1) == value, who
            repeated += who in {f"p{i:05d}" for i in range(60)}
        assert repeated >= 50  # people with several joined rows were compared


def test_kept_row_moves_with_the_salt() -> None:
    """The choice is salted: another salt keeps another row for some people."""
    zone = _zone()
    sql = f"SELECT s.shop_segment, COUNT(*), SUM(s.spend) {JOIN} GROUP BY s.shop_segment"
    first = _kept_rows(zone, _trees(zone, sql, 1)[0])
    second = _kept_rows(zone, _trees(zone, sql, 2)[0])
    assert sum(first[p] != second[p] for p in first) >= 10


def test_digits_beyond_63_bits_fall_back_to_the_shipped_form() -> None:
    """Two sums with wide bounds: the product of the digits passes 2^63, so no packing;
    the answer is still the bounded table."""
    zone = _zone({"spend": [0, 10**12]}, {"balance": [0, 10**12]})
    sql = f"SELECT s.shop_segment, SUM(b.balance), SUM(s.spend) {JOIN} GROUP BY s.shop_segment"
    packed, shipped = _trees(zone, sql, 7)
    assert not _is_packed(packed)
    assert packed.sql("duckdb") == shipped.sql("duckdb")
    narrow = _trees(_zone(), sql, 7)[0]
    assert _is_packed(narrow)  # the same query with narrower bounds packs
    assert _run(zone, packed).num_rows > 0


def test_private_groups_and_other_engines_keep_the_shipped_form() -> None:
    zone = _zone()
    ctx = zone.as_party("analyst")
    try:
        # age declares bounds, not a list of public values: its groups are private
        by_age = {"sql": f"SELECT b.age, COUNT(*) {JOIN} GROUP BY b.age", "epsilon": 1.0}
        by_shop = {"sql": f"SELECT s.shop_segment, COUNT(*) {JOIN} GROUP BY 1", "epsilon": 1.0}
        private = compile_for(by_age, ctx)  # type: ignore[arg-type]
        public = compile_for(by_shop, ctx)  # type: ignore[arg-type]
    finally:
        ctx.close()
    assert private.public_keys is None and not _is_packed(private.rewritten(salt=1))
    assert _is_packed(public.rewritten(salt=1))
    for engine in ("postgres", "spark"):
        assert not _is_packed(public.rewritten(salt=1, engine=engine))


def _many() -> Iterator[str]:
    return (f"v{i}" for i in range(MAX_DOMAIN + 1))


@pytest.mark.parametrize(
    ("kinds", "keys", "packable"),
    [
        (["string"], [("a",), ("b",)], True),
        (["integer", "string"], [(1, "a"), (1, "b"), (2, "a"), (2, "b")], True),
        ([None], [(0.0,), (10.0,)], True),  # a FLOOR bin's values
        (["string"], [("a",), (None,)], False),  # NULL in the domain
        (["integer"], [(True,), (False,)], False),  # booleans
        (["float"], [(0.5,), (1.0,)], False),  # fractions
        (["integer"], [("1",), ("2",)], False),  # text declared on a number column
        (["string"], [(1,), (2,)], False),  # numbers declared on a text column
        (["date"], [("2024-01-01",)], False),
        (["string"], [(v,) for v in _many()], False),  # more than MAX_DOMAIN values
        (["string"], None, False),
        (["string"], [], False),
    ],
)
def test_packable_domains(
    kinds: list[str | None], keys: list[tuple[Any, ...]] | None, packable: bool
) -> None:
    domains = packable_domains(kinds, keys)
    assert (domains is not None) == packable
    if domains is not None and keys:
        assert [len(d) for d in domains] == [len({k[i] for k in keys}) for i in range(len(kinds))]
