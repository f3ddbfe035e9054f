"""The ``federated`` technique: plan, check and release a federated training or analytics job.

Placement ``owner``: the data never enters the zone. The zone plans and checks the job, the
owners approve it (they see the model family, columns, rounds, clipping, noise and the
projected epsilon in the plan), the zone signs the spec's hash, and each owner's node runs
the client side against its own rows while the zone runs the aggregator (Flower's SuperLink
and ServerApp, see :mod:`._flower`). ``release`` debits the spent epsilon from every
participating dataset and lets out the global model and per-round aggregate metrics only.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

import numpy as np

from collabzone.budget import PrivacyCost
from collabzone.errors import InvalidInputError, PolicyRefusal, Reason
from collabzone.techniques.base import (
    DerivedDataset,
    Outcome,
    Plan,
    PlanContext,
    Rules,
    RunContext,
    Technique,
)
from collabzone.techniques.federated import _accounting, _analytics, _data, _rules, _spec
from collabzone.techniques.federated._models import FAMILIES
from collabzone.techniques.federated._spec import JobSpec
from collabzone.techniques.view import CurveView, ResultView, cell
from collabzone.techniques.view import table as view_table


def projected_epsilon(spec: JobSpec) -> float:
    """The client-level (training) or record-level (analytics) epsilon of the whole job."""
    if spec.task == "analytics":
        return _analytics.analytics_epsilon(spec)
    p = spec.privacy
    return _accounting.epsilon(spec.rounds, p.sampling_rate, p.noise_multiplier, p.delta)


def _columns(spec: JobSpec) -> tuple[str, ...]:
    if spec.task == "analytics":
        return tuple(dict.fromkeys(q["column"] for q in spec.queries if "column" in q))
    return (*spec.features, str(spec.label))


class Federated(Technique):
    """Federated learning and analytics with Flower, run at the owners' nodes."""

    name = "federated"
    summary = "federated learning (Flower, SecAgg+, client-level DP) and federated analytics"
    placement = "owner"
    rule_specs = _rules.RULE_SPECS

    def plan(self, spec: Mapping[str, Any], ctx: PlanContext) -> Plan:
        job = _spec.parse(spec)
        owners: dict[str, str] = {}
        domains: dict[str, Any] = {}
        columns = _columns(job)
        for name in job.datasets:
            dataset = ctx.dataset(name)
            if dataset.owner in owners.values():
                raise InvalidInputError(
                    f"{name!r} and another dataset belong to {dataset.owner!r}: one dataset "
                    "per owner (a client is an owner's node)"
                )
            owners[name] = dataset.owner
            for column_name in columns:
                column = dataset.column(column_name)
                if column is None:
                    raise InvalidInputError(f"{name!r} has no column {column_name!r}")
                domain = _data.check_domain(column_name, column.domain)
                if domains.setdefault(column_name, domain) != domain:
                    raise InvalidInputError(
                        f"column {column_name!r} declares different domains across datasets"
                    )
        for q in job.queries:  # a mean or a quantile needs numeric, declared bounds
            if q["kind"] in ("mean", "quantile") and isinstance(domains[q["column"]], list):
                raise InvalidInputError(
                    f"a {q['kind']} needs a numeric column; {q['column']!r} is categorical"
                )
        if job.evaluation is not None:
            evaluation = ctx.dataset(job.evaluation)
            if evaluation.owner != ctx.requester.name:
                raise InvalidInputError(
                    f"`evaluation` must be a dataset of yours; {job.evaluation!r} is not"
                )
            for column_name in columns:
                column = evaluation.column(column_name)
                if (
                    column is None
                    or _data.check_domain(column_name, column.domain) != domains[column_name]
                ):
                    raise InvalidInputError(
                        f"{job.evaluation!r} needs column {column_name!r} with the training "
                        "datasets' domain"
                    )
        epsilon = projected_epsilon(job)
        if epsilon == float("inf"):
            cost: dict[str, PrivacyCost] = {}
        else:
            delta = job.privacy.delta
            cost = {n: PrivacyCost(epsilon=epsilon, delta=delta) for n in job.datasets}
        what = (
            f"{job.model} by {job.strategy}, {job.rounds} rounds x {job.local_epochs} epochs"
            if job.task == "train"
            else f"{len(job.queries)} aggregate queries"
        )
        return Plan(
            technique=self.name,
            datasets=job.datasets,
            cost=cost,
            columns={n: columns for n in job.datasets},
            outputs=f"federated {job.task}: {what}; global result and per-round aggregates only",
            details={
                "spec": job.as_json(),
                "spec_sha256": job.digest(),
                "owners": owners,
                "nodes": sorted(owners.values()),
                "evaluation": job.evaluation,
                "domains": domains,
                "projected_epsilon": epsilon,
            },
            placement="owner",
            node=None,
        )

    def check(self, plan: Plan, rules: Rules, ctx: PlanContext) -> list[Reason]:
        job = _spec.from_json(plan.details["spec"])
        owners = plan.details["owners"]
        reasons: list[Reason] = []
        for dataset in plan.datasets:
            granted = rules.by_dataset.get(dataset, {}).get("columns")
            owner = owners[dataset]
            if granted is None:
                reasons.append(Reason("COLUMNS_NOT_GRANTED", "columns",
                                      f"the agreement on {dataset!r} grants no columns", owner))  # fmt: skip
                continue
            extra = [c for c in plan.columns[dataset] if c not in granted]
            if extra:
                reasons.append(
                    Reason(
                        "COLUMNS_NOT_GRANTED",
                        "columns",
                        f"{dataset!r} does not grant {', '.join(extra)}; drop them from the job",
                        owner,
                    )
                )
        families = rules.get("model_families", list(FAMILIES))
        if job.task == "train" and job.model not in families:
            reasons.append(Reason("MODEL_NOT_ALLOWED", "model_families",
                                  f"allowed model families: {', '.join(families) or 'none'}"))  # fmt: skip
        max_rounds = rules.get("max_rounds")
        if max_rounds is not None and job.rounds > max_rounds:
            reasons.append(Reason("TOO_MANY_ROUNDS", "max_rounds",
                                  f"at most {max_rounds} rounds; lower `rounds`"))  # fmt: skip
        min_clients = max(rules.get("min_clients", 0) or 0, _rules.MIN_CLIENTS_FLOOR)
        if job.min_clients < min_clients or len(plan.datasets) < min_clients:
            reasons.append(Reason("TOO_FEW_CLIENTS", "min_clients",
                                  f"every aggregate needs at least {min_clients} owners"))  # fmt: skip
        if rules.get("secure_aggregation") and not job.secure_aggregation:
            reasons.append(Reason("SECURE_AGGREGATION_REQUIRED", "secure_aggregation",
                                  "set `secure_aggregation: true`"))  # fmt: skip
        max_epsilon = rules.get("max_epsilon")
        epsilon = float(plan.details["projected_epsilon"])
        if max_epsilon is not None and epsilon > float(max_epsilon):
            reasons.append(
                Reason(
                    "EPSILON_TOO_HIGH",
                    "max_epsilon",
                    f"the job would spend epsilon {epsilon:.3g} > {max_epsilon}; raise "
                    "`noise_multiplier` or lower `rounds`",
                )
            )
        return reasons

    def run(self, plan: Plan, ctx: RunContext) -> Outcome:
        raise InvalidInputError(
            "federated jobs run at every owner's node with the zone's aggregator "
            "(collabzone.techniques.federated._coordinator), not as one run; see "
            "docs/federated.md"
        )

    def check_at_node(
        self,
        plan: Plan,
        context: Mapping[str, Any],
        owner: str,
        approved: str | None,
        pinned_key: str | None,
    ) -> None:
        """At an owner's node, before any row is read: the job is what the owner approved
        (``approved``: the digest in the node's book) and the zone signed it."""
        from collabzone.techniques.federated import _node

        _node.check(plan, context, owner, approved, pinned_key)

    def join(
        self,
        request_id: str,
        plan: Plan,
        ctx: RunContext,
        owner: str,
        options: Mapping[str, Any] | None = None,
    ) -> bool:
        """At an owner's node, after :meth:`check_at_node`: join the zone's aggregator with
        the client bound to the owner's rows (False: not open yet, try again); with
        ``options["superlink"]``, start the owner's SuperNode against it."""
        from collabzone.techniques.federated import _node

        spec = _spec.from_json(plan.details["spec"])
        return _node.join(request_id, plan, ctx, owner, spec, options)

    def leave(self, request_id: str, owner: str) -> None:
        """At an owner's node, once the job ended: stop what :meth:`join` started."""
        from collabzone.techniques.federated import _node

        _node.leave(request_id, owner)

    def result_view(self, payload: Mapping[str, Any]) -> ResultView:
        return result_view(payload)

    def progress(
        self, request_id: str, status: str, plan: Mapping[str, Any], events: Any
    ) -> dict[str, Any]:
        """Where a running job stands, read off its per-round audit events (see
        :mod:`._progress`): round x of n, clients, epsilon so far, evaluation metrics."""
        from collabzone.techniques.federated import _progress

        return _progress.progress(request_id, status, plan, events)

    def progress_view(self, doc: Mapping[str, Any]) -> ResultView:
        """The console's view of :meth:`progress`: facts and the curves so far."""
        from collabzone.techniques.federated import _progress

        return _progress.progress_view(doc)

    def node_risk(self, plan: Plan) -> dict[str, Any]:
        """The owners' risk summary before approval: the projected epsilon per dataset, the
        bound it puts on any membership attacker, and the loss-threshold attack run on a
        stand-in of the job (see :mod:`._mia`)."""
        job = _spec.from_json(plan.details["spec"])
        epsilon = float(plan.details["projected_epsilon"])
        lines = [
            f"runs at the nodes of {', '.join(plan.details['nodes'])}; the zone sees only "
            f"aggregates; each dataset is charged epsilon {epsilon:.3g} (client-level: an "
            "owner's whole dataset, hence each record)"
        ]
        report: dict[str, Any] = {"would_be": "run at the owners' nodes", "epsilon": epsilon}
        if job.task == "train":
            from collabzone.techniques.federated import _mia

            check = _mia.membership_check(job, plan.details["domains"], epsilon)
            report["membership_inference"] = check
            lines.append(
                "membership inference (loss threshold, on a stand-in of this job with random "
                f"labels): advantage {check['advantage_with_dp']:.3f} with the job's noise, "
                f"{check['advantage_without_dp']:.3f} without it (chance level "
                f"{check['chance_level']:.3f}); DP bounds any attacker's advantage by "
                f"{check['dp_bound']:.3f} at this epsilon"
            )
        report["summary"] = lines
        return report

    def release(self, plan: Plan, outcome: Outcome, rules: Rules) -> Outcome:
        """Only the global result and aggregates leave; the epsilon actually spent (rounds
        run, not planned) is debited from every participating dataset."""
        payload = dict(outcome.payload)
        if payload.get("_refused"):
            raise PolicyRefusal([Reason(**r) for r in payload["_refused"]])
        allowed = {"model", "rounds", "results", "epsilon", "stopped", "clients", "metrics"}
        leaked = set(payload) - allowed
        if leaked:
            raise InvalidInputError(f"a federated result may not carry {', '.join(sorted(leaked))}")
        spent_eps = float(payload.get("epsilon", 0.0))
        if spent_eps > float(plan.details["projected_epsilon"]) + 1e-9:
            raise InvalidInputError("the job reports more epsilon than its owners approved")
        delta = plan.details["spec"]["privacy"]["delta"]
        spent = {
            n: PrivacyCost(epsilon=spent_eps, delta=delta if spent_eps else 0.0)
            for n in plan.datasets
        }
        derived = _sealed_model(plan, payload, spent_eps) if payload.get("model") else None
        notes = [f"spec sha256 {plan.details['spec_sha256']}"]
        if derived is not None:
            notes.append(f"model sealed in the zone as dataset {derived.name!r}")
            payload["model_dataset"] = derived.name
        return Outcome(
            payload=payload,
            mechanism="gaussian (client-level, RDP accounting)",
            spent=spent,
            notes=tuple(notes),
            derived=derived,
        )


