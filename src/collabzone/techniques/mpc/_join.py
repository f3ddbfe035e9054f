"""Joining on a secret key: pseudonyms from a threshold OPRF whose key no server holds.

The compute servers share an OPRF key ``k`` (2HashDH over edwards25519, the linking
package's protocol): each server deals a random polynomial of degree t and each keeps the
sum of the shares it received (:func:`deal_key`), so ``k`` is the sum of the servers'
random secrets and no one ever holds it. A provider blinds each personal id on its own
machine, ``t + 1`` servers raise the blinded point to their key share, and the provider
combines the answers (Lagrange in the exponent) into the pseudonym ``k * H(id)``
(:func:`pseudonymise`). It uploads the pseudonyms with its shares; the servers join
datasets on equal pseudonyms and run the report over the matched rows.

What this reveals: the servers see pseudonyms, so they learn which records of two
providers match (and how many); ids never leave the providers; no server can compute or
reverse a pseudonym alone. A server colluding with a provider can test that provider's
ids against the others' pseudonyms. Key rotation re-keys stored pseudonyms without PII
(:mod:`._rekey`).

Uses :mod:`collabzone.crypto.oprf`, the OPRF the linking technique uses too (a shared
module, so techniques stay leaves).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping, Sequence

from collabzone.crypto.group import random_scalar
from collabzone.crypto.oprf import (
    BlindRequest,
    EvaluateResponse,
    OprfClient,
    OprfShareServer,
    split_key,
)
from collabzone.errors import InvalidInputError

MATCH_KEY = "mpc-join"
JOIN_COLUMN = "__join__"

Evaluate = Callable[[BlindRequest], EvaluateResponse]


def deal_key(servers: int, threshold: int) -> list[int]:
    """Each server's OPRF key share, dealt without a dealer.

    Server ``i`` draws a random secret and Shamir-shares it (degree ``threshold``); each
    server keeps the sum of what it received. Here the n dealings run in one process (the
    messages would travel between the servers over their TLS channel).
    """
    if 2 * threshold >= servers:
        raise InvalidInputError("need 2 * threshold < servers for the OPRF key too")
    from collabzone.crypto.group import L

    dealt = [
        split_key(random_scalar(secrets.token_bytes), threshold + 1, servers)
        for _ in range(servers)
    ]
    return [sum(d[j][1] for d in dealt) % L for j in range(servers)]


def share_server(index: int, share: int, version: int = 1) -> OprfShareServer:
    """Server ``index``'s OPRF evaluator (indices from 0, as MPyC numbers parties) under
    join key ``version`` (see :mod:`._rekey`)."""
    return OprfShareServer(index + 1, share, version)


def pseudonymise(ids: Sequence[str], servers: Sequence[Evaluate], threshold: int) -> list[str]:
    """Pseudonyms of ``ids`` (on the provider's machine), from ``threshold + 1`` servers."""
    if len(servers) < threshold + 1:
        raise InvalidInputError(f"need {threshold + 1} key servers, got {len(servers)}")
    client = OprfClient()
    request = client.blind(MATCH_KEY, [i.strip().encode() for i in ids])
    answers = [evaluate(request) for evaluate in servers[: threshold + 1]]
    return client.finalize_threshold(answers, threshold + 1)


def match(tokens: Mapping[str, Sequence[str]]) -> dict[str, list[int]]:
    """Row indices of each dataset on the pseudonyms all datasets share, aligned.

    Pseudonyms repeated within one dataset are refused: a join must be one-to-one, or
    one person would weigh several times in the report.
    """
    for name, values in tokens.items():
        if len(set(values)) != len(values):
            raise InvalidInputError(
                f"dataset {name!r} has repeated join keys: deduplicate before upload"
            )
    names = list(tokens)
    common = set(tokens[names[0]]).intersection(*(set(tokens[n]) for n in names[1:]))
    order = [t for t in tokens[names[0]] if t in common]
    out = {}
    for name in names:
        position = {t: i for i, t in enumerate(tokens[name])}
        out[name] = [position[t] for t in order]
    return out
