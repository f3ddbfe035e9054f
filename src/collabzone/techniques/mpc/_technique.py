"""The ``mpc`` technique: a predefined report over secret-shared datasets as a zone request.

An analyst asks for a report (:class:`~collabzone.techniques.mpc._reports.ReportSpec` keys:
``report``, ``datasets``, ``columns``, ``recipient``, optional ``epsilon``/``delta``, ...).

* ``plan`` checks the datasets exist in the catalogue (an MPC dataset is registered with
  :meth:`Zone.register_dataset`: schema and row count only, the values are shares at the
  compute servers) and prices DP noise, if asked, per dataset.
* ``check`` is pure: each owner's ``mpc`` agreement must accept the report (``reports``),
  the recipient (``recipients``), and the declared row count must reach ``min_group_size``
  (the servers re-check it on the rows they really hold). The budget rules
  (``max_epsilon_per_request``, ``epsilon_budget``) are the zone's core rules.
* ``run`` hands the report to a :class:`Driver` (in-process or server processes, see
  :mod:`collabzone.techniques.mpc._drivers`), which delivers every server's output shares
  to the recipient's outbox. The zone keeps only a reference to that bundle (its path and
  SHA-256): it never holds the opened value, and the receipt says so.
* ``release`` refuses any outcome that carries shares or values, and lets the reference out
  to the requester and the recipient; DP noise drawn inside MPC is debited from the ledger.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from collabzone.budget import PrivacyCost, privacy_parameter
from collabzone.errors import ConflictError, InternalError, InvalidInputError, Reason
from collabzone.techniques.base import (
    Merge,
    Outcome,
    Plan,
    PlanContext,
    Rules,
    RuleSpec,
    RunContext,
    Technique,
)
from collabzone.techniques.mpc._reports import REPORTS, ReportSpec
from collabzone.techniques.view import ResultView

NOT_SEEN = (
    "the zone did not see the report's value: the compute servers sent their output shares "
    "to the recipient, whose client alone opens them (collabzone mpc open)"
)
_SAFE_KEYS = frozenset(
    {"report", "datasets", "recipient", "bundle", "servers", "threshold", "uploads"}
)


class Driver(Protocol):
    """Runs a report on the compute servers and delivers the output shares to the recipient.

    Returns the bundle's reference (``{"path": ..., "sha256": ..., "servers": n,
    "threshold": t}``), never the shares or the value.
    """

    def __call__(self, spec: ReportSpec) -> Mapping[str, Any]: ...


class MPC(Technique):
    """Predefined reports over data secret-shared across compute servers (MPyC)."""

    name = "mpc"
    summary = "predefined reports over secret-shared data, opened only by the recipient (MPyC)"
    rule_specs = (
        RuleSpec(
            "reports",
            Merge.SUBSET,
            f"reports the provider accepts its data may feed (among {', '.join(REPORTS)})",
            list,
        ),
        RuleSpec("recipients", Merge.SUBSET, "parties that may open a report ('*': any)", list),
    )

    def __init__(self, driver: Driver | None = None) -> None:
        self.driver = driver

    def plan(self, spec: Mapping[str, Any], ctx: PlanContext) -> Plan:
        report = ReportSpec.from_json(spec)
        ctx.party(report.recipient)  # the recipient must be a party of the zone
        columns: dict[str, tuple[str, ...]] = {}
        wanted = (*report.columns, *([report.bound] if report.bound else []))
        for name in report.datasets:
            dataset = ctx.dataset(name)
            have = {c.name for c in dataset.columns}
            mine = tuple(c for c in wanted if c in have)
            if not report.join and len(mine) != len(wanted):
                missing = sorted(set(wanted) - have)
                raise InvalidInputError(f"dataset {name!r} has no column(s) {missing}")
            columns[name] = mine
        if report.join:
            for column in wanted:
                if sum(column in cols for cols in columns.values()) != 1:
                    raise InvalidInputError(
                        f"column {column!r} must be in exactly one joined dataset"
                    )
        cost: dict[str, PrivacyCost] = {}
        if report.epsilon is not None:
            epsilon = privacy_parameter("epsilon", report.epsilon)
            cost = {n: PrivacyCost(epsilon=epsilon, delta=report.delta) for n in report.datasets}
        return Plan(
            technique=self.name,
            datasets=report.datasets,
            cost=cost,
            columns=columns,
            outputs=f"output shares of report {report.report!r}, opened by {report.recipient!r}",
            details={"report": report.to_json()},
        )

    def check(self, plan: Plan, rules: Rules, ctx: PlanContext) -> list[Reason]:
        report = ReportSpec.from_json(plan.details["report"])
        reasons: list[Reason] = []
        rows: dict[str, int] = {}
        for name in plan.datasets:
            dataset = ctx.dataset(name)
            rows[name] = dataset.row_count
            own = rules.by_dataset.get(name, {})
            if dataset.owner == ctx.requester.name and not own:
                continue  # the owner's own data: no agreement needed
            accepted = own.get("reports") or []
            if report.report not in accepted:
                reasons.append(
                    Reason("REPORT_NOT_ACCEPTED", "reports",
                           f"the owner accepted {list(accepted)} on {name!r}, "
                           f"not {report.report!r}", dataset.owner)
                )  # fmt: skip
            recipients = own.get("recipients") or []
            if report.recipient not in recipients and "*" not in recipients:
                reasons.append(
                    Reason("RECIPIENT_NOT_GRANTED", "recipients",
                           f"{report.recipient!r} may not receive reports on {name!r}",
                           dataset.owner)
                )  # fmt: skip
            floor = int(own.get("min_group_size") or 0)
            if rows[name] < floor:
                reasons.append(
                    Reason("GROUP_TOO_SMALL", "min_group_size",
                           f"{name!r} declares {rows[name]} records, fewer than the minimum "
                           f"group size {floor} (each dataset must reach its own)",
                           dataset.owner)
                )  # fmt: skip
        return reasons

    def run(self, plan: Plan, ctx: RunContext) -> Outcome:
        driver = self.driver
        if driver is None:
            from collabzone.techniques.mpc._remote import SERVERS_ENV, configured_driver

            driver = configured_driver(ctx.technique_dir())
            if driver is None:
                raise ConflictError(
                    f"no compute servers are configured for this zone: set {SERVERS_ENV} "
                    "(remote servers running `collabzone mpc serve`) or register the "
                    "technique with a driver, e.g. registry.register('mpc', MPC(...))"
                )
        report = ReportSpec.from_json(plan.details["report"])
        bundle = dict(driver(report))
        if set(bundle) - {"path", "sha256", "servers", "threshold"}:
            raise InternalError("an MPC driver returned more than a reference to the bundle")
        uploads = []
        for name in report.datasets:
            dataset = ctx.dataset(name)
            uploads.append(
                {"dataset": name, "provider": dataset.owner, "rows": dataset.row_count,
                 "registered": dataset.created_at.isoformat()}
            )  # fmt: skip
        return Outcome(
            payload={
                "report": report.report,
                "datasets": list(report.datasets),
                "recipient": report.recipient,
                "bundle": bundle,
                "uploads": uploads,
            },
            mechanism=(
                f"binomial noise inside MPC (epsilon {report.epsilon:g}, delta {report.delta:g})"
                if report.epsilon is not None
                else None
            ),
            spent=dict(plan.cost),
            released_to=tuple(dict.fromkeys((ctx.requester.name, report.recipient))),
            notes=(NOT_SEEN,),
        )

    def release(self, plan: Plan, outcome: Outcome, rules: Rules) -> Outcome:
        extra = set(outcome.payload) - _SAFE_KEYS
        if extra:
            raise InternalError(f"an MPC outcome may carry only a bundle reference, not {extra}")
        return outcome

    def result_view(self, payload: Mapping[str, Any]) -> ResultView:
        """Report status, the uploads it read (provider, records, when), never a value."""
        from collabzone.techniques.mpc._views import mpc_view

        return mpc_view(payload)


def reference(path: str, sha256: str, servers: int, threshold: int) -> dict[str, Any]:
    """A bundle reference as drivers return it."""
    return {"path": path, "sha256": sha256, "servers": servers, "threshold": threshold}


__all__: Sequence[str] = ("MPC", "NOT_SEEN", "Driver", "reference")