def result_view(payload: Mapping[str, Any]) -> ResultView:
    """Facts (rounds, clients, epsilon, where the model is sealed), the per-round records
    as a table, and accuracy and loss per round as curves."""
    rounds = list(payload.get("rounds") or [])
    facts: list[tuple[str, str]] = [
        ("rounds run", cell(len(rounds))),
        ("clients", ", ".join(map(str, payload.get("clients") or [])) or "-"),
        ("epsilon spent (client-level)", cell(payload.get("epsilon"))),
    ]
    if rounds:
        facts += [
            ("clipping norm", cell(rounds[-1].get("clipping_norm"))),
            ("noise std", cell(rounds[-1].get("noise_std"))),
        ]
    if payload.get("stopped"):
        facts.append(("stopped", str(payload["stopped"])))
    if payload.get("model_dataset"):
        facts.append(("sealed model", str(payload["model_dataset"])))
    tables = []
    if rounds:
        rows = [
            [r.get("round"), len(r.get("clients") or []), r.get("clipping_norm"),
             r.get("noise_std"), r.get("epsilon")]
            for r in rounds
        ]  # fmt: skip
        columns = ["round", "clients", "clipping norm", "noise std", "epsilon so far"]
        tables.append(view_table("Rounds", columns, rows))
    if "results" in payload:  # analytics
        tables.append(
            view_table(
                "Aggregates",
                ["query", "column", "value"],
                [
                    [r.get("kind"), r.get("column", "-"), r.get("value", r.get("counts"))]
                    for r in payload["results"]
                ],
            )
        )
    metrics = [m for m in payload.get("metrics") or [] if isinstance(m, Mapping)]
    curves = tuple(
        CurveView(
            f"{name.capitalize()} per round (evaluation data)",
            "round",
            name,
            {name: tuple((float(m["round"]), float(m[name])) for m in metrics if name in m)},
        )
        for name in ("accuracy", "loss")
        if any(name in m for m in metrics)
    )
    return ResultView(facts=tuple(facts), tables=tuple(tables), curves=curves)


def _sealed_model(plan: Plan, payload: Mapping[str, Any], epsilon: float) -> DerivedDataset:
    """The released model as a sealed dataset of the analyst: one row per parameter
    (``tensor``, ``position``, ``value``), encrypted at rest like every dataset."""
    rows = tuple(
        (t, i, float(v))
        for t, tensor in enumerate(payload["model"])
        for i, v in enumerate(np.ravel(np.asarray(tensor, dtype=np.float64)))
    )
    return DerivedDataset(
        name=f"fl_model_{plan.details['spec_sha256'][:8]}_{secrets.token_hex(3)}",
        columns=(
            {"name": "tensor", "type": "integer", "class": "dimension"},
            {"name": "position", "type": "integer", "class": "dimension"},
            {"name": "value", "type": "float", "class": "measure"},
        ),
        rows=rows,
        provenance={
            "method": "federated",
            "spec_sha256": plan.details["spec_sha256"],
            "datasets": list(plan.datasets),
            "epsilon": epsilon,
            "shapes": [list(np.shape(t)) for t in payload["model"]],
        },
        description=f"federated {plan.details['spec']['model']} model (spec "
        f"{plan.details['spec_sha256'][:12]}), client-level DP epsilon {epsilon:.3g}",
    )
