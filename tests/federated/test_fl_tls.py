"""The zone's TLS certificates for its SuperLink: a CA and a server certificate naming the
hosts the nodes dial; a real SuperLink serves them and a SuperNode joins over TLS."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from collabzone.errors import InvalidInputError
from collabzone.techniques.federated import _deploy, _tls


def test_the_server_certificate_is_signed_by_the_zone_ca_for_the_named_hosts(
    tmp_path: Path,
) -> None:
    certs = _tls.issue(tmp_path, ["zone.example", "10.0.0.7"], zone_id="z1")
    ca = x509.load_pem_x509_certificate(certs.ca.read_bytes())
    cert = x509.load_pem_x509_certificate(certs.cert.read_bytes())
    cert.verify_directly_issued_by(ca)  # raises unless the CA signed it
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["zone.example"]
    assert [str(a) for a in sans.get_values_for_type(x509.IPAddress)] == ["10.0.0.7"]
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    assert certs.key.stat().st_mode & 0o077 == 0  # private keys: owner only
    assert (tmp_path / _tls.CA_KEY).stat().st_mode & 0o077 == 0
    assert _tls.Certificates.at(tmp_path) == certs
    with pytest.raises(InvalidInputError, match="collabzone fl certs"):
        _tls.Certificates.at(tmp_path / "elsewhere")
    with pytest.raises(InvalidInputError, match="host name"):
        _tls.issue(tmp_path / "bad", ["https://zone.example/"])


def test_fl_certs_cli_writes_the_ca_and_the_superlink_certificate(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from collabzone.cli import app

    runner = CliRunner()
    done = runner.invoke(app, ["fl", "certs", "--out", str(tmp_path / "c"), "--host",
                               "zone.example", "--host", "127.0.0.1"])  # fmt: skip
    assert done.exit_code == 0, done.output
    assert "ca.pem" in done.output and _tls.Certificates.at(tmp_path / "c")
    node = runner.invoke(app, ["fl", "node", "--data", "a=a.csv", "--superlink", "z:1"])
    assert node.exit_code != 0 and "--root-certificates" in node.output  # no silent plaintext


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::UserWarning")  # Flower's protobuf gencode notice
def test_a_supernode_joins_the_zones_superlink_over_tls(tmp_path: Path) -> None:
    """The SuperLink runs without --insecure on the zone's certificates; a SuperNode that
    trusts only the zone's CA registers with it, and the zone's own ``flwr`` lists it over
    the TLS Control API."""
    certs = _tls.issue(tmp_path / "certs", ["localhost", "127.0.0.1"])
    deployment, address = _deploy.start_link(tmp_path / "link", certs)
    try:
        assert "--insecure" not in " ".join(map(str, deployment.processes[0].args))
        _deploy.start_supernode(deployment, "bank", address, {"data-path": "none.csv"}, certs.ca)
        online = None
        deadline = time.monotonic() + 30
        while not online and time.monotonic() < deadline:
            online = _deploy.online_supernodes(deployment)  # `flwr supernode list`, over TLS
            if not online:
                time.sleep(1.0)
        assert online == 1, (
            deployment.log("superlink")[-2000:] + deployment.log("supernode-bank")[-2000:]
        )
    finally:
        deployment.stop()
