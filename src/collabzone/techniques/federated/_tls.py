"""TLS certificates the zone issues for its Flower SuperLink (deployments: no ``--insecure``).

The zone is its own small certificate authority: :func:`issue` makes a CA (EC P-256,
self-signed, ``CA:TRUE, pathlen 0``) and a server certificate for the SuperLink signed by
it, whose subject alternative names list the host names and IP addresses the owners' nodes
dial. The SuperLink gets ``--ssl-ca-certfile ca.pem --ssl-certfile superlink.pem
--ssl-keyfile superlink.key``; each owner's node verifies it with ``ca.pem`` alone
(``flower-supernode --root-certificates ca.pem``), which the operator hands over with the
zone's job-signing key. Private keys are written ``0600``. The CA key stays with the zone
(to issue the next server certificate); owners never need it.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from collabzone.crypto.ca import make_ca, private_key_pem
from collabzone.errors import InvalidInputError

CA_FILE, CA_KEY = "ca.pem", "ca.key"
CERT_FILE, KEY_FILE = "superlink.pem", "superlink.key"


@dataclass(frozen=True)
class Certificates:
    """Paths of the SuperLink's TLS material (what :func:`issue` wrote, or found)."""

    ca: Path
    cert: Path
    key: Path

    @classmethod
    def at(cls, directory: Path) -> Certificates:
        """The certificates in ``directory`` (written by :func:`issue`); a clear error if
        one is missing."""
        found = cls(directory / CA_FILE, directory / CERT_FILE, directory / KEY_FILE)
        for path in (found.ca, found.cert, found.key):
            if not path.is_file():
                raise InvalidInputError(
                    f"no {path.name} in {directory}: make them with `collabzone fl certs`"
                )
        return found


def _names(hosts: Sequence[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in dict.fromkeys(h.strip() for h in hosts):
        if not host:
            continue
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            if any(c in host for c in " /:@"):
                raise InvalidInputError(
                    f"{host!r} is neither a host name nor an IP address"
                ) from None
            names.append(x509.DNSName(host))
    if not names:
        raise InvalidInputError("give at least one host name or IP address for the SuperLink")
    return names


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(private_key_pem(key))


def issue(
    out: Path, hosts: Sequence[str], zone_id: str = "collabzone", days: int = 365
) -> Certificates:
    """Write a CA and a SuperLink server certificate for ``hosts`` (DNS names or IPs, the
    first one is also the common name) into ``out``; returns their paths."""
    if not 1 <= days <= 3650:
        raise InvalidInputError("`days` must be between 1 and 3650")
    sans = _names(hosts)
    out.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    valid_from, valid_to = now - dt.timedelta(minutes=5), now + dt.timedelta(days=days)
    ca_key, ca = make_ca(f"{zone_id} federated CA", valid_from, valid_to)
    ca_name = ca.subject
    key = ec.generate_private_key(ec.SECP256R1())
    common = str(hosts[0]).strip()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid_from)
        .not_valid_after(valid_to)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    found = Certificates(out / CA_FILE, out / CERT_FILE, out / KEY_FILE)
    found.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    found.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(out / CA_KEY, ca_key)
    _write_key(found.key, key)
    return found
