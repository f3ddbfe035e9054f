"""HTTPS: the server serves TLS from certificate paths; the client verifies against a CA file."""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from collabzone.client import ZoneUnavailableError, connect_remote
from tests.server.conftest import Server, make_parties, start_server


def _self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_https_with_configured_certificate(tmp_path: Path, servers: list[Server]) -> None:
    _, tokens = make_parties(tmp_path / "zone")
    cert, key = _self_signed(tmp_path)
    plain = start_server(tmp_path / "zone", "--ssl-certfile", str(cert), "--ssl-keyfile", str(key),
                         health_scheme="https", ca=cert)  # fmt: skip
    servers.append(plain)
    url = plain.url.replace("http://", "https://")
    bank = connect_remote(url, client_id="bank", client_secret=tokens["bank"], verify=str(cert))
    assert bank.me.name == "bank"
    bank.close()
    untrusted = connect_remote(url, client_id="bank", client_secret=tokens["bank"])
    with pytest.raises(ZoneUnavailableError):
        untrusted.parties()  # an unknown certificate is refused, never silently accepted
    untrusted.close()
