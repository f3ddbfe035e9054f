"""The Vault transit KeyProvider against an in-memory stand-in for Vault's transit API.

No Vault server installs from the registries here, so the stand-in follows Vault's
documented behaviour (versions, exportable hmac keys, trim of the oldest versions only).
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

    def _key(self, name: str) -> dict[str, Any]:
        if name not in self.keys:
            raise hvac_exceptions.InvalidPath("no such key")
        return self.keys[name]

    def create_key(self, name: str, mount_point: str, **options: Any) -> None:
        self.calls.append(f"create {name} {options}")
        assert options["exportable"] is True
        self.keys.setdefault(name, {"versions": {1: os.urandom(32)}, "latest": 1, "min": 1})

    def read_key(self, name: str, mount_point: str) -> dict[str, Any]:
        key = self._key(name)
        return {
            "data": {
                "latest_version": key["latest"],
                "min_available_version": key["min"],
                "keys": {str(v): 1700000000 for v in key["versions"]},
            }
        }

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

    def update_key_configuration(self, name: str, mount_point: str, **options: Any) -> None:
        self._key(name)["min_decryption"] = options["min_decryption_version"]

    def trim_key(self, name: str, min_version: int, mount_point: str) -> None:
        key = self._key(name)
        assert key.get("min_decryption", 1) >= min_version
        key["versions"] = {v: m for v, m in key["versions"].items() if v >= min_version}
        key["min"] = min_version


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
