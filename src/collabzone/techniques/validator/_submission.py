"""Submissions: the ML party's predictions, checked and (optionally) sealed for the node.

A submission is one prediction per record, keyed by a token (an HMAC of the record ID
under a key the ML party and the owner share), with an optional declared group::

    token,score,group          (binary task: score = P(positive) in [0, 1], or label 0/1)
    token,value,group          (regression task: a finite number)

Checks happen before anything is recorded (empty file, duplicated tokens, scores outside
[0, 1], NaN): error messages count the offending records and never echo a token or value.
When the owner's agreement names a node public key, the predictions are sealed to it with
libsodium's sealed box (PyNaCl), so neither the zone nor the data owner (in the mediator
deployment) can read them; only the node that runs the validation opens them.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from collabzone.errors import InvalidInputError

Task = Literal["binary", "regression"]
TASKS: tuple[Task, ...] = ("binary", "regression")
PREDICTION_COLUMNS = ("score", "label", "value")


@dataclass(frozen=True)
class Submission:
    """Checked predictions: parallel tuples of tokens, predictions and (optional) groups."""

    tokens: tuple[str, ...]
    predictions: tuple[float, ...]
    groups: tuple[str, ...] | None = None

    def __len__(self) -> int:
        return len(self.tokens)

    def as_json(self) -> dict[str, Any]:
        """The JSON form carried in a request spec (or sealed inside it)."""
        doc: dict[str, Any] = {"tokens": list(self.tokens), "predictions": list(self.predictions)}
        if self.groups is not None:
            doc["groups"] = list(self.groups)
        return doc


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def check_submission(doc: Mapping[str, Any], task: Task) -> Submission:
    """Validate a submission document (``tokens``, ``predictions``, optional ``groups``).

    Raises InvalidInputError naming the problem and how many records have it; nothing is
    recorded. Binary predictions must lie in [0, 1] (a hard label is 0 or 1).
    """
    if task not in TASKS:
        raise InvalidInputError(f"task must be one of {', '.join(TASKS)}")
    tokens = doc.get("tokens")
    predictions = doc.get("predictions")
    groups = doc.get("groups")
    if not isinstance(tokens, list) or not isinstance(predictions, list):
        raise InvalidInputError("a submission needs `tokens` and `predictions` lists")
    if not tokens:
        raise InvalidInputError("the submission is empty: send at least one prediction")
    if len(tokens) != len(predictions) or (
        groups is not None and (not isinstance(groups, list) or len(groups) != len(tokens))
    ):
        raise InvalidInputError("tokens, predictions and groups must have the same length")
    bad_tokens = sum(1 for t in tokens if not isinstance(t, str) or not t.strip())
    if bad_tokens:
        raise InvalidInputError(f"{bad_tokens} record(s) have an empty or non-text token")
    duplicated = len(tokens) - len(set(tokens))
    if duplicated:
        raise InvalidInputError(
            f"{duplicated} token(s) appear more than once: send one prediction per record"
        )
    values = [_number(p) for p in predictions]
    not_finite = sum(1 for v in values if v is None or not math.isfinite(v))
    if not_finite:
        raise InvalidInputError(f"{not_finite} prediction(s) are missing, not numbers, or NaN/inf")
    clean = tuple(float(v) for v in values if v is not None)
    if task == "binary":
        outside = sum(1 for v in clean if not 0.0 <= v <= 1.0)
        if outside:
            raise InvalidInputError(
                f"{outside} score(s) lie outside [0, 1]: send probabilities of the positive class"
            )
    group_tuple: tuple[str, ...] | None = None
    if groups is not None:
        if any(g is None or not str(g).strip() for g in groups):
            raise InvalidInputError("every record needs a group when a group column is sent")
        group_tuple = tuple(str(g) for g in groups)
    return Submission(tuple(str(t) for t in tokens), clean, group_tuple)


def read_submission(path: str | Path, task: Task) -> Submission:
    """Read a predictions CSV (``token`` + ``score``/``label``/``value`` [+ ``group``])."""
    import pandas as pd

    source = Path(path)
    try:
        frame = pd.read_csv(source, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise InvalidInputError(f"no predictions file at {source}") from None
    except pd.errors.EmptyDataError:
        raise InvalidInputError(
            f"{source.name} is empty: send a header and one row per record"
        ) from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InvalidInputError(
            f"{source.name} is not a readable CSV ({type(exc).__name__})"
        ) from None
    if "token" not in frame.columns:
        raise InvalidInputError(f"{source.name} needs a `token` column")
    column = next((c for c in PREDICTION_COLUMNS if c in frame.columns), None)
    if column is None:
        raise InvalidInputError(f"{source.name} needs a prediction column: score, label or value")
    doc: dict[str, Any] = {
        "tokens": frame["token"].tolist(),
        "predictions": [v if v != "" else None for v in frame[column].tolist()],
    }
    if "group" in frame.columns:
        doc["groups"] = frame["group"].tolist()
    return check_submission(doc, task)


def seal(submission: Submission, public_key: str) -> str:
    """Encrypt the submission to the node's X25519 public key (base64): a sealed box."""
    from nacl.exceptions import CryptoError
    from nacl.public import PublicKey, SealedBox

    try:
        box = SealedBox(PublicKey(base64.b64decode(public_key, validate=True)))
    except (ValueError, CryptoError, TypeError):
        raise InvalidInputError("the node public key is not a base64 X25519 key") from None
    plain = json.dumps(submission.as_json(), separators=(",", ":")).encode("utf-8")
    return base64.b64encode(box.encrypt(plain)).decode("ascii")


def unseal(sealed: str, private_seed: bytes) -> dict[str, Any]:
    """Open a sealed submission with the node's private key (derived from ``private_seed``)."""
    from nacl.exceptions import CryptoError
    from nacl.public import PrivateKey, SealedBox

    try:
        plain = SealedBox(PrivateKey(private_seed)).decrypt(base64.b64decode(sealed))
        doc = json.loads(plain)
    except (CryptoError, ValueError, TypeError):
        raise InvalidInputError(
            "the sealed predictions cannot be opened by this node: seal them to its public key"
        ) from None
    if not isinstance(doc, dict):
        raise InvalidInputError("the sealed predictions are not a submission document")
    return doc


def public_key_of(private_seed: bytes) -> str:
    """The base64 public key matching a node's sealing seed (publish it in the agreement)."""
    from nacl.public import PrivateKey

    return base64.b64encode(bytes(PrivateKey(private_seed).public_key)).decode("ascii")


def submission_spec(
    dataset: str,
    submission: Submission,
    *,
    task: Task = "binary",
    public_key: str | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Build the request spec for ``zone.submit("validator", spec, purpose)``.

    With ``public_key`` (the node's, from the agreement) the predictions are sealed and the
    spec carries only their count.
    """
    spec: dict[str, Any] = {"dataset": dataset, "task": task, "records": len(submission)}
    spec.update(options)
    if public_key is not None:
        spec["sealed"] = seal(submission, public_key)
    else:
        spec["predictions"] = submission.as_json()
    return spec


def group_names(groups: Sequence[str] | None) -> list[str]:
    """Declared groups in a stable order."""
    return sorted(set(groups)) if groups is not None else []
