"""The Vault transit KeyProvider against an in-memory stand-in for Vault's transit API.

No Vault server installs from the registries here, so the stand-in follows Vault's
documented rules (versions, exportable hmac keys, trim of the oldest versions only, and the
key-configuration rules ``destroy`` must respect):

* ``min_encryption_version`` is 0 (latest) or >= ``min_decryption_version``, after every
  config update; neither may exceed the latest version nor fall below the trimmed floor;
* hvac itself refuses both floors in one call unless encryption > decryption;
* trim (``min_available_version``) needs both floors set (non-zero) and may not exceed
  either of them.

The old ``destroy`` raised ``min_decryption_version`` and trimmed: against these rules the
trim failed and left the key half-changed (``test_destroy_...`` reproduces it).
"""

from __future__ import annotations

import base64
import os
from typing import Any

import pyarrow as pa
import pytest

from collabzone.errors import InternalError, InvalidInputError, NotFoundError
from collabzone.keys_vault import VaultTransitKeys, vault_name
from collabzone.techniques.linking import hmac_tokens, link_key

hvac_exceptions = pytest.importorskip("hvac.exceptions")


class FakeTransit:
    def __init__(self) -> None:
        self.keys: dict[str, dict[str, Any]] = {}
        self.calls: list[str] = []
        self.fail_on: str | None = None

    def _key(self, name: str) -> dict[str, Any]:
        if name not in self.keys:
            raise hvac_exceptions.InvalidPath("no such key")
        return self.keys[name]

    def _maybe_fail(self, call: str) -> None:
        self.calls.append(call)
        if self.fail_on == call:
            raise hvac_exceptions.Forbidden("permission denied")

    def create_key(self, name: str, mount_point: str, **options: Any) -> None:
        self.calls.append(f"create {name} {options}")
        assert options["exportable"] is True
        self.keys.setdefault(
            name,
            {"versions": {1: os.urandom(32)}, "latest": 1, "min": 0, "min_dec": 1, "min_enc": 0},
        )

    def read_key(self, name: str, mount_point: str) -> dict[str, Any]:
        key = self._key(name)
        return {
            "data": {
                "latest_version": key["latest"],
                "min_available_version": key["min"],
                "min_decryption_version": key["min_dec"],
                "min_encryption_version": key["min_enc"],
                "keys": {str(v): 1700000000 for v in key["versions"]},
            }
        }

    def list_keys(self, mount_point: str) -> dict[str, Any]:
        if not self.keys:
            raise hvac_exceptions.InvalidPath("no keys")
        return {"data": {"keys": sorted(self.keys)}}

    def export_key(
        self, name: str, key_type: str, version: str, mount_point: str
    ) -> dict[str, Any]:
        assert key_type == "hmac-key"
        key = self._key(name)
        material = key["versions"].get(int(version))
        if material is None:
            raise hvac_exceptions.InvalidRequest("version not found")
        return {"data": {"keys": {version: base64.b64encode(material).decode()}}}

    def rotate_key(self, name: str, mount_point: str) -> None:
        key = self._key(name)
        key["latest"] += 1
        key["versions"][key["latest"]] = os.urandom(32)

    def update_key_configuration(
        self,
        name: str,
        mount_point: str,
        min_decryption_version: int | None = None,
        min_encryption_version: int | None = None,
        **options: Any,
    ) -> None:
        dec, enc = min_decryption_version, min_encryption_version
        if dec is not None and enc is not None and enc != 0 and enc <= dec:  # hvac's own check
            raise hvac_exceptions.ParamValidationError(
                "min_encryption_version must be 0 or > min_decryption_version"
            )
        self._maybe_fail("config")
        key = self._key(name)
        new_dec = key["min_dec"] if dec is None else dec
        new_enc = key["min_enc"] if enc is None else enc
        if new_dec > key["latest"] or new_enc > key["latest"]:
            raise hvac_exceptions.InvalidRequest("cannot be greater than the latest version")
        if new_dec < max(key["min"], 1):
            raise hvac_exceptions.InvalidRequest("cannot be lower than min_available_version")
        if new_enc != 0 and new_enc < new_dec:
            raise hvac_exceptions.InvalidRequest(
                "min encryption version must be 0 or >= min decryption version"
            )
        key["min_dec"], key["min_enc"] = new_dec, new_enc
        self.calls.append(f"config dec={new_dec} enc={new_enc}")

    def trim_key(self, name: str, min_version: int, mount_point: str) -> None:
        self._maybe_fail("trim")
        key = self._key(name)
        if key["min_enc"] == 0 or key["min_dec"] == 0:
            raise hvac_exceptions.InvalidRequest(
                "cannot trim while min_encryption_version or min_decryption_version is zero"
            )
        if min_version > min(key["min_dec"], key["min_enc"]) or min_version < key["min"]:
            raise hvac_exceptions.InvalidRequest("invalid min_available_version")
        key["versions"] = {v: m for v, m in key["versions"].items() if v >= min_version}
        key["min"] = min_version
        self.calls.append(f"trim {min_version}")


class FakeClient:
    def __init__(self) -> None:
        self.secrets = type("Secrets", (), {"transit": FakeTransit()})()


