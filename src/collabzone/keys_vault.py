"""A KeyProvider on HashiCorp Vault's transit secrets engine (optional; needs ``hvac``).

Each collabzone key is one transit key, created ``exportable`` so that its per-version
HMAC key can be read back as root material for HKDF (:meth:`KeyProvider.derive`). Vault
keeps versions, rotation and access policy; collabzone never writes key material to disk.

* ``create`` -> ``transit/keys/<name>`` (type ``aes256-gcm96``, exportable)
* ``get`` -> ``transit/export/hmac-key/<name>/<version>``
* ``rotate`` -> ``transit/keys/<name>/rotate``
* ``destroy`` -> ``transit/keys/<name>/trim`` with ``min_available_version = v + 1``. Vault
  trims only when both floors are set and at least that high, so ``destroy`` first raises
  ``min_encryption_version`` (it must be 0 or >= ``min_decryption_version`` at every step),
  then ``min_decryption_version``, then trims; if any call fails, it puts both floors back
  as they were, so a failed destroy leaves the key exactly as it found it. Vault can only
  drop the *oldest* versions, so a version is destroyed only once every older one is gone
  (the error says so).

Key names map to Vault names by replacing ``:`` with ``--`` (``link:bank`` ->
``link--bank``). Key material never appears in ``repr``, logs or errors.

Example::

    import hvac
    keys = VaultTransitKeys(hvac.Client(url="https://vault:8200", token=...), mount="transit")
"""

from __future__ import annotations

import base64
import re
from typing import Any

from collabzone.errors import CollabzoneError, InternalError, InvalidInputError, NotFoundError
from collabzone.keys import KeyProvider

_VAULT_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


def vault_name(name: str) -> str:
    """The Vault transit key name of a collabzone key name."""
    mapped = name.replace(":", "--")
    if not _VAULT_NAME.match(mapped) or "--" in name:
        raise InvalidInputError(
            f"key name {name!r} cannot be stored in Vault: use letters, digits, _ . - and ':'"
        )
    return mapped


class VaultTransitKeys(KeyProvider):
    """Named, versioned keys held by Vault transit (``client`` is an ``hvac.Client``)."""

    def __init__(self, client: Any, mount: str = "transit") -> None:
        self._transit = client.secrets.transit
        self._mount = mount

    def __repr__(self) -> str:
        return f"<VaultTransitKeys mount={self._mount}>"

    def _call(self, what: str, method: str, **kwargs: Any) -> Any:
        try:
            return getattr(self._transit, method)(mount_point=self._mount, **kwargs)
        except Exception as exc:  # hvac raises its own tree; never chain (may echo material)
            kind = type(exc).__name__
            if kind in ("InvalidPath", "NotFound"):
                raise NotFoundError(f"Vault has no {what}") from None
            raise InternalError(f"Vault transit call {method} failed ({kind}) for {what}") from None

    def _read(self, name: str) -> dict[str, Any]:
        response = self._call(f"key {name!r}", "read_key", name=vault_name(name))
        data: dict[str, Any] = response["data"]
        return data

    def create(self, name: str) -> int:
        try:
            return int(self._read(name)["latest_version"])
        except NotFoundError:
            pass
        self._call(
            f"key {name!r}",
            "create_key",
            name=vault_name(name),
            key_type="aes256-gcm96",
            exportable=True,
        )
        return int(self._read(name)["latest_version"])

    def get(self, name: str, version: int | None = None) -> tuple[int, bytes]:
        data = self._read(name)
        version = int(data["latest_version"]) if version is None else version
        if version not in self.versions(name, data):
            raise NotFoundError(f"key {name!r} has no version {version} (destroyed or never made)")
        response = self._call(
            f"key {name!r} version {version}",
            "export_key",
            name=vault_name(name),
            key_type="hmac-key",
            version=str(version),
        )
        keys = response["data"]["keys"]
        material = keys.get(str(version)) or keys.get(version)
        if material is None:
            raise NotFoundError(f"key {name!r} has no version {version}")
        return version, base64.b64decode(material)

    def rotate(self, name: str) -> int:
        self.create(name)
        self._call(f"key {name!r}", "rotate_key", name=vault_name(name))
        return int(self._read(name)["latest_version"])

    def destroy(self, name: str, version: int) -> None:
        data = self._read(name)
        held = self.versions(name, data)
        if version not in held:
            raise NotFoundError(f"key {name!r} has no version {version}")
        if version == int(data["latest_version"]):
            raise InvalidInputError(
                f"version {version} of {name!r} is current: rotate before destroying it"
            )
        if min(held) != version:
            raise InvalidInputError(
                f"Vault transit drops only the oldest versions: destroy versions below "
                f"{version} of {name!r} first"
            )
        vname = vault_name(name)
        floor = version + 1
        before = {
            "min_encryption_version": int(data.get("min_encryption_version") or 0),
            "min_decryption_version": int(data.get("min_decryption_version") or 1),
        }
        # Vault's rules: min_encryption_version is 0 or >= min_decryption_version after each
        # call (hvac also refuses both in one call when they are equal), and trim needs both
        # set and >= the new floor. So: encryption floor up, decryption floor up, trim.
        steps = [
            (k, floor)
            for k in ("min_encryption_version", "min_decryption_version")
            if before[k] < floor
        ]
        done: list[str] = []
        try:
            for option, value in steps:
                self._call(
                    f"key {name!r}", "update_key_configuration", name=vname, **{option: value}
                )
                done.append(option)
            self._call(f"key {name!r}", "trim_key", name=vname, min_version=floor)
        except CollabzoneError as failure:
            self._restore(name, vname, before, done)
            raise type(failure)(
                f"{failure.message}; version {version} of {name!r} was not destroyed and the "
                "key's configuration is as it was"
            ) from None

    def _restore(self, name: str, vname: str, before: dict[str, int], done: list[str]) -> None:
        """Put back the floors a failed destroy raised (decryption first, Vault's order)."""
        for option in reversed(done):
            try:
                self._call(
                    f"key {name!r}",
                    "update_key_configuration",
                    name=vname,
                    **{option: before[option]},
                )
            except CollabzoneError:
                raise InternalError(
                    f"destroying a version of {name!r} failed and so did restoring its "
                    f"configuration: set {', '.join(f'{o}={before[o]}' for o in done)} on "
                    f"Vault transit key {vname!r} (vault write <mount>/keys/{vname}/config ...)"
                ) from None

    def current(self, name: str) -> int:
        return int(self._read(name)["latest_version"])

    def names(self) -> list[str]:
        try:
            response = self._call("the key list", "list_keys")
        except NotFoundError:  # Vault answers 404 when the mount holds no key
            return []
        return sorted(k.replace("--", ":") for k in response["data"]["keys"])

    def versions(self, name: str, data: dict[str, Any] | None = None) -> list[int]:
        try:
            data = data if data is not None else self._read(name)
        except NotFoundError:
            return []
        floor = int(data.get("min_available_version") or 0)
        return sorted(int(v) for v in data.get("keys", {}) if int(v) >= floor)
