"""Surveys over secret shares: the questions, the answer encoding, the sealed share boxes.

A survey is a list of questions, each with its allowed answers. A respondent's answer to
a question is a one-hot vector (1 for the chosen answer, 0 for the others), each entry a
64-bit fixed-point field element of the compute servers' own field (``SecFxp(64)``: 1 is
``2**32``), so a tally is the servers' ``sum`` report over the answer columns.

The respondent's browser splits every entry into Shamir shares (degree ``threshold``,
server ``i`` at x = i + 1, as :func:`~collabzone.techniques.mpc._shares.split`) and seals
each server's shares to that server's public key (ECDH P-256, HKDF-SHA-256, AES-256-GCM,
all Web Crypto), then posts the sealed shares to the zone, which drops each into the
addressed server's inbox (:class:`SurveyBox`). The zone holds ciphertexts it cannot open;
each server opens only its own inbox (:func:`open_inbox`). :func:`seal` and
:func:`split_answers` are the browser's code in Python (the benchmark and tests use them).
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from collabzone.errors import InvalidInputError

MAX_QUESTIONS = 100
MAX_ANSWERS = 20
SALT = bytes(32)
"""HKDF salt (32 zero bytes, as the browser passes it)."""


@dataclass(frozen=True)
class Question:
    """One question and its allowed answers (the respondent picks exactly one)."""

    text: str
    answers: tuple[str, ...]

    def numeric(self) -> list[float] | None:
        """The answers as numbers when every one is a number (the report adds a mean)."""
        try:
            return [float(a) for a in self.answers]
        except ValueError:
            return None


@dataclass(frozen=True)
class SurveySpec:
    """A survey: questions, the report's recipient, the servers and who answers."""

    title: str
    questions: tuple[Question, ...]
    recipient: str
    dataset: str
    """The respondents' population, registered by its owner, who approves the survey."""
    servers: tuple[str, ...]
    """The compute parties, in MPyC's party order."""
    invitations: int
    threshold: int = 1
    min_respondents: int = 10

    def __post_init__(self) -> None:
        if not self.title or not self.recipient or not self.dataset:
            raise InvalidInputError("a survey needs a 'title', a 'recipient' and a 'dataset'")
        if not 0 < len(self.questions) <= MAX_QUESTIONS:
            raise InvalidInputError(f"a survey has 1 to {MAX_QUESTIONS} questions")
        for number, question in enumerate(self.questions, 1):
            if not question.text or not 2 <= len(question.answers) <= MAX_ANSWERS:
                raise InvalidInputError(
                    f"question {number} needs a text and 2 to {MAX_ANSWERS} allowed answers"
                )
            if len(set(question.answers)) != len(question.answers):
                raise InvalidInputError(f"question {number} repeats an answer")
        if len(set(self.servers)) != len(self.servers):
            raise InvalidInputError("name each compute server once")
        if self.threshold < 0 or 2 * self.threshold >= len(self.servers):
            raise InvalidInputError(
                "need 0 <= threshold and 2 * threshold < number of servers "
                f"(got {len(self.servers)} servers, threshold {self.threshold})"
            )
        if self.invitations < 1 or self.min_respondents < 1:
            raise InvalidInputError("'invitations' and 'min_respondents' must be at least 1")

    def columns(self) -> list[str]:
        """One share column per (question, answer): ``q<i>.a<j>``, 0-based."""
        return [f"q{i}.a{j}" for i, q in enumerate(self.questions) for j in range(len(q.answers))]

    def to_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "questions": [{"text": q.text, "answers": list(q.answers)} for q in self.questions],
            "recipient": self.recipient,
            "dataset": self.dataset,
            "servers": list(self.servers),
            "invitations": self.invitations,
            "threshold": self.threshold,
            "min_respondents": self.min_respondents,
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> SurveySpec:
        known = {
            "title", "questions", "recipient", "dataset", "servers", "invitations",
            "threshold", "min_respondents",
        }  # fmt: skip
        unknown = set(doc) - known
        if unknown:
            raise InvalidInputError(f"unknown survey keys: {sorted(unknown)}")
        questions = doc.get("questions")
        if not isinstance(questions, list) or not all(
            isinstance(q, Mapping)
            and isinstance(q.get("text"), str)
            and isinstance(q.get("answers"), list)
            and all(isinstance(a, str) and a for a in q["answers"])
            for q in questions
        ):
            raise InvalidInputError(
                '\'questions\' must be a list of {"text": ..., "answers": [text, ...]}'
            )
        for key in ("title", "recipient", "dataset"):
            if not isinstance(doc.get(key), str):
                raise InvalidInputError(f"survey key {key!r} must be text")
        servers = doc.get("servers")
        if not isinstance(servers, list) or not all(isinstance(s, str) for s in servers):
            raise InvalidInputError("'servers' must list the compute parties by name")
        numbers = {}
        for key, default in (("invitations", None), ("threshold", 1), ("min_respondents", 10)):
            value = doc.get(key, default)
            if isinstance(value, bool) or not isinstance(value, int):
                raise InvalidInputError(f"survey key {key!r} must be a whole number")
            numbers[key] = value
        return cls(
            title=doc["title"],
            questions=tuple(Question(q["text"], tuple(q["answers"])) for q in questions),
            recipient=doc["recipient"],
            dataset=doc["dataset"],
            servers=tuple(servers),
            **numbers,
        )


