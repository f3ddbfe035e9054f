"""Joining on a secret key: threshold-OPRF pseudonyms, then a report over the matched rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from collabzone.errors import InvalidInputError, PolicyRefusal
from collabzone.techniques.mpc import ReportSpec, ShareStore, open_report, run_report, split_upload
from collabzone.techniques.mpc._join import deal_key, match, pseudonymise, share_server
from collabzone.techniques.mpc._shares import runtime


def test_any_two_of_three_key_servers_give_the_same_pseudonyms_one_alone_does_not() -> None:
    servers = [share_server(i, s) for i, s in enumerate(deal_key(3, 1))]
    ids = ["alice@example.org", "bob@example.org"]
    first = pseudonymise(ids, [servers[0].evaluate, servers[1].evaluate], 1)
    second = pseudonymise(ids, [servers[2].evaluate, servers[0].evaluate], 1)
    assert first == second
    assert first[0] != first[1] and all("alice" not in p for p in first)
    with pytest.raises(InvalidInputError, match="need 2 key servers"):
        pseudonymise(ids, [servers[0].evaluate], 1)
    # one server's share used as if it were the key gives other (useless) pseudonyms
    assert pseudonymise(ids, [servers[0].evaluate], 0) != first


def test_match_refuses_repeated_keys() -> None:
    assert match({"a": ["x", "y", "z"], "b": ["z", "q", "x"]}) == {"a": [0, 2], "b": [2, 0]}
    with pytest.raises(InvalidInputError, match="repeated join keys"):
        match({"a": ["x", "x"], "b": ["x"]})


def _setup(
    tmp_path: Path, master_key: str, min_group_size: int
) -> tuple[ShareStore, dict[str, np.ndarray]]:
    store = ShareStore(tmp_path / "s", master_key)
    (share,) = deal_key(1, 0)
    store.set_oprf_share(share)
    evaluate = share_server(0, store.oprf_share()).evaluate
    rng = np.random.default_rng(4)
    people = [f"person-{i}" for i in range(300)]
    income = rng.uniform(10, 90, 300)
    visits = 20 + 0.1 * income + rng.normal(0, 1, 300)  # inside the bounds: no clipping
    bank_rows = list(range(0, 250))  # the bank knows people 0..249
    clinic_rows = list(range(100, 300))[::-1]  # the clinic knows 100..299, other order
    for name, rows, column, values in (
        ("bank", bank_rows, "income", income),
        ("clinic", clinic_rows, "visits", visits),
    ):
        keys = pseudonymise([people[i] for i in rows], [evaluate], 0)
        (package,) = split_upload(
            name,
            name,
            {column: values[rows]},
            {column: (0.0, 100.0)},
            reports=["correlation"],
            recipients=["ministry"],
            min_group_size=min_group_size,
            servers=1,
            threshold=0,
            join_keys=keys,
        )
        store.put(package)
    both = np.arange(100, 250)
    return store, {"income": income[both], "visits": visits[both]}


def test_report_over_the_join_equals_numpy_on_the_matched_people(
    tmp_path: Path, master_key: str
) -> None:
    store, joined = _setup(tmp_path, master_key, min_group_size=100)
    spec = ReportSpec(
        "correlation", ("bank", "clinic"), ("income", "visits"), "ministry", join=True
    )
    result = open_report([run_report(runtime(), store, spec)], "ministry")
    assert result["rows"] == 150
    assert result["result"]["matrix"][0][1] == pytest.approx(
        np.corrcoef(joined["income"], joined["visits"])[0, 1], abs=1e-5
    )


def test_a_join_smaller_than_the_minimum_group_is_refused(tmp_path: Path, master_key: str) -> None:
    store, _ = _setup(tmp_path, master_key, min_group_size=180)  # each side >= 180, overlap 150
    spec = ReportSpec(
        "correlation", ("bank", "clinic"), ("income", "visits"), "ministry", join=True
    )
    with pytest.raises(PolicyRefusal) as caught:
        run_report(runtime(), store, spec)
    assert [r.code for r in caught.value.reasons] == ["GROUP_TOO_SMALL"]
