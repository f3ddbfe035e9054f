"""The catalogue: what a grantee may see of shared datasets. Sizes are rounded (and hidden
when small), unshared or no-longer-shared datasets are absent, and the mock sample is drawn
from the declared schema alone: no real value can appear in it."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collabzone.techniques.catalogue import rounded_count
from tests.conftest import CUSTOMER_SPEC, Parties, write_customers

RICH_SPEC: dict[str, Any] = {
    "columns": [
        {"name": "token", "type": "string", "class": "join_key"},
        {"name": "city", "type": "string", "class": "quasi_identifier"},
        {"name": "note", "type": "string", "class": "other"},
        {
            "name": "age",
            "type": "integer",
            "class": "quasi_identifier",
            "domain": {"min": 18, "max": 95},
        },
        {"name": "score", "type": "float", "class": "measure", "domain": {"min": -5.5, "max": 5.5}},
        {
            "name": "since",
            "type": "date",
            "class": "other",
            "domain": {"min": "2015-03-01", "max": "2016-02-29"},
        },
        {"name": "tier", "type": "string", "class": "dimension", "domain": ["gold", "silver"]},
        {"name": "active", "type": "boolean", "class": "other"},
    ]
}


def _share(parties: Parties, dataset: str, **rules: Any) -> str:
    return parties.bank.add_agreement(
        dataset,
        grantees=["partner"],
        technique="dp_count",
        purposes=["*"],
        rules={"epsilon_budget": 1.0, **rules},
    ).id


def _entry(catalogue: dict[str, Any], dataset: str) -> dict[str, Any]:
    [entry] = [e for e in catalogue["datasets"] if e["dataset"] == dataset]
    return entry


def _names(catalogue: dict[str, Any]) -> set[str]:
    return {e["dataset"] for e in catalogue["datasets"]}


@given(rows=st.integers(0, 10**7), min_group=st.integers(0, 5000))
def test_rounded_count_reveals_at_most_a_rounded_size(rows: int, min_group: int) -> None:
    shown = rounded_count(rows, min_group)
    floor = max(min_group, 100)
    if rows < floor:
        assert shown == {"rows": None, "rows_shown_as": f"fewer than {floor}"}
    else:
        assert shown["rows"] % 100 == 0
        assert abs(shown["rows"] - rows) <= 50
        assert shown["rows_shown_as"] == f"about {shown['rows']}"


def test_grantees_see_rounded_counts_and_owners_exact(sqlite_zone: Parties, tmp_path: Path) -> None:
    z = sqlite_zone
    z.bank.add_dataset("big", write_customers(tmp_path / "big.csv", 1234), CUSTOMER_SPEC)
    z.bank.add_dataset("small", write_customers(tmp_path / "small.csv", 99), CUSTOMER_SPEC)
    z.bank.add_dataset("guarded", write_customers(tmp_path / "g.csv", 420), CUSTOMER_SPEC)
    for name in ("big", "small"):
        _share(z, name)
    _share(z, "guarded", min_group_size=500)

    seen = z.partner.catalogue(mock_rows=0)
    assert _names(seen) == {"big", "small", "guarded"}
    assert (_entry(seen, "big")["rows"], _entry(seen, "big")["rows_shown_as"]) == (
        1200,
        "about 1200",
    )
    assert _entry(seen, "small")["rows_shown_as"] == "fewer than 100"
    assert _entry(seen, "guarded")["rows_shown_as"] == "fewer than 500"
    for name in ("small", "guarded"):
        assert _entry(seen, name)["rows"] is None
    for entry in seen["datasets"]:
        assert str(entry["rows"]) not in ("1234", "99", "420")

    own = z.bank.catalogue(mock_rows=0)
    assert {e["dataset"]: e["rows"] for e in own["datasets"]} == {
        "big": 1234,
        "small": 99,
        "guarded": 420,
    }
    assert _entry(own, "big")["rows_shown_as"] == "exactly 1234"


def test_unshared_expired_and_revoked_datasets_disappear(
    sqlite_zone: Parties, tmp_path: Path
) -> None:
    z = sqlite_zone
    for name in ("kept", "private", "expired", "revoked"):
        z.bank.add_dataset(name, write_customers(tmp_path / f"{name}.csv", 150), CUSTOMER_SPEC)
    z.insurer.add_dataset("other", write_customers(tmp_path / "o.csv", 150), CUSTOMER_SPEC)
    _share(z, "kept")
    now = dt.datetime.now(dt.UTC)
    z.bank.add_agreement(
        "expired",
        grantees=["partner"],
        technique="dp_count",
        purposes=["*"],
        valid_from=now - dt.timedelta(days=2),
        valid_until=now - dt.timedelta(days=1),
    )
    revoked = _share(z, "revoked")
    assert _names(z.partner.catalogue(0)) == {"kept", "revoked"}
    z.bank.revoke_agreement(revoked, "partnership ended")

    seen = z.partner.catalogue(0)
    assert _names(seen) == {"kept"}
    assert {t["agreement"] for t in _entry(seen, "kept")["techniques"]} != {revoked}
    assert _names(z.insurer.catalogue(0)) == {"other"}  # the insurer sees only its own
    # asking for a hidden dataset by name is refused, not answered
    refused = z.partner.submit("catalogue", {"datasets": ["private"]}, purpose="probe")
    assert refused.status.value == "refused"  # type: ignore[union-attr]


def _rich_rows(rows: int, seed: int = 5) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    cities = ["Leeds", "Gdansk", "Valparaiso", "Kumasi"]
    return [
        {
            "token": f"real-token-{rng.getrandbits(40):010x}",
            "city": rng.choice(cities),
            "note": f"customer said {rng.choice(['yes', 'no', 'maybe'])} #{i}",
            "age": rng.randint(18, 95),
            "score": round(rng.uniform(-5.5, 5.5), 3),
            "since": (dt.date(2015, 3, 1) + dt.timedelta(days=rng.randint(0, 365))).isoformat(),
            "tier": rng.choice(["gold", "silver"]),
            "active": rng.choice(["true", "false"]),
        }
        for i in range(rows)
    ]


def test_mock_sample_never_contains_real_values(sqlite_zone: Parties, tmp_path: Path) -> None:
    z = sqlite_zone
    rows = _rich_rows(400)
    names = [c["name"] for c in RICH_SPEC["columns"]]
    source = tmp_path / "rich.csv"
    source.write_text(
        ",".join(names) + "\n" + "\n".join(",".join(str(r[n]) for n in names) for r in rows) + "\n",
        encoding="utf-8",
    )
    z.bank.add_dataset("rich", source, RICH_SPEC)
    _share(z, "rich")

    mock = _entry(z.partner.catalogue(mock_rows=500), "rich")["mock_sample"]
    assert mock["columns"] == names
    assert len(mock["rows"]) == 500
    column = {n: [row[i] for row in mock["rows"]] for i, n in enumerate(names)}
    for name in ("token", "city", "note"):  # join keys and free strings: never a real value
        real = {r[name] for r in rows}
        assert not real & set(column[name]), f"a real {name} value leaked into the mock"
    assert all(18 <= v <= 95 and isinstance(v, int) for v in column["age"])
    assert all(-5.5 <= v <= 5.5 for v in column["score"])
    assert all("2015-03-01" <= v <= "2016-02-29" for v in column["since"])
    assert set(column["tier"]) <= {"gold", "silver"}
    assert {type(v) for v in column["active"]} == {bool}
    # the owner's own view mocks too: the catalogue never carries real rows to anyone
    own_mock = _entry(z.bank.catalogue(mock_rows=50), "rich")["mock_sample"]["rows"]
    real_tokens = {r["token"] for r in rows}
    assert not real_tokens & {row[0] for row in own_mock}


@pytest.mark.parametrize("mock_rows", [-1, 1001, "5", True])
def test_catalogue_refuses_bad_mock_row_counts(sqlite_zone: Parties, mock_rows: Any) -> None:
    request = sqlite_zone.partner.submit("catalogue", {"mock_rows": mock_rows}, purpose="x")
    assert request.status.value == "refused"  # type: ignore[union-attr]
    assert any("mock_rows" in r for r in request.reasons)  # type: ignore[union-attr]
