"""The key provider chosen in zone.toml: the local keyring (default), PKCS#11 on a real
SoftHSM2 token (the master key wrapped by a non-extractable HSM key), Vault (configuration
only here: no Vault server installs on this machine), and the embedded trust domain.

SoftHSM2 comes from Debian's ``softhsm2`` package (``make system-deps`` installs it): the
test fails, never skips, when its module is missing.
"""

from __future__ import annotations

import base64
import os
import subprocess
import tomllib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from collabzone.errors import AuthenticationError, InvalidInputError, NotFoundError
from collabzone.keys import MASTER_KEY_ENV
from collabzone.keys_config import TESTED_AGAINST_REAL_SERVER, KeysConfig, open_keys
from collabzone.keys_pkcs11 import PIN_ENV, HsmWrapper, Pkcs11Keyring, _library, default_module
from collabzone.store.data import DATA_KEY
from collabzone.zone import connect, init
from tests.conftest import CUSTOMER_SPEC, write_customers

PIN = "4711-test-pin"
TOKEN = "collabzone-test"
DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.fixture(scope="module")
def softhsm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A SoftHSM2 token for this module; yields the PKCS#11 module path.

    SoftHSM2 reads its configuration once per process, so one token serves every test (each
    test uses its own key label) and SOFTHSM2_CONF stays set for the module.
    """
    module = default_module()
    assert module is not None, (
        "SoftHSM2 is not installed: run `make system-deps` (apt-get install -y softhsm2)"
    )
    root = tmp_path_factory.mktemp("softhsm")
    (root / "tokens").mkdir()
    conf = root / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {root / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n"
    )
    previous = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    subprocess.run(
        [
            "softhsm2-util",
            "--init-token",
            "--free",
            "--label",
            TOKEN,
            "--pin",
            PIN,
            "--so-pin",
            "so-" + PIN,
        ],
        check=True,
        capture_output=True,
    )
    yield module
    if previous is None:
        os.environ.pop("SOFTHSM2_CONF", None)
    else:
        os.environ["SOFTHSM2_CONF"] = previous


def _pkcs11_keys(module: str, label: str) -> dict[str, str]:
    return {"provider": "pkcs11", "module": module, "token": TOKEN, "key": label}


def test_the_default_provider_is_the_local_keyring(tmp_path: Path) -> None:
    zone, _ = init(tmp_path / "zone")
    config = tomllib.loads((tmp_path / "zone" / "zone.toml").read_text())
    assert config["keys"] == {"provider": "local"}
    assert type(zone._keys).__name__ == "LocalKeyring"
    assert TESTED_AGAINST_REAL_SERVER == {"local": True, "pkcs11": True, "vault": False}


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"provider": "kms"}, "provider 'kms' is unknown"),
        ({"provider": "local", "module": "x.so"}, "do not apply to provider 'local'"),
        ({"provider": "vault", "pin": "1234"}, "do not apply to provider 'vault'"),
        ({"provider": "pkcs11", "module": "/nowhere/libhsm.so"}, "no PKCS#11 module at"),
    ],
)
def test_a_bad_keys_table_is_refused_before_anything_is_written(
    tmp_path: Path, keys: dict[str, str], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PIN_ENV, PIN)
    with pytest.raises(InvalidInputError, match=message):
        init(tmp_path / "zone", keys=keys)
    assert not (tmp_path / "zone" / "zone.toml").exists()
    assert not (tmp_path / "zone" / "keyring.json").exists()


def test_vault_needs_its_address_and_token_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VAULT_TOKEN", raising=False)
    monkeypatch.delenv("VAULT_ADDR", raising=False)
    config = KeysConfig.parse({"provider": "vault", "url": "https://vault.invalid:8200"})
    with pytest.raises(InvalidInputError, match="VAULT_TOKEN"):
        open_keys(tmp_path, config)
    assert 'url = "https://vault.invalid:8200"' in config.toml()


def test_a_zone_on_softhsm2_wraps_its_master_key_with_a_non_extractable_key(
    softhsm: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    label = f"zone-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv(PIN_ENV, PIN)
    monkeypatch.delenv(MASTER_KEY_ENV)  # no master key from the environment at all
    root = tmp_path / "zone"
    operator, token = init(root, keys=_pkcs11_keys(softhsm, label))
    assert isinstance(operator._keys, Pkcs11Keyring)
    _, bank_token = operator.add_party("bank", ["provider"])
    bank = operator.as_party(bank_token)
    bank.add_dataset("customers", write_customers(tmp_path / "c.csv", 30), CUSTOMER_SPEC)
    table = bank._data.read("customers", 1)

    # zone.toml names the token and key, never the PIN
    text = (root / "zone.toml").read_text()
    assert tomllib.loads(text)["keys"] == _pkcs11_keys(softhsm, label)
    assert PIN not in text

    # the HSM key: sensitive, non-extractable, wrap/unwrap only; its value cannot be read
    import pkcs11

    lib = _library(softhsm)
    with lib.get_token(token_label=TOKEN).open(user_pin=PIN) as session:
        key = session.get_key(label=label)
        assert key[pkcs11.Attribute.EXTRACTABLE] is False
        assert key[pkcs11.Attribute.SENSITIVE] is True
        assert key[pkcs11.Attribute.ENCRYPT] is False
        with pytest.raises(pkcs11.AttributeSensitive):
            _ = key[pkcs11.Attribute.VALUE]

    # the master key is on disk only wrapped: its value appears nowhere under the zone
    master = operator._keys._wrapping_key()
    assert len(master) == 32
    for path in root.rglob("*"):
        if path.is_file():
            blob = path.read_bytes()
            for form in (master, base64.b64encode(master), base64.urlsafe_b64encode(master)):
                assert form not in blob, path.name
    assert "CKM_AES_KEY_WRAP_PAD" in (root / "keyring.json").read_text()

    # reopening asks the token to unwrap it
    again = connect(root, token)
    assert again._data.read("customers", 1) == table
    assert again.rotate_key(DATA_KEY)["files"] == 1
    assert connect(root, bank_token)._data.read("customers", 1) == table
    assert again.verify_audit().ok

    # rotating the master key: a new one from the token, the old wrapped form gone
    wrapped_before = (root / "keyring.json").read_text()
    again._keys.change_master()  # type: ignore[attr-defined]
    assert (root / "keyring.json").read_text() != wrapped_before
    assert connect(root, token)._data.read("customers", 1) == table


def test_softhsm2_refusals_say_what_to_fix(
    softhsm: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    label = f"zone-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv(PIN_ENV, PIN)
    root = tmp_path / "zone"
    _, token = init(root, keys=_pkcs11_keys(softhsm, label))
    monkeypatch.setenv(PIN_ENV, "not-the-pin")
    with pytest.raises(AuthenticationError, match="wrong PIN"):
        connect(root, token)
    monkeypatch.setenv(PIN_ENV, PIN)
    config = KeysConfig.parse(_pkcs11_keys(softhsm, "another-label"))
    with pytest.raises(NotFoundError, match="holds no AES key labelled 'another-label'"):
        open_keys(root, config)
    config = KeysConfig.parse({**_pkcs11_keys(softhsm, label), "token": "no-such-token"})
    with pytest.raises(NotFoundError, match="no single PKCS#11 token"):
        open_keys(root, config)
    # a keyring whose wrapped master key was altered does not open
    other = HsmWrapper(softhsm, TOKEN, f"other-{uuid.uuid4().hex[:8]}", PIN)
    other.ensure_key()
    with pytest.raises(Exception, match="does not unwrap"):
        Pkcs11Keyring(root / "keyring.json", other)
    monkeypatch.delenv(PIN_ENV)
    with pytest.raises(AuthenticationError, match=PIN_ENV):
        connect(root, token)


def test_embedded_mode_is_one_trust_domain_and_the_docs_say_so(tmp_path: Path) -> None:
    """In one process every party's handle shares the zone's KeyProvider: a provider's
    handle can read the data key. That is the embedded trust domain, documented; separate
    organisations use the server (tests/server/test_keys_rest.py)."""
    operator, _ = init(tmp_path / "zone")
    _, bank_token = operator.add_party("bank", ["provider"])
    bank = operator.as_party(bank_token)
    assert bank._keys.get(DATA_KEY)[1] == operator._keys.get(DATA_KEY)[1]
    doc = " ".join((DOCS / "trust-model.md").read_text(encoding="utf-8").split())
    assert "one trust domain" in doc and "master key" in doc
    assert "no party's credentials reach" in doc
