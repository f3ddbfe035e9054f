"""The client side of the un-governed Flower simulation (benchmarks/_fl_simulation.py).

A module of its own with the governed ClientApp's light imports: Ray's workers import it to
unpickle the client function, and importing the zone (as ``_fl_simulation`` does) in every
worker would handicap the baseline.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from collabzone.techniques.federated import _data, _spec


class PlainClients:
    """``client_fn`` of the un-governed simulation: virtual node ``partition-id`` trains on
    the same file with the zone's client class; no spec check, no clipping, no SecAgg+."""

    def __init__(self, spec: dict[str, Any], paths: list[str], domains: dict[str, Any]) -> None:
        self.spec, self.paths, self.domains = spec, paths, domains

    def __call__(self, context: Any) -> Any:
        from collabzone.techniques.federated import _flower

        spec = _spec.from_json(self.spec)
        frame = pd.read_csv(self.paths[int(context.node_config["partition-id"])])
        x = _data.encode(frame, spec.features, self.domains)
        y = _data.encode_label(frame, str(spec.label), self.domains[str(spec.label)])
        return _flower._OwnerClient(spec, x, y, None).to_client()
