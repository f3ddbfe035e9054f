"""Helpers of benchmarks/federated.py's simulation parts (Flower's Simulation Engine on Ray).

- :func:`world`: a zone in a temporary folder with ``n`` owners, each holding a slice of UCI
  Adult cut non-IID by marital status and sharing it for federated learning with ``lab``;
- :func:`governed`: a job submitted by the lab, approved by every owner at its node (the
  node's approval book), then run by the simulation placement (``_simulation.run``: the
  zone's ServerApp and ClientApp, audit per round, release with debit and sealed model);
- :func:`plain`: the same Flower simulation without the zone: the same client training
  (``_flower._OwnerClient`` on the same files) under plain FedAvg, no checks, no mods;
- :class:`TreeSampler`: peak memory (PSS, so pages shared between Ray's processes count
  once) and CPU seconds of this process and all its descendants (Ray's GCS, raylet,
  workers), read from /proc.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from collabzone.keys import MASTER_KEY_ENV, new_master_key
from collabzone.node import NodeAgent
from collabzone.techniques.federated import _data, _models, _spec
from collabzone.zone import Zone, connect, init
from tests.federated.fl_support import (
    DATASET_SPEC,
    DOMAINS,
    FEATURES,
    LABEL,
    adult,
    write_owner_files,
)

TICK = os.sysconf("SC_CLK_TCK")


class TreeSampler:
    """Samples /proc every ``interval`` seconds in a thread, for this process and its
    descendants: the largest sum of PSS and of RSS seen, the most processes, and the CPU
    seconds (user + system) each process had used when last seen, summed."""

    def __init__(self, interval: float = 0.25) -> None:
        self.interval = interval
        self.peak_pss = self.peak_rss = 0
        self.peak_processes = 0
        self.names: set[str] = set()
        """The processes seen (``comm``): shows Ray's GCS, raylet and workers were counted."""
        self._cpu: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    @property
    def cpu_seconds(self) -> float:
        return sum(self._cpu.values())

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def _sample(self) -> None:
        parents: dict[int, int] = {}
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                stat = _read(f"/proc/{entry.name}/stat")
                if stat:
                    fields = stat.rsplit(")", 1)[1].split()
                    parents[int(entry.name)] = int(fields[1])
        tree = {os.getpid()}
        grew = True
        while grew:
            more = {p for p, pp in parents.items() if pp in tree} - tree
            grew = bool(more)
            tree |= more
        pss = rss = 0
        for pid in tree:
            for line in _read(f"/proc/{pid}/smaps_rollup").splitlines():
                if line.startswith("Pss:"):
                    pss += int(line.split()[1]) * 1024
                elif line.startswith("Rss:"):
                    rss += int(line.split()[1]) * 1024
            stat = _read(f"/proc/{pid}/stat")
            if stat:
                self.names.add(stat[stat.find("(") + 1 : stat.rfind(")")])
                fields = stat.rsplit(")", 1)[1].split()
                self._cpu[pid] = (int(fields[11]) + int(fields[12])) / TICK
        self.peak_pss = max(self.peak_pss, pss)
        self.peak_rss = max(self.peak_rss, rss)
        self.peak_processes = max(self.peak_processes, len(tree))


