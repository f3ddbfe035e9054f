"""The respondents' survey page, served by the zone (``app.include_router(router)``).

``GET /survey/<id>#<invitation>`` draws the questions; its script (``/survey/static/
survey.js``, plain JS, no CDN, allowed by the console's ``script-src 'self'``) splits each
answer into Shamir shares over the compute servers' field with Web Crypto randomness and
BigInt arithmetic, seals each server's shares to that server's public key, and posts the
sealed shares with the invitation to ``POST /survey/<id>/answers``. The compute servers
are not reachable from the browser (the page's ``connect-src`` is the zone alone), so the
zone keeps the sealed shares in per-server inboxes (:class:`SurveyBox`) and relays them.

The invitation travels in the URL fragment, which browsers never send in a request line,
so no access log ties an invitation to the moment an answer arrived. The form has no
action: without the script nothing is sent, never a plain answer.
"""

from __future__ import annotations

import json
from html import escape
from pathlib import Path
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field

from collabzone.errors import NotFoundError
from collabzone.techniques import registry
from collabzone.techniques.mpc._survey_box import SurveyBox

SCRIPT = Path(__file__).with_name("static") / "survey.js"
router = APIRouter(include_in_schema=False)


class Sealed(BaseModel):
    """One server's shares sealed to its key (see ``_survey.seal``)."""

    epk: str = Field(max_length=200)
    iv: str = Field(max_length=40)
    ct: str = Field(max_length=60_000)


class AnswerBody(BaseModel):
    token: str = Field(min_length=1, max_length=200)
    sealed: list[Sealed] = Field(min_length=1, max_length=16)


def _box(survey: str) -> SurveyBox:
    root = getattr(registry.get("survey"), "root", None)
    if root is None:
        raise NotFoundError("this zone runs no surveys")
    return SurveyBox(Path(root), survey)


@router.get("/survey/static/survey.js")
def script() -> Response:
    return Response(SCRIPT.read_text("utf-8"), media_type="text/javascript")


@router.get("/survey/{survey}", response_class=HTMLResponse)
def page(survey: str) -> HTMLResponse:
    box = _box(survey)
    doc = box.document()
    spec = doc["spec"]
    fields = []
    for i, question in enumerate(spec["questions"]):
        options = "".join(
            f'<label><input type="radio" name="q{i}" value="{j}"> {escape(answer)}</label>'
            for j, answer in enumerate(question["answers"])
        )
        fields.append(
            f'<fieldset id="q{i}"><legend>{escape(question["text"])}</legend>{options}</fieldset>'
        )
    data = {
        "survey": doc["id"],
        "modulus": doc["modulus"],
        "one": doc["one"],
        "threshold": str(spec["threshold"]),
        "keys": json.dumps(doc["keys"]),
    }
    attributes = " ".join(f'data-{k}="{escape(v)}"' for k, v in data.items())
    closed = "<p><strong>This survey is closed.</strong></p>" if box.closed else ""
    body = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(spec["title"])}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:40rem;margin:1rem auto;padding:0 1rem}}
fieldset{{margin:0 0 1rem;border:1px solid #ccc}}label{{display:block;padding:.2rem 0}}
button{{font-size:1rem;padding:.4rem 1rem}}</style>
<script src="/survey/static/survey.js" defer></script></head>
<body><main id="survey" {attributes}>
<h1>{escape(spec["title"])}</h1>{closed}
<p>Your browser splits each answer into {len(doc["keys"])} random shares, one sealed to each
compute server; no single server and not this zone can read your answers. Only the counts
over all respondents reach {escape(spec["recipient"])}.</p>
<noscript><p>This page needs JavaScript: it splits your answers on your device.</p></noscript>
<form id="answers">{"".join(fields)}
<button id="send" type="button">Send my answers</button></form>
<p id="status" role="status" aria-live="polite"></p></main></body></html>"""
    return HTMLResponse(body)


@router.post("/survey/{survey}/answers")
def answer(survey: str, body: AnswerBody) -> dict[str, Any]:
    _box(survey).answer(body.token, [s.model_dump() for s in body.sealed])
    return {"received": True}
