"""The zone's share-package relay reached as a party, and the clients that use it.

Zone side (:func:`publish_key_as`, :func:`key_of`, :func:`post_as`, :func:`waiting_as`,
:func:`read_as`, :func:`remove_as`): what the HTTP routes (:mod:`.relay_api`) and the CLI
on an embedded zone call, each checking who is acting: only a party of role ``compute``
publishes its own relay key (a compute server, for packages; a recipient, for output
shares), only a dataset's owner posts packages for it, and only to a party of role
``compute``; only a server reads its own mailbox and answers its own jobs, and only a
recipient fetches its bundles (:mod:`._remote`).

Client side (:class:`Relay`): the same operations through whichever handle the caller
holds, an embedded :class:`~collabzone.zone.Zone` or a
:class:`~collabzone.client.RemoteZone` (raw-byte routes under ``/v1/mpc/relay/``), and
the two steps built on them: :func:`send_packages` (the provider seals package ``i`` to
server ``i``'s key and posts it) and :func:`fetch_packages` (a server opens its mailbox
into its store).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from collabzone.errors import InvalidInputError, NotAuthorisedError
from collabzone.model import Role
from collabzone.runtime import technique_dir
from collabzone.techniques.mpc._relay import Mailbox, fingerprint, seal, unseal

if TYPE_CHECKING:
    from collabzone.techniques.mpc._store import ShareStore
    from collabzone.zone import Zone

PREFIX = "/v1/mpc/relay"


def relay_root(zone_root: Path) -> Path:
    """Where the zone at ``zone_root`` keeps the compute servers' mailboxes."""
    return technique_dir(zone_root, "mpc") / "relay"


def _compute(zone: Zone, name: str) -> None:
    if not zone.party(name).has_role(Role.COMPUTE):
        raise InvalidInputError(f"{name!r} is not a compute server (role 'compute')")


def _own_mailbox(zone: Zone, server: str) -> Mailbox:
    if zone.me.name != server:
        raise NotAuthorisedError(f"only {server!r} reads its own mailbox")
    return Mailbox(relay_root(zone.root), server)


def publish_key_as(zone: Zone, public_key: bytes) -> None:
    """The acting party publishes its own relay public key (X25519)."""
    Mailbox(relay_root(zone.root), zone.me.name).publish_key(public_key)


def key_of(zone: Zone, server: str) -> bytes:
    """A compute server's relay public key, for a provider to seal to."""
    return Mailbox(relay_root(zone.root), server).key()


def post_as(zone: Zone, server: str, dataset: str, sealed: bytes) -> str:
    """The acting party posts a package of its own ``dataset``, sealed to ``server``."""
    me = zone.me.name
    owners = {d.name: d.owner for d in zone.datasets()}
    if owners.get(dataset) != me:
        raise NotAuthorisedError(
            f"{me!r} does not own a dataset {dataset!r}: register it first "
            "(`collabzone datasets register`), then post its shares"
        )
    _compute(zone, server)
    return Mailbox(relay_root(zone.root), server).post(me, dataset, sealed)


def waiting_as(zone: Zone, server: str) -> list[dict[str, Any]]:
    return _own_mailbox(zone, server).waiting()


def read_as(zone: Zone, server: str, package_id: str) -> bytes:
    return _own_mailbox(zone, server).read(package_id)


def remove_as(zone: Zone, server: str, package_id: str) -> None:
    _own_mailbox(zone, server).remove(package_id)


def jobs_as(zone: Zone, server: str) -> list[dict[str, Any]]:
    return _own_mailbox(zone, server).jobs()


def answer_as(
    zone: Zone, server: str, job_id: str, *, share: bytes | None = None, error: str = ""
) -> None:
    _own_mailbox(zone, server).answer(job_id, share=share, error=error)


def bundle_as(zone: Zone, recipient: str, sha256: str) -> bytes:
    """A relayed bundle, for its recipient only (its shares are sealed to it anyway)."""
    from collabzone.errors import NotFoundError
    from collabzone.techniques.mpc._remote import bundle_path

    if zone.me.name != recipient:
        raise NotAuthorisedError(f"only {recipient!r} fetches its bundles")
    path = bundle_path(technique_dir(zone.root, "mpc"), recipient, sha256)
    if not path.is_file():
        raise NotFoundError(f"no bundle {sha256[:12]}… for {recipient!r}")
    return path.read_bytes()


