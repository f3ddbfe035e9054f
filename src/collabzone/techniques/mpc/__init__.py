"""Secure multiparty computation over secret-shared data (MPyC), and HE via a mediator.

Providers split their values into Shamir shares on their own machines
(:func:`split_upload`) and send one share to each compute server (:class:`ShareStore`,
sealed at rest); the servers run predefined reports together in MPyC
(:func:`run_report`, one process each) and hand their output shares to the recipient,
whose client opens them (:func:`open_report`). HE via a mediator (TenSEAL CKKS) is in
:mod:`collabzone.techniques.mpc._he` (:class:`RecipientKeys`, :func:`encrypt`,
:func:`aggregate`). As zone requests: technique ``mpc`` (:class:`MPC`, with a driver that reaches the
servers) and technique ``he_sum`` (:class:`HESum`, the zone as keyless HE mediator). See docs/mpc.md for the trust model.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collabzone.techniques.mpc._client import open_report, split_upload
    from collabzone.techniques.mpc._drivers import InProcessDriver, ProcessDriver, open_bundle
    from collabzone.techniques.mpc._he import RecipientKeys, aggregate, encrypt
    from collabzone.techniques.mpc._he_technique import HESum, deposit, open_total, publish_context
    from collabzone.techniques.mpc._reports import REPORTS, Holding, ReportSpec, check, enforce
    from collabzone.techniques.mpc._server import run_report
    from collabzone.techniques.mpc._store import ShareStore
    from collabzone.techniques.mpc._survey import SurveySpec
    from collabzone.techniques.mpc._survey_box import SurveyBox, publish_server_key
    from collabzone.techniques.mpc._survey_technique import Survey, SurveyDriver, open_survey
    from collabzone.techniques.mpc._technique import MPC

_EXPORTS = {
    "open_report": "_client",
    "split_upload": "_client",
    "InProcessDriver": "_drivers",
    "ProcessDriver": "_drivers",
    "open_bundle": "_drivers",
    "RecipientKeys": "_he",
    "aggregate": "_he",
    "encrypt": "_he",
    "HESum": "_he_technique",
    "deposit": "_he_technique",
    "open_total": "_he_technique",
    "publish_context": "_he_technique",
    "REPORTS": "_reports",
    "Holding": "_reports",
    "ReportSpec": "_reports",
    "check": "_reports",
    "enforce": "_reports",
    "run_report": "_server",
    "ShareStore": "_store",
    "SurveySpec": "_survey",
    "SurveyBox": "_survey_box",
    "publish_server_key": "_survey_box",
    "Survey": "_survey_technique",
    "SurveyDriver": "_survey_technique",
    "open_survey": "_survey_technique",
    "MPC": "_technique",
}
"""Where each public name lives: imported on first use (PEP 562), so a compute-server
process, which needs only the MPC modules, does not import HE and the survey page."""


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "MPC",
    "REPORTS",
    "HESum",
    "Holding",
    "InProcessDriver",
    "ProcessDriver",
    "RecipientKeys",
    "ReportSpec",
    "ShareStore",
    "Survey",
    "SurveyBox",
    "SurveyDriver",
    "SurveySpec",
    "aggregate",
    "check",
    "deposit",
    "encrypt",
    "enforce",
    "open_bundle",
    "open_report",
    "open_survey",
    "open_total",
    "publish_context",
    "publish_server_key",
    "run_report",
    "split_upload",
]
