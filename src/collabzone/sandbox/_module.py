"""A sealed module: uploaded Python code plus the manifest another party approves.

The code is stored *as a dataset of its uploader*, so it is sealed exactly as data is:
AES-GCM encrypted at rest under the zone's data key, readable by no other party (no
agreement shares it), decrypted only inside a run. Its columns are ``part`` (integer) and
``chunk`` (base64 text, under the ingest's string limit). The **manifest** (entry point,
SHA-256 of the code, declared inputs and outputs, resource limits) is the dataset's
description: it is what the other party reads and approves, never the code.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from collabzone.errors import InvalidInputError
from collabzone.sandbox._run import OUTPUT_TYPES, Limits

MANIFEST_KIND = "collabzone.sealed/1"
CHUNK = 3000
COLUMNS: list[dict[str, str]] = [
    {"name": "part", "type": "integer", "class": "other"},
    {"name": "chunk", "type": "string", "class": "other"},
]


@dataclass(frozen=True)
class Manifest:
    """What a sealed job declares: the approving party sees exactly this."""

    entry: str
    code_sha256: str
    inputs: Mapping[str, tuple[str, tuple[str, ...]]]
    """alias -> (dataset, columns) the entry point receives as ``inputs[alias]``."""
    outputs: Mapping[str, str]
    """column -> type (string, integer, float, boolean) of each returned row."""
    limits: Limits = field(default_factory=Limits)

    def to_json(self) -> str:
        return json.dumps(
            {
                "kind": MANIFEST_KIND,
                "entry": self.entry,
                "code_sha256": self.code_sha256,
                "inputs": {
                    k: {"dataset": d, "columns": list(c)} for k, (d, c) in self.inputs.items()
                },
                "outputs": dict(self.outputs),
                "limits": self.limits.as_dict(),
            },
            sort_keys=True,
        )


def declaration(manifest: Manifest, recipient: str, requester: str) -> str:
    """The manifest in one sentence, what the approving party reads before deciding (the
    request page's sentence and the plan's ``outputs``): outputs and who gets them, entry
    point, code hash, inputs and limits. Never the code."""
    outputs = ", ".join(f"{c}: {t}" for c, t in manifest.outputs.items())
    inputs = "; ".join(
        f"{alias} = {dataset} ({', '.join(columns)})"
        for alias, (dataset, columns) in manifest.inputs.items()
    )
    limits = manifest.limits
    return (
        f"rows of ({outputs}) for {recipient} and a count for {requester}; sealed code "
        f"sha256 {manifest.code_sha256}, entry point {manifest.entry}, reading {inputs}; "
        f"limits {limits.cpu_seconds} CPU s, {limits.memory_mb} MB memory, "
        f"{limits.wall_seconds:g} s wall, {limits.max_output_bytes} output bytes, no network"
    )


def parse_manifest(text: str) -> Manifest:
    """The manifest in a sealed dataset's description (clear errors if it is not one)."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError:
        doc = None
    if not isinstance(doc, dict) or doc.get("kind") != MANIFEST_KIND:
        raise InvalidInputError("this dataset is not a sealed module (upload one with "
                                "`collabzone sealed upload`)")  # fmt: skip
    return Manifest(
        entry=str(doc["entry"]),
        code_sha256=str(doc["code_sha256"]),
        inputs={k: (str(v["dataset"]), tuple(v["columns"])) for k, v in doc["inputs"].items()},
        outputs={str(k): str(v) for k, v in doc["outputs"].items()},
        limits=Limits(**doc["limits"]),
    )


def code_sha256(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def make_manifest(
    code: str,
    entry: str,
    inputs: Mapping[str, tuple[str, tuple[str, ...]]],
    outputs: Mapping[str, str],
    limits: Limits,
) -> Manifest:
    """Validate the declaration (the code is compiled to catch syntax errors, not run)."""
    if not entry.isidentifier():
        raise InvalidInputError(f"entry point {entry!r} must be a Python function name")
    try:
        compile(code, "<sealed>", "exec")
    except SyntaxError as exc:
        raise InvalidInputError(
            f"the module does not compile: line {exc.lineno}: {exc.msg}"
        ) from None
    if not inputs:
        raise InvalidInputError("declare at least one input (alias=dataset:col1,col2)")
    bad = {k: v for k, v in outputs.items() if v not in OUTPUT_TYPES}
    if not outputs or bad:
        raise InvalidInputError(
            f"declare outputs as column=type with types {sorted(OUTPUT_TYPES)} (bad: {bad})"
        )
    return Manifest(entry, code_sha256(code), dict(inputs), dict(outputs), limits)


def write_upload(code: str, path: Path) -> Path:
    """The Parquet file holding ``code`` in base64 chunks (what ``add_dataset`` ingests)."""
    text = base64.b64encode(code.encode()).decode()
    chunks = [text[i : i + CHUNK] for i in range(0, len(text), CHUNK)] or [""]
    pq.write_table(pa.table({"part": list(range(len(chunks))), "chunk": chunks}), path)
    return path


def read_code(table: pa.Table) -> str:
    """The code back from its sealed dataset's table."""
    parts = sorted(zip(table.column("part").to_pylist(), table.column("chunk").to_pylist(),
                       strict=True))  # fmt: skip
    return base64.b64decode("".join(c or "" for _, c in parts)).decode()


def upload(
    handle: Any,
    name: str,
    code: str,
    manifest: Manifest,
    workdir: Path,
) -> Any:
    """Store ``code`` sealed as the dataset ``name`` of the caller (a zone handle)."""
    if manifest.code_sha256 != code_sha256(code):
        raise InvalidInputError("the manifest's code_sha256 is not the hash of this code")
    file = write_upload(code, workdir / f"{name}.sealed.parquet")
    try:
        return handle.add_dataset(
            name, file, {"columns": COLUMNS, "description": manifest.to_json()}
        )
    finally:
        file.unlink(missing_ok=True)