class RoundClock(logging.Handler):
    """When Flower's DefaultWorkflow logged each ``[ROUND k]`` and its ``[SUMMARY]``: the
    first round includes Ray's actors starting; later rounds are the steady cost."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.starts: list[float] = []
        self.end = 0.0

    def __enter__(self) -> RoundClock:
        logging.getLogger("flwr").addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        logging.getLogger("flwr").removeHandler(self)

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg == "[ROUND %s]":
            self.starts.append(time.perf_counter())
        elif record.msg == "[SUMMARY]":
            self.end = time.perf_counter()

    def steady(self) -> float:
        """Seconds per round after the first."""
        return (self.end - self.starts[1]) / (len(self.starts) - 1)

    def first(self) -> float:
        return self.starts[1] - self.starts[0]


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read()
    except OSError:
        return ""


@dataclass
class World:
    root: Path
    host: Zone
    analyst: Zone
    owners: dict[str, Zone]
    paths: dict[str, Path]
    agents: dict[str, NodeAgent] = field(default_factory=dict)


def world(root: Path, n: int) -> World:
    """A zone with ``n`` owners ``o000``... holding Adult cut in ``n`` non-IID slices."""
    os.environ.setdefault(MASTER_KEY_ENV, new_master_key())
    operator, _ = init(root / "zone")
    frame = adult().sort_values("marital_status", kind="stable").reset_index(drop=True)
    parts = np.array_split(np.arange(len(frame)), n)
    frames = {f"o{i:03d}": frame.iloc[idx].reset_index(drop=True) for i, idx in enumerate(parts)}
    paths = write_owner_files(frames, root / "data")
    analyst = operator.as_party(operator.add_party("lab", ["analyst", "provider"])[1])
    owners = {}
    for name, part in frames.items():
        handle = operator.as_party(operator.add_party(name, ["provider"])[1])
        handle.register_dataset(f"adult_{name}", DATASET_SPEC, row_count=len(part))
        handle.add_agreement(
            f"adult_{name}", grantees=["lab"], technique="federated", purposes=["income model"],
            approval="manual",
            rules={"columns": [*FEATURES, LABEL], "model_families": ["logreg"],
                   "max_rounds": 50, "max_epsilon": 1e6, "min_clients": 2,
                   "secure_aggregation": False, "epsilon_budget": 1e6, "delta_budget": 1e-3},
        )  # fmt: skip
        owners[name] = handle
    agents = {o: NodeAgent(h, {f"adult_{o}": paths[o]}) for o, h in owners.items()}
    return World(root, connect(root / "zone", host=True), analyst, owners, paths, agents)


def job_doc(owners: list[str], rounds: int, secure: bool) -> dict[str, Any]:
    return {"task": "train", "datasets": [f"adult_{o}" for o in owners], "features": FEATURES,
            "label": LABEL, "rounds": rounds, "learning_rate": 1.0,
            "secure_aggregation": secure,
            "privacy": {"clipping_norm": 5.0, "noise_multiplier": 1.0, "delta": 1e-5}}  # fmt: skip


def governed(w: World, rounds: int, secure: bool) -> dict[str, Any]:
    """Submit, approve at every node, run in the simulation placement; wall seconds of the
    approvals and of the run (simulation, audit events, release), engine figures, CPU and
    peak memory of the process tree during the run."""
    from collabzone.techniques.federated import _simulation

    t0 = time.perf_counter()
    request = w.analyst.submit("federated", job_doc(sorted(w.owners), rounds, secure),
                               "income model")  # fmt: skip
    for owner, agent in w.agents.items():
        agent.approve(request.id, f"{owner}: as agreed")
    submitted = time.perf_counter() - t0
    nodes = {
        o: {"data-path": str(w.paths[o]), "approved-sha256": a.approvals[request.id]}
        for o, a in w.agents.items()
    }
    with TreeSampler() as sampler, RoundClock() as clock:
        t0 = time.perf_counter()
        done, raw = _simulation.run(w.host, request.id, nodes, w.root / f"sim-{request.id}")
        took = time.perf_counter() - t0
    assert done.status.value == "released", done.reasons
    return {"submit_approve": submitted, "seconds": took, "round": clock.steady(),
            "after_engine": took - raw["engine_seconds"],
            "first_round": clock.first(), "cpu": sampler.cpu_seconds,
            "pss": sampler.peak_pss, "rss": sampler.peak_rss,
            "processes": sampler.peak_processes, "names": sorted(sampler.names),
            "epsilon": raw["epsilon"]}  # fmt: skip


def plain(w: World, rounds: int) -> dict[str, Any]:
    """The same Flower simulation without the zone: plain FedAvg (unweighted, as the zone's
    clients report one example each) under the same DefaultWorkflow, same client training."""
    from flwr.clientapp import ClientApp
    from flwr.common import Context, ndarrays_to_parameters
    from flwr.server import Grid, LegacyContext, ServerApp, ServerConfig
    from flwr.server.strategy import FedAvg
    from flwr.server.workflow import DefaultWorkflow

    import _fl_plain
    from collabzone.techniques.federated import _simulation

    owners = sorted(w.owners)
    n = len(owners)
    spec = _spec.parse(job_doc(owners, rounds, secure=False))
    n_features = sum(_data.width(DOMAINS[f]) for f in spec.features)
    app = ServerApp()

    @app.main()
    def _main(grid: Grid, context: Context) -> None:
        strategy = FedAvg(
            fraction_fit=1.0, fraction_evaluate=0.0, min_fit_clients=n, min_available_clients=n,
            initial_parameters=ndarrays_to_parameters(_models.init_params(spec.model, n_features)),
        )  # fmt: skip
        legacy = LegacyContext(context=context, config=ServerConfig(num_rounds=rounds),
                               strategy=strategy)  # fmt: skip
        DefaultWorkflow()(grid, legacy)

    paths = [str(w.paths[o]) for o in owners]
    client = ClientApp(client_fn=_fl_plain.PlainClients(spec.as_json(), paths, DOMAINS))
    with TreeSampler() as sampler, RoundClock() as clock:
        t0 = time.perf_counter()
        _simulation.simulate(app, client, n)
        took = time.perf_counter() - t0
    return {"seconds": took, "round": clock.steady(), "first_round": clock.first(),
            "cpu": sampler.cpu_seconds,
            "pss": sampler.peak_pss, "rss": sampler.peak_rss,
            "processes": sampler.peak_processes}  # fmt: skip
