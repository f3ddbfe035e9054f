"""A short federated job for ``collabzone demo`` (in-process path, a few seconds).

A scripted scene, not part of the technique: three owners (the bank, the partner and an
insurer) keep an income table at their premises and register it at their nodes (metadata
only), a research lab asks for a logistic regression over the three, every owner approves
at its node, the nodes join the zone's aggregator, five rounds run with clipping, secure
aggregation and Gaussian noise, and the zone releases the model with its per-round accuracy
on the lab's own evaluation table. The data is synthetic (drawn here, seeded), non-IID by
owner.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from collabzone.zone import Zone

COLUMNS = [
    {"name": "age", "type": "integer", "class": "measure", "domain": {"min": 18, "max": 80}},
    {"name": "hours", "type": "integer", "class": "measure", "domain": {"min": 1, "max": 80}},
    {"name": "degree", "type": "string", "class": "dimension", "domain": ["no", "yes"]},
    {"name": "income", "type": "string", "class": "label", "domain": ["low", "high"]},
]
PURPOSE = "income model"


def _rows(rng: np.random.Generator, n: int, age_shift: float) -> str:
    age = np.clip(rng.normal(40 + age_shift, 10, n), 18, 80).round()
    hours = np.clip(rng.normal(40, 10, n), 1, 80).round()
    degree = rng.random(n) < 0.4
    logit = 0.08 * (age - 40) + 0.06 * (hours - 40) + 1.5 * degree - 0.8
    high = rng.random(n) < 1 / (1 + np.exp(-logit))
    lines = ["age,hours,degree,income"] + [
        f"{int(a)},{int(h)},{'yes' if d else 'no'},{'high' if y else 'low'}"
        for a, h, d, y in zip(age, hours, degree, high, strict=True)
    ]
    return "\n".join(lines) + "\n"


def demo_job(
    operator: Zone, owners: dict[str, Zone], workdir: str | Path, *, rows: int = 600, seed: int = 0
) -> dict[str, Any]:
    """Run the scene; ``owners`` maps owner names to their handles (a third is created if
    only two are given). Returns the request, the released payload and the receipt."""
    from collabzone.model import Request
    from collabzone.node import NodeAgent
    from collabzone.techniques.federated import _coordinator
    from collabzone.zone import connect

    rng = np.random.default_rng(seed)
    owners = dict(owners)
    if len(owners) < 3:
        owners["insurer"] = operator.as_party(operator.add_party("insurer", ["provider"])[1])
    lab = operator.as_party(operator.add_party("lab", ["analyst", "provider"])[1])
    premises = Path(workdir) / "fl_premises"
    premises.mkdir(parents=True, exist_ok=True)
    agents = {}
    for i, (name, zone) in enumerate(sorted(owners.items())):
        path = premises / f"{name}_income.csv"
        path.write_text(_rows(rng, rows, age_shift=(i - 1) * 8.0), encoding="utf-8")
        dataset = f"{name}_income"
        zone.register_dataset(dataset, {"columns": COLUMNS}, row_count=rows,
                              description="income table kept at the owner's node")  # fmt: skip
        zone.add_agreement(
            dataset,
            grantees=["lab"],
            technique="federated",
            purposes=[PURPOSE],
            approval="manual",
            rules={
                "columns": ["age", "hours", "degree", "income"],
                "model_families": ["logreg"],
                "max_rounds": 10,
                "max_epsilon": 8.0,
                "min_clients": 3,
                "secure_aggregation": True,
                "epsilon_budget": 10.0,
                "delta_budget": 1e-4,
            },
        )
        agents[name] = NodeAgent(zone, {dataset: path}, seed=seed)
    evaluation = premises / "lab_evaluation.csv"
    evaluation.write_text(_rows(rng, 500, 0.0), encoding="utf-8")
    lab.add_dataset("lab_evaluation", evaluation, {"columns": COLUMNS})
    request = lab.submit(
        "federated",
        {
            "datasets": [f"{n}_income" for n in sorted(owners)],
            "features": ["age", "hours", "degree"],
            "label": "income",
            "model": "logreg",
            "rounds": 5,
            "local_epochs": 2,
            "learning_rate": 1.0,
            "evaluation": "lab_evaluation",
            "privacy": {"clipping_norm": 1.0, "noise_multiplier": 1.5, "delta": 1e-5},
        },
        PURPOSE,
    )
    assert isinstance(request, Request)
    for name, agent in agents.items():
        agent.approve(request.id, f"{name}: three columns, 5 rounds, epsilon as shown")
    host = connect(operator.root, host=True)
    _coordinator.open_link(host, request.id)
    for agent in agents.values():
        agent.run_once()
    done = _coordinator.run(host, request.id, seed=seed)
    release = lab.result(done.id) if done.status.value == "released" else None
    return {
        "request": done,
        "payload": dict(release.payload) if release else {},
        "receipt": release.receipt if release else None,
        "owners": sorted(owners),
    }
