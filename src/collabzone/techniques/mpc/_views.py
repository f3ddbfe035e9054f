"""What the console shows of ``mpc``, ``he_sum`` and ``survey`` releases: status, never values.

These releases carry no value the zone could show: a reference to output shares only the
recipient opens, or a ciphertext only the recipient decrypts. The console says where the
report stands, who uploaded (or deposited) what and when, and who alone can read the
result. A ciphertext, a digest beyond its first characters, an invitation link: none is
drawn (the API still returns the reader's whole view).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from collabzone.techniques.view import ResultView, TableView, table

NOT_HERE = "only the recipient's client opens it; the zone never held the value"


def _when(value: Any) -> str:
    """A time the technique recorded (epoch seconds or ISO text) in UTC words."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        moment = dt.datetime.fromtimestamp(value, dt.UTC)
    elif isinstance(value, str):
        try:
            moment = dt.datetime.fromisoformat(value)
        except ValueError:
            return "-"
    else:
        return "-"
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _uploads(title: str, rows: Any, when_key: str) -> tuple[TableView, ...]:
    if not isinstance(rows, list) or not rows:
        return ()
    shown = [
        [r.get("provider"), r.get("dataset"), r.get("rows", "-"), _when(r.get(when_key))]
        for r in rows
        if isinstance(r, Mapping)
    ]
    return (table(title, ["provider", "dataset", "records", "when (UTC)"], shown),)


def _bundle_facts(bundle: Any) -> list[tuple[str, str]]:
    if not isinstance(bundle, Mapping):
        return []
    return [
        ("output shares", f"{bundle.get('servers', '-')} servers, any "
                          f"{int(bundle.get('threshold', 0)) + 1} open it"),
        ("bundle SHA-256", f"{str(bundle.get('sha256', ''))[:12]}…"),
    ]  # fmt: skip


def mpc_view(payload: Mapping[str, Any]) -> ResultView:
    """An ``mpc`` report: delivered to the recipient, from which uploads."""
    facts = [
        ("report", str(payload.get("report", "-"))),
        ("status", "computed; output shares delivered to the recipient"),
        ("recipient", str(payload.get("recipient", "-"))),
        ("value", NOT_HERE),
        *_bundle_facts(payload.get("bundle")),
    ]
    return ResultView(
        facts=tuple(facts), tables=_uploads("Uploads", payload.get("uploads"), "registered")
    )


def he_view(payload: Mapping[str, Any]) -> ResultView:
    """An ``he_sum`` total: encrypted for the recipient, from which deposits."""
    facts = [
        ("status", "added under encryption; the encrypted total awaits the recipient"),
        ("recipient", str(payload.get("recipient", "-"))),
        ("providers", str(payload.get("providers", "-"))),
        ("value", "only the recipient's secret key decrypts it; the zone has none"),
        ("ciphertext SHA-256", f"{str(payload.get('sha256', ''))[:12]}…"),
    ]
    if payload.get("epsilon") is not None:
        facts.append(
            ("DP noise", f"Laplace, epsilon {payload['epsilon']:g}, scale "
                         f"{payload.get('noise_scale', 0):g}, added by the zone under encryption")
        )  # fmt: skip
    return ResultView(
        facts=tuple(facts), tables=_uploads("Deposits", payload.get("deposits"), "deposited")
    )


def survey_view(payload: Mapping[str, Any]) -> ResultView:
    """A survey opened (page, invitations) or reported (respondents, delivered)."""
    facts: list[tuple[str, str]] = [("survey", str(payload.get("title", "-")))]
    if payload.get("action") == "open":
        facts += [
            ("status", "open for answers"),
            ("page", str(payload.get("page", "-"))),
            ("questions", str(payload.get("questions", "-"))),
            ("invitations", str(payload.get("invitations", "-"))),
            ("recipient of the report", str(payload.get("recipient", "-"))),
        ]
        links = payload.get("invitation_links")
        if isinstance(links, list):
            facts.append(
                ("your invitation links", f"{len(links)}, read them through the API "
                                          "and send one to each respondent")
            )  # fmt: skip
    else:
        facts += [
            ("status", "closed; counts computed, output shares delivered to the recipient"),
            ("respondents", str(payload.get("respondents", "-"))),
            ("recipient", str(payload.get("recipient", "-"))),
            ("value", NOT_HERE),
            *_bundle_facts(payload.get("bundle")),
        ]
        if payload.get("epsilon") is not None:
            facts.append(
                ("DP noise on the counts", f"added inside MPC, epsilon {payload['epsilon']:g}, "
                                           f"delta {payload.get('delta', 0):g}")
            )  # fmt: skip
    return ResultView(facts=tuple(facts))
