"""A party without an agreement cannot map other owners' datasets (issue 12, item 7).

Before, asking for a dataset that exists but is not shared said "no agreement shares
'insurer_data' with 'bank' (owner insurer)", while a made-up name said "no dataset named":
a cheap oracle for every dataset name and its owner. Both must now read the same.
"""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.conftest import CUSTOMER_SPEC, write_customers
from tests.server.conftest import Handles


def test_an_unshared_dataset_answers_like_an_unknown_one(served: Handles, tmp_path: Path) -> None:
    assert served.server is not None
    served.insurer.add_dataset(
        "insurer_claims", write_customers(tmp_path / "i.csv", 30), CUSTOMER_SPEC
    )
    form = {
        "grant_type": "client_credentials",
        "client_id": "bank",
        "client_secret": served.tokens["bank"],
    }
    with httpx.Client(base_url=served.server.url, timeout=30) as client:
        token = client.post("/oauth/token", data=form).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}

        def ask(path: str, dataset: str) -> tuple[int, str]:
            body = {"technique": "dp_count", "spec": {"dataset": dataset, "epsilon": 0.1}}
            response = client.post(path, json=body, headers=auth)
            doc = response.json()
            seen = doc.get("error") or {"status": doc["status"], "reasons": doc["reasons"]}
            return response.status_code, str(seen).replace(dataset, "<name>")

        for path in ("/v1/price", "/v1/requests"):
            hidden, unknown = ask(path, "insurer_claims"), ask(path, "nothing_here")
            assert hidden == unknown, path
            assert "insurer" not in hidden[1] and "NO_AGREEMENT" not in hidden[1]
    assert served.insurer.datasets()[0].name == "insurer_claims"
