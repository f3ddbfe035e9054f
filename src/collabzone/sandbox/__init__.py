"""Sealed code: one party's Python module, stored encrypted like a dataset of its owner and
run in an isolated process (network namespace, chroot, dropped privileges, rlimits, audit
hook) on another party's data. Shared by the techniques that run uploaded code (``sealed``
jobs and ``lookalike`` sealed models), which never import each other. See docs/sealed.md.
"""

from __future__ import annotations

from collabzone.sandbox._module import (
    MANIFEST_KIND,
    Manifest,
    code_sha256,
    declaration,
    make_manifest,
    parse_manifest,
    read_code,
    upload,
)
from collabzone.sandbox._run import (
    ALLOWED_IMPORTS,
    OUTPUT_TYPES,
    Limits,
    SandboxUnavailable,
    SealedCodeStopped,
    check_output,
    isolation_mode,
    run_sealed,
)

__all__ = [
    "ALLOWED_IMPORTS",
    "MANIFEST_KIND",
    "OUTPUT_TYPES",
    "Limits",
    "Manifest",
    "SandboxUnavailable",
    "SealedCodeStopped",
    "check_output",
    "code_sha256",
    "declaration",
    "isolation_mode",
    "make_manifest",
    "parse_manifest",
    "read_code",
    "run_sealed",
    "upload",
]
