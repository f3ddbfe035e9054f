"""Rotating the join key: stored pseudonyms moved to a new key, without PII and without
any server ever holding the old key, the new key or the ratio alone before it is opened.

The servers hold Shamir shares ``k_i`` of the join key ``k`` (see :mod:`._join`). To move
to a fresh key ``k'`` they deal, without a dealer, shares ``k'_i`` of ``k'`` and ``rho_i``
of a random mask ``rho``. Each server sends the two local products ``k_i * rho_i`` and
``k'_i * rho_i``: shares of degree ``2t`` of ``k * rho`` and ``k' * rho``, so ``2t + 1``
servers (an honest majority) open ``u = k * rho`` and ``v = k' * rho``. The ratio
``r = v / u = k' / k`` is all that is revealed (``rho`` is uniform and never opened), and
every server multiplies its stored pseudonyms ``k * H(id)`` by ``r`` to get ``k' * H(id)``:
the same pseudonyms a provider would now get from the new key shares, so uploads before
and after the rotation still join. The servers then forget ``r`` and the old shares (the
store deletes the old files), so a leaked old share no longer helps anyone.

This is the "update token" of updatable OPRFs (Pythia, Everspaugh et al. 2015), computed
here under secret sharing instead of by one key holder.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from collabzone.crypto.group import L, mul
from collabzone.crypto.oprf import decode_token, encode_token, lagrange_at_zero
from collabzone.errors import InvalidInputError
from collabzone.techniques.mpc._join import deal_key


@dataclass(frozen=True)
class RekeyMessage:
    """What one server sends the others in a rotation: two masked local products."""

    index: int  # the server's share index (from 1)
    masked_old: int  # k_i * rho_i mod L
    masked_new: int  # k'_i * rho_i mod L


class JoinKeyHolder(Protocol):
    """A server's store as far as rotation needs it (:class:`._store.ShareStore`)."""

    def oprf_share(self) -> int: ...

    def rekey_join_keys(self, factor: int, new_share: int) -> int: ...


def rekey_message(index: int, old_share: int, new_share: int, mask_share: int) -> RekeyMessage:
    """Server ``index``'s message (indices from 0, as MPyC numbers parties)."""
    return RekeyMessage(index + 1, old_share * mask_share % L, new_share * mask_share % L)


def rekey_factor(messages: Sequence[RekeyMessage], threshold: int) -> int:
    """The ratio ``k' / k`` opened from ``2 * threshold + 1`` servers' messages.

    Products of two degree-``t`` sharings have degree ``2t``: fewer messages cannot open
    them (a clear error, not a wrong factor).
    """
    needed = 2 * threshold + 1
    chosen = list(messages)[:needed]
    indices = [m.index for m in chosen]
    if len(chosen) < needed or len(set(indices)) != len(indices):
        raise InvalidInputError(
            f"a join-key rotation needs messages from {needed} distinct servers "
            f"(2 * threshold + 1), got {len(set(indices))}"
        )
    lambdas = [lagrange_at_zero(indices, j) for j in range(needed)]
    u = sum(lam * m.masked_old for lam, m in zip(lambdas, chosen, strict=True)) % L
    v = sum(lam * m.masked_new for lam, m in zip(lambdas, chosen, strict=True)) % L
    if u == 0:
        raise InvalidInputError("the mask opened to zero: run the rotation again")
    return v * pow(u, -1, L) % L


def rekey_tokens(tokens: Sequence[str], factor: int, version: int) -> list[str]:
    """Pseudonyms ``k * H(id)`` moved to ``k' * H(id)`` (tagged with the new key version)."""
    out = []
    for token in tokens:
        _, point = decode_token(token)
        out.append(encode_token(mul(point, factor), version))
    return out


def rotate_join_key(stores: Sequence[JoinKeyHolder], threshold: int) -> int:
    """Rotate the join key of ``stores`` (all servers, in index order); the new version.

    Here the dealings and messages travel in one process; in a deployment each server
    deals and sends over the servers' TLS channels, exactly these values.
    """
    servers = len(stores)
    if 2 * threshold >= servers:
        raise InvalidInputError("need 2 * threshold < servers to rotate the join key")
    new_shares = deal_key(servers, threshold)
    mask_shares = deal_key(servers, threshold)
    messages = [
        rekey_message(i, store.oprf_share(), new_shares[i], mask_shares[i])
        for i, store in enumerate(stores)
    ]
    factor = rekey_factor(messages, threshold)
    versions = {store.rekey_join_keys(factor, new_shares[i]) for i, store in enumerate(stores)}
    if len(versions) != 1:
        raise InvalidInputError(f"the servers' join keys were at different versions {versions}")
    return versions.pop()
