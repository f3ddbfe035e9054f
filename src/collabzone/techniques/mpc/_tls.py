"""Certificates for TLS between the compute servers (MPyC's ``--ssl``), made with ``cryptography``.

MPyC 0.11 (``runtime.start``) reads, relative to a server's working directory,
``.config/party_<i>.crt``, ``.config/party_<i>.key`` and ``.config/mpyc_ca.crt``; it requires
a client and a server certificate (mutual TLS) and checks that the peer's certificate names
``MPyC party <j>``. In a deployment each organisation makes its own key and certificate
request (:func:`party_request`) and the collaboration's CA signs it (:func:`sign_party`);
only the CA certificate is shared. :func:`make_test_certificates` does all of it at once,
for tests and demos, writing one ``.config`` per server directory with that server's key
alone.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from collabzone.crypto import ca

VALIDITY = dt.timedelta(days=365)


def party_name(index: int) -> str:
    """The name MPyC checks on party ``index``'s certificate."""
    return f"MPyC party {index}"


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return ca.private_key_pem(key)


def make_ca(name: str = "collabzone MPC CA") -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A CA key and self-signed certificate (kept by the collaboration's CA operator)."""
    now = dt.datetime.now(dt.UTC)
    return ca.make_ca(name, now - dt.timedelta(minutes=5), now + VALIDITY)


def party_request(index: int) -> tuple[ec.EllipticCurvePrivateKey, x509.CertificateSigningRequest]:
    """Server ``index``'s own key (never leaves it) and its certificate request."""
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, party_name(index))]))
        .sign(key, hashes.SHA256())
    )
    return key, csr


def sign_party(
    csr: x509.CertificateSigningRequest,
    index: int,
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
) -> x509.Certificate:
    """The CA signs server ``index``'s request (client and server use, named for MPyC)."""
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, party_name(index))]))
        .issuer_name(ca_cert.subject)
        .public_key(csr.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(party_name(index))]), critical=False
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )


def write_party(
    directory: Path, index: int, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate,
    ca_cert: x509.Certificate,
) -> Path:  # fmt: skip
    """Write ``<directory>/.config`` as MPyC reads it; the key file is readable by its owner only."""
    config = Path(directory) / ".config"
    config.mkdir(parents=True, exist_ok=True)
    key_path = config / f"party_{index}.key"
    key_path.write_bytes(_pem_key(key))
    key_path.chmod(0o600)
    (config / f"party_{index}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (config / "mpyc_ca.crt").write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    return config


def make_test_certificates(directories: Sequence[Path]) -> None:
    """A CA and one certificate per server, each server's directory holding only its own key."""
    ca_key, ca_cert = make_ca()
    for index, directory in enumerate(directories):
        key, csr = party_request(index)
        write_party(directory, index, key, sign_party(csr, index, ca_key, ca_cert), ca_cert)
