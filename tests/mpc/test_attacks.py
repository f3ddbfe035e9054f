"""The attack library's MPC attacks against real reports (in-process, one server)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from collabzone.attacks import mpc_join_differencing, mpc_union_differencing
from collabzone.techniques.mpc import ReportSpec, ShareStore, open_report, run_report, split_upload
from collabzone.techniques.mpc._join import deal_key, pseudonymise, share_server
from collabzone.techniques.mpc._shares import runtime


def _asker(store: ShareStore) -> Any:
    def ask(spec: Mapping[str, Any]) -> Mapping[str, Any]:
        parsed = ReportSpec.from_json(spec)
        return open_report([run_report(runtime(), store, parsed)], parsed.recipient)

    return ask


def _put(
    store: ShareStore,
    name: str,
    values: np.ndarray,
    keys: list[str] | None = None,
    column: str = "v",
) -> None:
    (package,) = split_upload(
        name, name, {column: values}, {column: (0.0, 100.0)}, reports=["sum"], recipients=["analyst"],
        min_group_size=10, servers=1, threshold=0, join_keys=keys,
    )  # fmt: skip
    store.put(package)


def test_union_with_a_one_record_dataset_is_refused(tmp_path: Path, master_key: str) -> None:
    store = ShareStore(tmp_path / "s", master_key)
    _put(store, "big", np.random.default_rng(1).uniform(0, 100, 200))
    _put(store, "victim", np.array([73.0]))
    assert mpc_union_differencing(_asker(store), "big", "victim", "v", "analyst") is None


def test_join_on_attacker_lists_differs_to_the_victim_unless_dp_noise(
    tmp_path: Path, master_key: str
) -> None:
    """Without DP the difference is the victim's value (a stated limitation); with
    epsilon the inferences scatter by thousands over a value range of 100."""
    store = ShareStore(tmp_path / "s", master_key)
    (share,) = deal_key(1, 0)
    evaluate = share_server(0, share).evaluate
    people = [f"id-{i}" for i in range(300)]
    clinic = np.random.default_rng(2).uniform(0, 100, 300)
    _put(store, "clinic", clinic, pseudonymise(people, [evaluate], 0))
    known = people[:150]
    _put(store, "with", np.zeros(151), pseudonymise([*known, people[200]], [evaluate], 0), "w")
    _put(store, "without", np.zeros(150), pseudonymise(known, [evaluate], 0), "w")
    ask = _asker(store)
    exact = mpc_join_differencing(ask, "clinic", "with", "without", "v", "analyst")
    assert exact is not None and abs(exact - clinic[200]) < 1e-6
    noisy = [
        mpc_join_differencing(ask, "clinic", "with", "without", "v", "analyst", epsilon=0.5)
        for _ in range(8)
    ]
    assert np.std([n for n in noisy if n is not None]) > 1000
