"""The ``survey`` technique: a survey is a zone request, and so is its report.

* **Open** (spec: the :class:`SurveySpec` keys): ``plan`` checks the respondents'
  population (a dataset registered by its owner, metadata only), the recipient and that
  every named server is a party of role ``compute``; ``check`` (pure) applies the
  population owner's ``survey`` agreement: ``recipients`` and ``min_group_size`` (the
  survey's ``min_respondents`` may not be lower). Once approved, ``run`` creates the
  survey's box (:class:`SurveyBox`) and its invitations; the release tells the requester
  where the page is and gives the invitation links to the population's owner only (it
  knows the respondents; the requester learns no link).
* **Report** (spec ``{"close": <survey id>}``, optionally ``"epsilon"`` and ``"delta"``):
  same owner rules; ``run`` refuses while fewer than ``min_respondents`` answered, then
  closes the survey and has the :class:`SurveyDriver` bring each server's inbox into its
  store and run the ``sum`` report over the answer columns, whose output shares go to the
  recipient only; the zone keeps the bundle's reference (:func:`open_survey` reads it on
  the recipient's machine). With ``epsilon``, the ``mpc`` reports' binomial noise is added
  to every count inside MPC before anything leaves the servers (see
  :func:`~collabzone.techniques.mpc._reports.compute`), and (epsilon, delta) is debited
  from the population's ledger like any DP release.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from collabzone.budget import PrivacyCost, privacy_parameter
from collabzone.errors import (
    ConflictError,
    InternalError,
    InvalidInputError,
    PolicyRefusal,
    Reason,
)
from collabzone.model import Role
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
from collabzone.techniques.mpc._drivers import open_bundle
from collabzone.techniques.mpc._reports import ReportSpec
from collabzone.techniques.mpc._store import ShareStore
from collabzone.techniques.mpc._survey import SurveySpec, read_counts
from collabzone.techniques.mpc._survey_box import SurveyBox, open_inbox, package
from collabzone.techniques.mpc._technique import NOT_SEEN, Driver
from collabzone.techniques.view import ResultView

SURVEY_DIR_ENV = "COLLABZONE_SURVEY_DIR"
_OPEN_KEYS = frozenset({"action", "survey", "title", "page", "questions", "invitations",
                        "recipient", "servers", "population"})  # fmt: skip
_CLOSE_KEYS = frozenset(
    {"action", "survey", "title", "recipient", "respondents", "bundle", "epsilon", "delta"}
)
_CLOSE_SPEC = frozenset({"close", "epsilon", "delta"})
DEFAULT_DELTA = 1e-6


class SurveyDriver:
    """Each server opens its own inbox, keeps the answers every server opened, stores its
    shares sealed, then the servers run the ``sum`` report (through ``inner``)."""

    def __init__(self, stores: Sequence[ShareStore], inner: Driver) -> None:
        self.stores, self.inner = list(stores), inner

    def __call__(
        self, box: SurveyBox, *, epsilon: float | None = None, delta: float = DEFAULT_DELTA
    ) -> tuple[Mapping[str, Any], int]:
        """Run the survey's report; ``epsilon`` adds DP noise to each count inside MPC."""
        spec = box.spec()
        if len(self.stores) != len(spec.servers):
            raise ConflictError(
                f"the survey names {len(spec.servers)} servers, not {len(self.stores)}"
            )
        width = len(spec.columns())
        opened = [
            open_inbox(box.inbox(i), store.inbox_key(), box.id, i, width)
            for i, store in enumerate(self.stores)
        ]
        common = sorted(set.intersection(*(set(o) for o in opened)))
        if len(common) < spec.min_respondents:
            raise PolicyRefusal(
                Reason("GROUP_TOO_SMALL", "min_group_size",
                       f"{len(common)} well-formed answers, fewer than {spec.min_respondents}")
            )  # fmt: skip
        for index, (store, shares) in enumerate(zip(self.stores, opened, strict=True)):
            store.put(package(spec, box.id, index, shares, common))
        report = ReportSpec(
            report="sum",
            datasets=(f"survey-{box.id}",),
            columns=tuple(spec.columns()),
            recipient=spec.recipient,
            epsilon=epsilon,
            delta=delta,
        )
        return self.inner(report), len(common)


def open_survey(payload: Mapping[str, Any], spec: SurveySpec, recipient: str) -> dict[str, Any]:
    """The recipient's result of a survey report: counts per answer and numeric means."""
    opened = open_bundle(payload["bundle"], recipient)
    return read_counts(spec, opened["result"], int(opened["rows"]))


