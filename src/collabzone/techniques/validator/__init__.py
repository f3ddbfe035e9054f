"""Prediction validator (Architecture 2): aggregate feedback on predictions, labels stay put.

An ML party submits predictions keyed by tokens; the data owner's node (or a mediator
entrusted with the tokenised labels) scores them and only aggregate, size-thresholded,
rounded and optionally DP-noised metrics are released. See docs/validator.md.
"""

from collections.abc import Callable

from collabzone.techniques.validator._demo import demo_round
from collabzone.techniques.validator._node_run import MONITOR_PURPOSE, SEALING_PURPOSE
from collabzone.techniques.validator._submission import (
    Submission,
    check_submission,
    public_key_of,
    read_submission,
    seal,
    submission_spec,
)
from collabzone.techniques.validator._technique import Validator


def node_public_key(derive_key: Callable[[str], bytes]) -> str:
    """The base64 sealing public key of a node (give it ``NodeAgent(...).derive_key``).

    The owner publishes it in the agreement (``node_public_key``) so the ML party can seal
    its predictions to that node.
    """
    return public_key_of(derive_key(SEALING_PURPOSE))


__all__ = [
    "MONITOR_PURPOSE",
    "SEALING_PURPOSE",
    "Submission",
    "Validator",
    "check_submission",
    "demo_round",
    "node_public_key",
    "public_key_of",
    "read_submission",
    "seal",
    "submission_spec",
]