def one_hot(spec: SurveySpec, choices: Sequence[int]) -> list[int]:
    """The encoded answer vector (fixed-point 1 or 0 per column) of one respondent."""
    from collabzone.techniques.mpc._shares import frac_length

    if len(choices) != len(spec.questions):
        raise InvalidInputError("answer every question once")
    one = 1 << frac_length()
    vector = []
    for question, choice in zip(spec.questions, choices, strict=True):
        if not 0 <= choice < len(question.answers):
            raise InvalidInputError(f"{choice} is not an allowed answer")
        vector += [one if j == choice else 0 for j in range(len(question.answers))]
    return vector


def split_answers(vector: Sequence[int], servers: int, threshold: int) -> list[list[int]]:
    """The browser's split in Python: each server's Shamir shares of ``vector``."""
    from collabzone.techniques.mpc._shares import field

    modulus = int(field().modulus)
    columns = []
    for value in vector:
        coefficients = [value] + [secrets.randbelow(modulus) for _ in range(threshold)]
        columns.append(
            [
                sum(c * pow(x, k, modulus) for k, c in enumerate(coefficients)) % modulus
                for x in range(1, servers + 1)
            ]
        )
    return [[column[i] for column in columns] for i in range(servers)]


def context(survey: str, index: int) -> bytes:
    """What a sealed share is bound to: the survey and the addressed server."""
    return f"collabzone survey v1|{survey}|{index}".encode()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _key(shared: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=SALT, info=info).derive(shared)


def public_raw(key: ec.EllipticCurvePrivateKey) -> str:
    """A server's public key as the browser imports it (uncompressed P-256 point, base64)."""
    return _b64(
        key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
    )


def seal(public: str, shares: Sequence[int], survey: str, index: int) -> dict[str, str]:
    """Seal one server's shares to its public key (what the browser's script does)."""
    peer = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), base64.b64decode(public))
    ephemeral = ec.generate_private_key(ec.SECP256R1())
    info = context(survey, index)
    key = _key(ephemeral.exchange(ec.ECDH(), peer), info)
    iv = secrets.token_bytes(12)
    body = json.dumps([str(s) for s in shares]).encode()
    return {
        "epk": public_raw(ephemeral),
        "iv": _b64(iv),
        "ct": _b64(AESGCM(key).encrypt(iv, body, info)),
    }