class Survey(Technique):
    """Surveys whose answers the respondents' browsers secret-share (see module docs)."""

    name = "survey"
    summary = "a survey answered in the browser as secret shares, tallied in MPC for a recipient"
    rule_specs = (
        RuleSpec("recipients", Merge.SUBSET, "parties that may open a report ('*': any)", list),
    )

    def __init__(self, root: Path | None = None, driver: SurveyDriver | None = None) -> None:
        configured = os.environ.get(SURVEY_DIR_ENV)
        self.root = Path(root) if root else (Path(configured) if configured else None)
        self.driver = driver

    def _root(self) -> Path:
        if self.root is None:
            raise ConflictError(
                f"no survey directory is configured: set {SURVEY_DIR_ENV} or register "
                "Survey(root) with the technique registry"
            )
        return self.root

    def plan(self, spec: Mapping[str, Any], ctx: PlanContext) -> Plan:
        cost: dict[str, PrivacyCost] = {}
        if "close" in spec:
            if set(spec) - _CLOSE_SPEC:
                raise InvalidInputError(
                    f"a survey report takes only {sorted(_CLOSE_SPEC)}, not {sorted(set(spec) - _CLOSE_SPEC)}"
                )
            if not isinstance(spec["close"], str):
                raise InvalidInputError("'close' names a survey id")
            box = SurveyBox(self._root(), spec["close"])
            survey, action = box.spec(), "close"
            details: dict[str, Any] = {"action": action, "survey": box.id, "spec": survey.to_json()}
            outputs = f"output shares of survey {box.id}'s counts, opened by {survey.recipient!r}"
            if spec.get("epsilon") is not None:
                epsilon = privacy_parameter("epsilon", spec["epsilon"])
                delta = privacy_parameter("delta", spec.get("delta", DEFAULT_DELTA))
                if not delta > 0:
                    raise InvalidInputError("binomial noise needs delta > 0")
                details.update(epsilon=epsilon, delta=delta)
                cost = {survey.dataset: PrivacyCost(epsilon=epsilon, delta=delta)}
                outputs += f", with DP noise added inside MPC (epsilon {epsilon:g})"
        else:
            survey, action = SurveySpec.from_json(spec), "open"
            details = {"action": action, "spec": survey.to_json()}
            outputs = f"a survey page and {survey.invitations} invitations"
        population = ctx.dataset(survey.dataset)
        ctx.party(survey.recipient)
        for server in survey.servers:
            if not ctx.party(server).has_role(Role.COMPUTE):
                raise InvalidInputError(f"{server!r} is not a party of role 'compute'")
        if action == "open" and survey.invitations > population.row_count:
            raise InvalidInputError(
                f"{survey.invitations} invitations for a population of {population.row_count}"
            )
        return Plan(
            technique=self.name,
            datasets=(survey.dataset,),
            cost=cost,
            columns={survey.dataset: ()},
            outputs=outputs,
            details=details,
        )

    def check(self, plan: Plan, rules: Rules, ctx: PlanContext) -> list[Reason]:
        survey = SurveySpec.from_json(plan.details["spec"])
        population = ctx.dataset(survey.dataset)
        own = rules.by_dataset.get(survey.dataset, {})
        if population.owner == ctx.requester.name and not own:
            return []
        reasons = []
        recipients = own.get("recipients") or []
        if survey.recipient not in recipients and "*" not in recipients:
            reasons.append(
                Reason("RECIPIENT_NOT_GRANTED", "recipients",
                       f"{survey.recipient!r} may not receive surveys of {survey.dataset!r}",
                       population.owner)
            )  # fmt: skip
        floor = int(own.get("min_group_size") or 0)
        if survey.min_respondents < floor:
            reasons.append(
                Reason("GROUP_TOO_SMALL", "min_group_size",
                       f"min_respondents {survey.min_respondents} is below the owner's "
                       f"minimum group size {floor}", population.owner)
            )  # fmt: skip
        return reasons

    def run(self, plan: Plan, ctx: RunContext) -> Outcome:
        survey = SurveySpec.from_json(plan.details["spec"])
        owner = ctx.dataset(survey.dataset).owner
        if plan.details["action"] == "open":
            box, tokens = SurveyBox.create(self._root(), survey)
            page = f"/survey/{box.id}"
            return Outcome(
                payload={
                    "action": "open", "survey": box.id, "title": survey.title, "page": page,
                    "questions": len(survey.questions), "invitations": survey.invitations,
                    "recipient": survey.recipient, "servers": list(survey.servers),
                    "population": survey.dataset,
                },
                released_to=(ctx.requester.name,),
                parts={owner: {"invitation_links": [f"{page}#{t}" for t in tokens]}},
                notes=("each invitation is a URL fragment, usable once; answers are shares "
                       "sealed to the compute servers, which the zone cannot open",),
            )  # fmt: skip
        if self.driver is None:
            raise ConflictError(
                "no compute servers are configured for surveys: register "
                "Survey(root, SurveyDriver(stores, driver)) with the technique registry"
            )
        box = SurveyBox(self._root(), plan.details["survey"])
        answered = box.status()["answered"]
        if answered < survey.min_respondents:
            raise PolicyRefusal(
                Reason("GROUP_TOO_SMALL", "min_group_size",
                       f"{answered} respondents answered, fewer than {survey.min_respondents}: "
                       "ask again later", owner)
            )  # fmt: skip
        epsilon, delta = plan.details.get("epsilon"), plan.details.get("delta", DEFAULT_DELTA)
        box.close()
        bundle, respondents = self.driver(box, epsilon=epsilon, delta=delta)
        noise = {"epsilon": epsilon, "delta": delta} if epsilon is not None else {}
        return Outcome(
            payload={
                "action": "close",
                "survey": box.id,
                "title": survey.title,
                "recipient": survey.recipient,
                "respondents": respondents,
                "bundle": dict(bundle),
                **noise,
            },
            mechanism=(
                f"binomial noise inside MPC on each count (epsilon {epsilon:g}, delta {delta:g})"
                if epsilon is not None
                else None
            ),
            spent=dict(plan.cost),
            released_to=tuple(dict.fromkeys((ctx.requester.name, survey.recipient))),
            notes=(NOT_SEEN,),
        )

    def release(self, plan: Plan, outcome: Outcome, rules: Rules) -> Outcome:
        allowed = _OPEN_KEYS if plan.details["action"] == "open" else _CLOSE_KEYS
        extra = set(outcome.payload) - allowed
        if extra:
            raise InternalError(f"a survey outcome may not carry {sorted(extra)}")
        return outcome

    def result_view(self, payload: Mapping[str, Any]) -> ResultView:
        from collabzone.techniques.mpc._views import survey_view

        return survey_view(payload)