class Relay:
    """The relay's operations through an embedded zone or a server (injected handle)."""

    def __init__(self, zone: Any) -> None:
        from collabzone.client import RemoteZone

        self.zone = zone
        self.remote = isinstance(zone, RemoteZone)

    def publish_key(self, public_key: bytes) -> None:
        if self.remote:
            self.zone.octets("PUT", f"{PREFIX}/{self.zone.me.name}/key", public_key)
        else:
            publish_key_as(self.zone, public_key)

    def key(self, server: str) -> bytes:
        if self.remote:
            return bytes(self.zone.octets("GET", f"{PREFIX}/{server}/key"))
        return key_of(self.zone, server)

    def post(self, server: str, dataset: str, sealed: bytes) -> str:
        if self.remote:
            body = self.zone.octets("POST", f"{PREFIX}/{server}/uploads/{dataset}", sealed)
            return str(json.loads(body)["id"])
        return post_as(self.zone, server, dataset, sealed)

    def waiting(self, server: str) -> list[dict[str, Any]]:
        if self.remote:
            return list(json.loads(self.zone.octets("GET", f"{PREFIX}/{server}/packages")))
        return waiting_as(self.zone, server)

    def read(self, server: str, package_id: str) -> bytes:
        if self.remote:
            return bytes(self.zone.octets("GET", f"{PREFIX}/{server}/packages/{package_id}"))
        return read_as(self.zone, server, package_id)

    def remove(self, server: str, package_id: str) -> None:
        if self.remote:
            self.zone.octets("DELETE", f"{PREFIX}/{server}/packages/{package_id}")
        else:
            remove_as(self.zone, server, package_id)

    def jobs(self, server: str) -> list[dict[str, Any]]:
        if self.remote:
            return list(json.loads(self.zone.octets("GET", f"{PREFIX}/{server}/jobs")))
        return jobs_as(self.zone, server)

    def answer(
        self, server: str, job_id: str, *, share: bytes | None = None, error: str = ""
    ) -> None:
        if self.remote:
            kind, body = ("share", share) if share is not None else ("error", error.encode())
            self.zone.octets("PUT", f"{PREFIX}/{server}/jobs/{job_id}/{kind}", body)
        else:
            answer_as(self.zone, server, job_id, share=share, error=error)

    def bundle(self, recipient: str, sha256: str) -> bytes:
        if self.remote:
            return bytes(self.zone.octets("GET", f"{PREFIX}/{recipient}/bundles/{sha256}"))
        return bundle_as(self.zone, recipient, sha256)


def send_packages(
    relay: Relay,
    dataset: str,
    packages: Sequence[dict[str, Any]],
    servers: Sequence[str],
    *,
    expected: Mapping[str, str] | None = None,
) -> list[str]:
    """Seal package ``i`` to server ``servers[i]``'s key and post it; returns the ids.

    Every key is fetched before anything is posted, so a server that has not published
    yet stops the upload before any share leaves. ``expected`` maps a server to the key
    fingerprint it gave out of band (:func:`~._relay.fingerprint`): a key the zone hands
    out that differs is refused (a zone that swapped keys could read the shares).
    """
    if len(servers) != len(packages):
        raise InvalidInputError(
            f"name one compute server per package: {len(packages)} packages, {len(servers)} servers"
        )
    me = relay.zone.me.name
    if any(package["holding"]["provider"] != me for package in packages):
        raise InvalidInputError(
            f"the packages name another provider than you ({me!r}): the servers would refuse "
            "them; give --provider as your own party name"
        )
    keys = [relay.key(server) for server in servers]
    if expected is not None:
        for server, key in zip(servers, keys, strict=True):
            if server in expected and fingerprint(key) != expected[server]:
                raise NotAuthorisedError(
                    f"the zone handed out a relay key for {server!r} with fingerprint "
                    f"{fingerprint(key)}, not the {expected[server]} you were given: "
                    "nothing was sent"
                )
    return [
        relay.post(server, dataset, seal(package, key))
        for server, package, key in zip(servers, packages, keys, strict=True)
    ]


def fetch_packages(
    relay: Relay, server: str, store: ShareStore, *, index: int | None = None
) -> list[str]:
    """Open every package waiting for ``server`` into ``store``; returns the datasets.

    A package is refused (and left in the mailbox) if it does not open with this server's
    key, if its provider or dataset differ from what the zone says was posted (a party
    cannot upload in another's name), or if it was split for another server index.
    """
    key = store.relay_key()
    stored = []
    for meta in relay.waiting(server):
        package = unseal(relay.read(server, meta["id"]), key)
        holding = package["holding"]
        if (holding.get("provider"), holding.get("dataset")) != (meta["provider"], meta["dataset"]):
            raise NotAuthorisedError(
                f"package {meta['id']} says it is {holding.get('dataset')!r} of "
                f"{holding.get('provider')!r}, but {meta['provider']!r} posted it for "
                f"{meta['dataset']!r}: refused"
            )
        if index is not None and int(holding.get("index", -1)) != index:
            raise InvalidInputError(
                f"package {meta['id']} carries the shares of server {holding.get('index')}, "
                f"not of this server ({index})"
            )
        store.put(package)
        relay.remove(server, meta["id"])
        stored.append(str(holding["dataset"]))
    return stored
