"""The zone's HE inbox, reached as a party: the recipient publishes its public context,
providers fetch it and deposit their ciphertexts, each checked against who is acting.

The Python API (:func:`publish_as`, :func:`public_context_of`, :func:`deposit_as`) is what
the HTTP routes (:mod:`.he_api`) and ``collabzone mpc he-*`` on an embedded zone call. The
inbox is the ``he_sum`` technique's configured one, else ``<zone>/techniques/he_sum``
(the directory its ``run`` reads when none is configured), so deposits made here are the
ones a request adds. Nothing here ever sees a secret key: a context that carries one is
refused (publishing it would hand the zone the power to decrypt).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from collabzone.errors import ConflictError, InvalidInputError, NotAuthorisedError
from collabzone.runtime import technique_dir
from collabzone.techniques.mpc._he import _load_context
from collabzone.techniques.mpc._he_technique import (
    CONTEXT_FILE,
    deposit,
    publish_context,
    recipient_folder,
)

if TYPE_CHECKING:
    from collabzone.zone import Zone

TECHNIQUE = "he_sum"
MAX_BYTES = 512 * 1024 * 1024
"""Largest context or deposit accepted (a packed CKKS vector of 1M values is ~81 MB)."""


def zone_inbox(zone_root: Path) -> Path:
    """The inbox ``he_sum`` requests of the zone at ``zone_root`` read."""
    from collabzone.techniques import registry

    configured = getattr(registry.get(TECHNIQUE), "inbox", None)
    return Path(configured) if configured is not None else technique_dir(zone_root, TECHNIQUE)


def _checked(blob: bytes, what: str) -> bytes:
    if not blob:
        raise InvalidInputError(f"the {what} is empty")
    if len(blob) > MAX_BYTES:
        raise InvalidInputError(f"the {what} is larger than {MAX_BYTES // 2**20} MiB")
    return blob


def publish_as(zone: Zone, public_context: bytes) -> Path:
    """The acting party publishes its own public CKKS context (it will be the recipient)."""
    context = _load_context(_checked(public_context, "context"))
    if context.is_private():
        raise InvalidInputError(
            "this context holds your secret key: publish the public context only "
            "(`collabzone mpc he-keys` writes it as he-public.ctx)"
        )
    return publish_context(zone_inbox(zone.root), zone.me.name, public_context)


def public_context_of(zone: Zone, recipient: str) -> bytes:
    """A recipient's public context, for a provider to encrypt under."""
    path = recipient_folder(zone_inbox(zone.root), recipient) / CONTEXT_FILE
    if not path.is_file():
        raise ConflictError(f"{recipient!r} has not published a public context yet")
    return path.read_bytes()


def deposit_as(zone: Zone, recipient: str, dataset: str, ciphertext: bytes) -> Path:
    """The acting party deposits the ciphertext of its own ``dataset`` for ``recipient``."""
    me = zone.me.name
    owners = {d.name: d.owner for d in zone.datasets()}
    if owners.get(dataset) != me:
        raise NotAuthorisedError(
            f"{me!r} does not own a dataset {dataset!r}: deposit only your own datasets' vectors"
        )
    public_context_of(zone, recipient)  # the recipient must have published first
    return deposit(zone_inbox(zone.root), recipient, dataset, _checked(ciphertext, "ciphertext"))
