"""Where webhooks may go: the server-side request forgery (SSRF) policy for destinations.

A webhook makes the zone's server open a connection wherever its URL points. Left open,
that reaches what only the server can reach: the metadata database on loopback, the cloud
metadata service (169.254.169.254), admin ports on the private network. So:

* only the zone's operator, on the host, registers destinations (``collabzone webhook``);
* a destination must resolve only to public unicast addresses: loopback, private,
  link-local, unique-local, unspecified, multicast, reserved and other special-purpose
  ranges are refused, including IPv4 addresses hidden in IPv6 forms (IPv4-mapped
  ``::ffff:127.0.0.1``, NAT64 ``64:ff9b::/96``, 6to4 ``2002::/16``, Teredo), unless an
  allow-list the operator sets (``--webhook-allow``) names the network;
* the check runs again at every delivery, and the delivery connects to the very address
  that was checked (no second lookup a rebinding DNS server could answer differently).

:func:`refusal` and :func:`check_url` are pure; :func:`resolve` does the DNS lookup.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from collabzone.errors import InvalidInputError, NotAuthorisedError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Sequence[str]]

NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
ALLOW_HINT = (
    "only public addresses are allowed; the operator may allow a network explicitly with "
    "`collabzone serve --webhook-allow NET` (and `collabzone webhook set --allow NET`)"
)


def parse_allow(entries: Iterable[str]) -> tuple[Network, ...]:
    """The allow-list: addresses or CIDR networks (``127.0.0.1``, ``10.0.0.0/8``, ``::1``)."""
    networks: list[Network] = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise InvalidInputError(
                f"webhook allow-list entry {entry!r} is not an address or CIDR network"
            ) from None
    return tuple(networks)


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 form carries to an IPv4 host, if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _kind(address: IPAddress) -> str | None:
    """Why ``address`` is not a public unicast address (None if it is one)."""
    if isinstance(address, ipaddress.IPv6Address) and address.teredo is not None:
        return "Teredo (tunnels to an IPv4 host)"
    for attribute, word in (
        ("is_loopback", "loopback"),
        ("is_link_local", "link-local"),
        ("is_unspecified", "unspecified"),
        ("is_multicast", "multicast"),
        ("is_reserved", "reserved"),
        ("is_private", "private"),
    ):
        if getattr(address, attribute):
            return word
    if not address.is_global:
        return "special-purpose (not globally routed)"
    return None


def refusal(address: IPAddress, allow: Sequence[Network] = ()) -> str | None:
    """Why a webhook may not connect to ``address`` (None: it may). Pure.

    An address inside an allow-listed network is allowed whatever it is. IPv4 addresses
    carried in IPv6 forms are judged as the IPv4 host they reach.
    """
    if any(address in net for net in allow if net.version == address.version):
        return None
    if isinstance(address, ipaddress.IPv6Address):
        inner = _embedded_ipv4(address)
        if inner is not None:
            why = refusal(inner, allow)
            return None if why is None else f"{why} (IPv4 {inner} inside IPv6 {address})"
    return _kind(address)


@dataclass(frozen=True)
class Target:
    """A parsed destination: scheme, host as written, port and the path to post to."""

    scheme: str
    host: str
    port: int
    path: str


def check_url(url: str) -> Target:
    """Parse a destination URL, refusing what is malformed or could smuggle a credential.

    Pure: no DNS lookup (see :func:`checked_address`).
    """
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https"):
        raise InvalidInputError("the webhook url must start with http:// or https://")
    if parts.username is not None or parts.password is not None:
        raise InvalidInputError("the webhook url must not carry a user name or password")
    if not parts.hostname:
        raise InvalidInputError("the webhook url names no host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise InvalidInputError("the webhook url has an invalid port") from None
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(parts.scheme, parts.hostname, port, path)


def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (the operating system's resolver)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise InvalidInputError(f"the webhook host {host!r} does not resolve ({exc})") from None
    return [str(info[4][0]) for info in infos]


def checked_address(
    target: Target, allow: Sequence[Network] = (), resolver: Resolver = system_resolver
) -> IPAddress:
    """The address to connect to for ``target``, after checking every address its host
    resolves to; refuses (NotAuthorisedError) if any of them is not allowed, so a host
    that answers with a mix of public and internal addresses is refused too."""
    try:
        literal: IPAddress | None = ipaddress.ip_address(target.host)
    except ValueError:
        literal = None
    found = [literal] if literal is not None else _addresses(resolver(target.host, target.port))
    if not found:
        raise InvalidInputError(f"the webhook host {target.host!r} resolves to no address")
    for address in found:
        why = refusal(address, allow)
        if why is not None:
            shown = target.host if literal is not None else f"{target.host} ({address})"
            article = "an" if why[0] in "aeiou" else "a"
            raise NotAuthorisedError(
                f"webhook destination {shown} is {article} {why} address: refused, because the "
                f"zone's server must not be made to reach its own network; {ALLOW_HINT}"
            )
    return found[0]


def _addresses(raw: Sequence[str]) -> list[IPAddress]:
    addresses: list[IPAddress] = []
    for text in raw:
        # getaddrinfo may append an IPv6 zone ("fe80::1%eth0"): the address is what counts
        addresses.append(ipaddress.ip_address(text.split("%", 1)[0]))
    return addresses


def check_destination(
    url: str, allow: Sequence[Network] = (), resolver: Resolver = system_resolver
) -> tuple[Target, IPAddress]:
    """Parse ``url`` and check where it leads; the target and the address to connect to."""
    target = check_url(url)
    return target, checked_address(target, allow, resolver)
