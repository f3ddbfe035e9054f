"""A look-alike model the seed owner uploaded as sealed code instead of an allowlisted one.

Spec: ``"model": {"sealed": "<code sha256>"}`` names a sealed module of the requester
(``collabzone sealed upload``) whose manifest declares

* one input, on the partner's features dataset, of measure / dimension columns only (the
  code never sees a token: it cannot tie a score to a customer outside the zone);
* exactly one output, ``score: float``;
* an entry point called once with ``{"train": [row + {"label": bool}], "score": [row]}``
  that returns one ``{"score": float}`` per ``score`` row, in order (train + score).

The ``score`` rows are the held-out overlap and every non-overlap candidate, shuffled
together with the zone's generator, so the code cannot tell which scores set the quality
figures the seed owner will read. The run goes through the same sandbox as ``sealed`` jobs
(no network, chroot, rlimits, audit hook); the audience is drawn by the zone, under the
same delivery rules as for an allowlisted model.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from collabzone.errors import InvalidInputError, Reason
from collabzone.model import ColumnClass, Dataset
from collabzone.sandbox import (
    MANIFEST_KIND,
    Limits,
    Manifest,
    SealedCodeStopped,
    parse_manifest,
    run_sealed,
)
from collabzone.techniques.base import PlanContext, Rules

OUTPUTS: Mapping[str, str] = {"score": "float"}
"""The one output a sealed look-alike model declares."""


LIMIT_RULES = (("max_cpu_seconds", "cpu_seconds"), ("max_memory_mb", "memory_mb"),
               ("max_wall_seconds", "wall_seconds"))  # fmt: skip
"""Agreement caps on a sealed model's declared limits (rule, limit)."""


def declaration(sealed: Mapping[str, Any], columns: Sequence[str]) -> str:
    """The sealed model in words for the approving partner (never the code)."""
    limits = sealed["limits"]
    return (
        f"model: sealed code sha256 {sealed['code_sha256']} (entry point {sealed['entry']}, "
        f"reading {', '.join(columns)} and the seed labels, returning one score per row; "
        f"limits {limits['cpu_seconds']} CPU s, {limits['memory_mb']} MB memory, "
        f"{limits['wall_seconds']:g} s wall, no network)"
    )


def reasons(sealed: Mapping[str, Any], rules: Rules, quality_epsilon: float | None) -> list[Reason]:
    """What the partner's agreement must say for a sealed model to run: its hash approved,
    its limits within the caps, and DP on the quality figures (the scores that set them
    are chosen by code the partner cannot read, so rounding alone is no bound)."""
    found = []
    if sealed["code_sha256"] not in (rules.get("allowed_code_sha256") or []):
        found.append(Reason("CODE_NOT_APPROVED", "allowed_code_sha256",
                            f"sealed model {sealed['code_sha256'][:12]}... is not approved"))  # fmt: skip
    for rule, limit in LIMIT_RULES:
        cap = rules.get(rule)
        if cap is not None and sealed["limits"][limit] > cap:
            found.append(Reason("LIMIT_TOO_HIGH", rule, f"{limit} must be <= {cap}"))
    if not quality_epsilon:
        found.append(Reason("QUALITY_DP_REQUIRED", "quality_epsilon",
                            "a sealed model's quality is told only with DP noise: set "
                            "quality_epsilon"))  # fmt: skip
    return found


def find_sealed_model(
    code_hash: Any, features: Dataset, ctx: PlanContext
) -> tuple[Dataset, Manifest]:
    """The requester's sealed module with this code hash, checked as a look-alike model."""
    if not isinstance(code_hash, str) or len(code_hash) != 64:
        raise InvalidInputError("'model' {'sealed': ...} must give the 64-hex code_sha256")
    found = []
    for candidate in ctx.visible_datasets():
        text = candidate.description or ""
        if candidate.owner != ctx.requester.name or MANIFEST_KIND not in text:
            continue
        manifest = parse_manifest(text)
        if manifest.code_sha256 == code_hash:
            found.append((candidate, manifest))
    if not found:
        raise InvalidInputError(
            f"no sealed module of yours has code_sha256 {code_hash[:12]}...: upload it with "
            "`collabzone sealed upload` first"
        )
    module, manifest = found[0]
    if dict(manifest.outputs) != dict(OUTPUTS):
        raise InvalidInputError(
            f"sealed model {module.name!r} must declare exactly one output score=float"
        )
    if len(manifest.inputs) != 1:
        raise InvalidInputError(f"sealed model {module.name!r} must declare exactly one input")
    ((dataset, columns),) = manifest.inputs.values()
    if dataset != features.name:
        raise InvalidInputError(
            f"sealed model {module.name!r} must read the features dataset {features.name!r}"
        )
    usable = {
        c.name for c in features.columns
        if c.column_class in (ColumnClass.MEASURE, ColumnClass.DIMENSION)
    }  # fmt: skip
    bad = [c for c in columns if c not in usable]
    if bad or not columns:
        raise InvalidInputError(
            f"sealed model {module.name!r} may read only measure or dimension columns of "
            f"{features.name!r} (never a token): {bad or 'none declared'}"
        )
    return module, manifest


def sealed_scores(
    code: str,
    entry: str,
    limits: Mapping[str, Any],
    train: Sequence[Mapping[str, Any]],
    labels: np.ndarray,
    score: Sequence[Mapping[str, Any]],
    rng: np.random.Generator,
) -> np.ndarray:
    """The sealed code's score of each ``score`` row (shuffled in, put back in order)."""
    order = rng.permutation(len(score))
    inputs = {
        "train": [{**row, "label": bool(label)} for row, label in zip(train, labels, strict=True)],
        "score": [dict(score[i]) for i in order],
    }
    try:
        rows = run_sealed(code, entry, inputs, OUTPUTS, Limits(**limits))
    except SealedCodeStopped as exc:
        raise InvalidInputError(f"sealed model stopped: {exc.kind} ({exc.detail})") from None
    if len(rows) != len(order):
        raise InvalidInputError(
            f"sealed model stopped: output ({len(rows)} scores for {len(order)} rows: return "
            "one score per 'score' row, in order)"
        )
    values = [float(r["score"]) for r in rows]
    if not all(math.isfinite(v) for v in values):
        raise InvalidInputError("sealed model stopped: output (a score is not finite)")
    scores = np.empty(len(order), dtype=float)
    scores[order] = values
    return scores
