"""Sealed code: a party's Python module, stored encrypted like a dataset, runs isolated on
another party's data after that party approves its hash and declaration (never its code).
See docs/sealed.md.
"""

from __future__ import annotations

from collabzone.sandbox import (
    Limits,
    Manifest,
    SandboxUnavailable,
    SealedCodeStopped,
    check_output,
    code_sha256,
    isolation_mode,
    make_manifest,
    parse_manifest,
    read_code,
    run_sealed,
    upload,
)
from collabzone.techniques.sealed._technique import Sealed

__all__ = [
    "Limits",
    "Manifest",
    "SandboxUnavailable",
    "Sealed",
    "SealedCodeStopped",
    "check_output",
    "code_sha256",
    "isolation_mode",
    "make_manifest",
    "parse_manifest",
    "read_code",
    "run_sealed",
    "upload",
]