def test_vault_keys_version_rotate_destroy_and_derive() -> None:
    client = FakeClient()
    keys = VaultTransitKeys(client)
    assert keys.versions("link:bank") == []
    assert keys.create("link:bank") == 1
    assert keys.create("link:bank") == 1  # idempotent
    assert "link--bank" in client.secrets.transit.keys
    first = link_key(keys, "link:bank", "demo", "email")
    assert keys.rotate("link:bank") == 2 and keys.rotate("link:bank") == 3
    assert keys.versions("link:bank") == [1, 2, 3]
    again = link_key(keys, "link:bank", "demo", "email", version=1)
    assert again.material == first.material
    token = hmac_tokens(first, pa.array(["a@b.com"]))[0].as_py()
    assert token.startswith("v1:")
    with pytest.raises(InvalidInputError, match="oldest"):
        keys.destroy("link:bank", 2)
    with pytest.raises(InvalidInputError, match="current"):
        keys.destroy("link:bank", 3)
    keys.destroy("link:bank", 1)
    assert keys.versions("link:bank") == [2, 3]
    with pytest.raises(NotFoundError):
        keys.get("link:bank", 1)
    with pytest.raises(NotFoundError):
        keys.get("link:nobody")


def test_vault_errors_never_carry_material_and_names_are_checked() -> None:
    client = FakeClient()
    keys = VaultTransitKeys(client)
    keys.create("oprf:c")
    _, material = keys.get("oprf:c")

    def broken(**_: Any) -> None:
        raise RuntimeError(base64.b64encode(material).decode())

    client.secrets.transit.rotate_key = broken
    with pytest.raises(InternalError) as caught:
        keys.rotate("oprf:c")
    assert base64.b64encode(material).decode() not in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert "material" not in repr(keys) and "transit" in repr(keys)
    assert vault_name("link:a.b") == "link--a.b"
    with pytest.raises(InvalidInputError):
        vault_name("a/b")
    with pytest.raises(InvalidInputError):
        vault_name("a--b")  # would collide with a:b


def _config(client: FakeClient, name: str = "link--bank") -> tuple[int, int, int, list[int]]:
    key = client.secrets.transit.keys[name]
    return key["min_dec"], key["min_enc"], key["min"], sorted(key["versions"])


def test_destroy_follows_vaults_order_and_trims_only_the_oldest() -> None:
    client = FakeClient()
    keys = VaultTransitKeys(client)
    keys.create("link:bank")
    keys.rotate("link:bank")
    keys.rotate("link:bank")
    client.secrets.transit.calls.clear()
    keys.destroy("link:bank", 1)
    assert client.secrets.transit.calls == [
        "config",
        "config dec=1 enc=2",
        "config",
        "config dec=2 enc=2",
        "trim",
        "trim 2",
    ]
    assert _config(client) == (2, 2, 2, [2, 3])
    keys.destroy("link:bank", 2)  # the floors are already partly raised: still fine
    assert _config(client) == (3, 3, 3, [3])
    assert keys.versions("link:bank") == [3] and keys.get("link:bank")[0] == 3


@pytest.mark.parametrize("failing", ["config", "trim"])
def test_a_failed_destroy_leaves_the_key_as_it_was(failing: str) -> None:
    client = FakeClient()
    keys = VaultTransitKeys(client)
    keys.create("link:bank")
    keys.rotate("link:bank")
    keys.rotate("link:bank")
    first = keys.get("link:bank", 1)
    before = _config(client)
    transit = client.secrets.transit
    if failing == "config":  # the second config call (decryption floor) is refused
        calls = iter([None, "fail"])
        original = transit.update_key_configuration

        def flaky(*args: Any, **kwargs: Any) -> None:
            if next(calls, None) == "fail":
                raise hvac_exceptions.Forbidden("permission denied")
            original(*args, **kwargs)

        transit.update_key_configuration = flaky
    else:
        transit.fail_on = "trim"
    with pytest.raises(
        InternalError, match="was not destroyed and the key's configuration is as it was"
    ):
        keys.destroy("link:bank", 1)
    if failing == "config":
        transit.update_key_configuration = original
    assert _config(client) == before
    assert keys.get("link:bank", 1) == first and keys.versions("link:bank") == [1, 2, 3]
    transit.fail_on = None
    keys.destroy("link:bank", 1)  # and it can be retried
    assert keys.versions("link:bank") == [2, 3]


def test_a_failed_restore_says_what_to_set_back() -> None:
    client = FakeClient()
    keys = VaultTransitKeys(client)
    keys.create("link:bank")
    keys.rotate("link:bank")
    transit = client.secrets.transit
    transit.fail_on = "trim"
    original = transit.update_key_configuration
    calls = {"n": 0}

    def refuse_after_two(*args: Any, **kwargs: Any) -> None:
        calls["n"] += 1
        if calls["n"] > 2:
            raise hvac_exceptions.VaultDown("sealed")
        original(*args, **kwargs)

    transit.update_key_configuration = refuse_after_two
    with pytest.raises(InternalError) as caught:
        keys.destroy("link:bank", 1)
    message = caught.value.message
    assert "min_decryption_version=1" in message and "min_encryption_version=0" in message
    assert "link--bank" in message


def test_vault_lists_its_key_names() -> None:
    keys = VaultTransitKeys(FakeClient())
    assert keys.names() == []
    keys.create("oprf:c")
    keys.create("data-at-rest")
    assert keys.names() == ["data-at-rest", "oprf:c"]