def unseal(
    key: ec.EllipticCurvePrivateKey, sealed: Mapping[str, str], survey: str, index: int
) -> list[int]:
    """A server opens shares sealed to it; anything malformed raises InvalidInputError."""
    from cryptography.exceptions import InvalidTag

    from collabzone.techniques.mpc._shares import field

    info = context(survey, index)
    try:
        peer = ec.EllipticCurvePublicKey.from_encoded_point(
            ec.SECP256R1(), base64.b64decode(sealed["epk"])
        )
        secret = _key(key.exchange(ec.ECDH(), peer), info)
        body = AESGCM(secret).decrypt(
            base64.b64decode(sealed["iv"]), base64.b64decode(sealed["ct"]), info
        )
        values = [int(v) for v in json.loads(body)]
    except (KeyError, ValueError, TypeError, InvalidTag) as error:
        raise InvalidInputError(f"a sealed share does not open: {type(error).__name__}") from None
    if not all(0 <= v < int(field().modulus) for v in values):
        raise InvalidInputError("a sealed share is not a field element")
    return values


def read_counts(spec: SurveySpec, sums: Mapping[str, float], respondents: int) -> dict[str, Any]:
    """The recipient's reading of the opened sums: counts per answer, and a mean per numeric
    question (the answers' values weighted by their counts)."""
    questions = []
    for i, question in enumerate(spec.questions):
        counts: list[int] = [round(sums[f"q{i}.a{j}"]) for j in range(len(question.answers))]
        total = int(np.sum(counts))
        entry: dict[str, Any] = {
            "text": question.text,
            "counts": dict(zip(question.answers, counts, strict=True)),
        }
        values = question.numeric()
        if values is not None and total:
            entry["mean"] = float(np.dot(values, counts)) / total
        questions.append(entry)
    return {"respondents": respondents, "questions": questions}


async def valid_rows(
    mpc: Any, columns: Sequence[Sequence[int] | np.ndarray], groups: Sequence[int], one: int
) -> list[bool]:
    """Which answers are well formed (each entry 0 or ``one``, one choice per question),
    decided inside MPC: only the verdict per answer opens, never an entry.

    Each server passes its shares (``columns[c][r]``: column ``c``, answer ``r``) over the
    survey's field; ``groups`` are the questions' numbers of answers, in column order. The
    servers open fresh random public weights (after every answer is in, so no respondent
    could aim at them) and, per answer, a secret random multiple of
    ``sum_c a_c x_c (x_c - one) + sum_q b_q (sum_{c in q} x_c - one)``: zero for a
    well-formed answer, a uniform non-zero element (except with probability ~2/p) for any
    other, whatever its entries. Cost: local arithmetic on each server's shares, one batched
    resharing of every answer's sum of products, and one secure product per answer.
    """
    from collabzone.techniques.mpc._shares import field

    rows = len(columns[0]) if columns else 0
    if rows == 0:
        return []
    modulus = int(field().modulus)
    secfld = mpc.SecFld(order=modulus)
    width = len(columns)
    weights = await mpc.output([mpc._random(secfld) for _ in range(width + len(groups))])
    a, b = [int(w) for w in weights[:width]], [int(w) for w in weights[width:]]
    bounds = [sum(groups[:q]) for q in range(len(groups) + 1)]
    # Everything but the products is linear, so each server computes it on its own shares;
    # the local sum of products is a degree-2t share, which one batched resharing (as
    # MPyC's in_prod does per call) brings back to degree t.
    local = []
    for r in range(rows):
        x = [columns[c][r] for c in range(width)]
        squares = sum(a[c] * x[c] * (x[c] - one) for c in range(width))
        linear = sum(b[q] * (sum(x[bounds[q] : bounds[q + 1]]) - one) for q in range(len(groups)))
        local.append(secfld.field((squares + linear) % modulus))
    defects = [secfld(v) for v in await mpc._reshare(local)]
    masks = [mpc._random(secfld) for _ in range(rows)]
    opened = await mpc.output(mpc.schur_prod(defects, masks))
    return [int(v) == 0 for v in opened]
