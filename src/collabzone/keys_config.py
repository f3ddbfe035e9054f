"""Which KeyProvider a zone uses: the ``[keys]`` table of ``zone.toml``.

::

    [keys]
    provider = "local"     # default: keyring.json under COLLABZONE_MASTER_KEY
    # provider = "pkcs11"  # keyring.json whose master key an HSM key wraps (keys_pkcs11.py)
    # module = "/usr/lib/softhsm/libsofthsm2.so"
    # token = "collabzone"
    # key = "collabzone-master"
    # provider = "vault"   # HashiCorp Vault transit (keys_vault.py)
    # url = "https://vault.example:8200"   # or VAULT_ADDR; the token comes from VAULT_TOKEN
    # mount = "transit"

Secrets (the master key, the PKCS#11 PIN, the Vault token) never go in ``zone.toml``:
they come from the environment. Unknown options are errors, not ignored.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from collabzone.errors import InvalidInputError
from collabzone.keys import KeyProvider, LocalKeyring, master_key_from_env

KEYRING_FILE = "keyring.json"
PROVIDERS: dict[str, frozenset[str]] = {
    "local": frozenset(),
    "pkcs11": frozenset({"module", "token", "key"}),
    "vault": frozenset({"url", "mount"}),
}
"""Each provider and the options it takes in ``[keys]`` (besides ``provider``)."""

TESTED_AGAINST_REAL_SERVER = {"local": True, "pkcs11": True, "vault": False}
"""local: the real file; pkcs11: a real SoftHSM2 token; vault: an in-memory stand-in only."""


@dataclass(frozen=True)
class KeysConfig:
    """The ``[keys]`` table, validated."""

    provider: str = "local"
    options: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, table: Mapping[str, Any] | None) -> KeysConfig:
        """Validate a ``[keys]`` table (None: the default local keyring)."""
        doc = dict(table or {})
        provider = str(doc.pop("provider", "local"))
        if provider not in PROVIDERS:
            raise InvalidInputError(
                f"zone.toml [keys] provider {provider!r} is unknown; use one of "
                f"{', '.join(sorted(PROVIDERS))}"
            )
        unknown = sorted(set(doc) - PROVIDERS[provider])
        if unknown:
            allowed = ", ".join(sorted(PROVIDERS[provider])) or "none"
            raise InvalidInputError(
                f"zone.toml [keys] option(s) {', '.join(unknown)} do not apply to provider "
                f"{provider!r} (its options: {allowed})"
            )
        for name, value in doc.items():
            if not isinstance(value, str) or not value:
                raise InvalidInputError(f"zone.toml [keys] {name} must be a non-empty string")
        if provider == "pkcs11":
            from collabzone.keys_pkcs11 import default_module

            module = doc.get("module") or default_module()
            if module is None:
                raise InvalidInputError(
                    "no PKCS#11 module found: install softhsm2 (or your HSM's library) and "
                    "set `module` in zone.toml [keys]"
                )
            doc = {"module": module, "token": "collabzone", "key": "collabzone-master", **doc}
        return cls(provider, doc)

    def toml(self) -> str:
        """The ``[keys]`` table as TOML lines (values are plain strings)."""
        lines = ["[keys]", f'provider = "{self.provider}"']
        for name in sorted(self.options):
            value = self.options[name].replace("\\", "\\\\").replace('"', '\\"')
            lines.append(f'{name} = "{value}"')
        return "\n".join(lines)


def _hsm(config: KeysConfig) -> Any:
    from collabzone.keys_pkcs11 import HsmWrapper, pin_from_env

    return HsmWrapper(
        config.options["module"], config.options["token"], config.options["key"], pin_from_env()
    )


def _vault(config: KeysConfig) -> KeyProvider:
    from collabzone.keys_vault import VaultTransitKeys

    url = config.options.get("url") or os.environ.get("VAULT_ADDR")
    token = os.environ.get("VAULT_TOKEN")
    if not url or not token:
        raise InvalidInputError(
            "the vault key provider needs `url` in zone.toml [keys] (or VAULT_ADDR) and "
            "VAULT_TOKEN in the environment"
        )
    try:
        hvac = importlib.import_module("hvac")
    except ImportError:
        raise InvalidInputError(
            "the vault key provider needs hvac: pip install 'collabzone[vault]'"
        ) from None
    return VaultTransitKeys(
        hvac.Client(url=url, token=token), config.options.get("mount", "transit")
    )


def create_keys(root: Path, config: KeysConfig, master_key: str | None = None) -> KeyProvider:
    """The KeyProvider of a new zone in ``root`` (a new keyring file where one is kept)."""
    path = root / KEYRING_FILE
    if config.provider == "pkcs11":
        from collabzone.keys_pkcs11 import Pkcs11Keyring

        return Pkcs11Keyring.create_with_hsm(path, _hsm(config))
    if config.provider == "vault":
        return _vault(config)
    return LocalKeyring.create_new(path, master_key or master_key_from_env())


def open_keys(root: Path, config: KeysConfig, master_key: str | None = None) -> KeyProvider:
    """The KeyProvider of the existing zone in ``root``."""
    path = root / KEYRING_FILE
    if config.provider == "pkcs11":
        from collabzone.keys_pkcs11 import Pkcs11Keyring

        if not path.exists():
            raise InvalidInputError(f"no keyring at {path}: this zone was not created with pkcs11")
        return Pkcs11Keyring(path, _hsm(config))
    if config.provider == "vault":
        return _vault(config)
    return LocalKeyring(path, master_key or master_key_from_env())
