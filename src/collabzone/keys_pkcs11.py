"""A keyring whose master key is wrapped by a non-extractable key inside a PKCS#11 token (HSM).

The zone's named, versioned keys live in the keyring file as with :class:`LocalKeyring`,
but the key that encrypts that file is not a passphrase from the environment: it is a random
256-bit key generated *inside the token*, stored in the keyring file only in wrapped form
(``CKM_AES_KEY_WRAP_PAD``, RFC 5649) under an AES key that never leaves the token
(``CKA_EXTRACTABLE = false``, ``CKA_SENSITIVE = true``). Opening the zone asks the token to
unwrap it; whoever copies the zone directory without the token (and its user PIN) holds
nothing usable. Tested against SoftHSM2 (Debian ``softhsm2``); any PKCS#11 v2.20+ token
with AES key wrap works the same.

Configuration (``zone.toml``)::

    [keys]
    provider = "pkcs11"
    module = "/usr/lib/softhsm/libsofthsm2.so"   # the vendor's PKCS#11 library
    token = "collabzone"                           # token label
    key = "collabzone-master"                      # label of the wrapping key

The user PIN comes from ``COLLABZONE_PKCS11_PIN`` (or a file named by
``COLLABZONE_PKCS11_PIN_FILE``), never from ``zone.toml``. Needs ``python-pkcs11``
(extra ``pkcs11``); it is imported only when this provider is used.
"""

from __future__ import annotations

import base64
import importlib
import os
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from collabzone.errors import (
    AuthenticationError,
    IntegrityError,
    InternalError,
    InvalidInputError,
    NotFoundError,
)
from collabzone.keys import LocalKeyring

PIN_ENV = "COLLABZONE_PKCS11_PIN"
PIN_FILE_ENV = "COLLABZONE_PKCS11_PIN_FILE"
MODULE_CANDIDATES = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
)
"""Where Debian and source builds put SoftHSM2's module (the default when none is named)."""

_libraries: dict[str, Any] = {}
_libraries_lock = threading.Lock()


def _pkcs11() -> Any:
    try:
        return importlib.import_module("pkcs11")
    except ImportError:
        raise InvalidInputError(
            "the pkcs11 key provider needs python-pkcs11: pip install 'collabzone[pkcs11]'"
        ) from None


def default_module() -> str | None:
    """The first SoftHSM2 module found on this machine, if any."""
    return next((path for path in MODULE_CANDIDATES if Path(path).exists()), None)


def pin_from_env() -> str:
    """The token's user PIN from the environment, or an error saying how to set it."""
    value = os.environ.get(PIN_ENV)
    if value:
        return value
    path = os.environ.get(PIN_FILE_ENV)
    if path:
        try:
            return Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise InvalidInputError(
                f"cannot read {PIN_FILE_ENV} ({path}): {exc.strerror}"
            ) from None
    raise AuthenticationError(f"no PKCS#11 PIN: set {PIN_ENV} (or {PIN_FILE_ENV})")


def _library(module: str) -> Any:
    """One loaded PKCS#11 library per module path (a module may be initialised only once)."""
    with _libraries_lock:
        if module not in _libraries:
            if not Path(module).exists():
                raise InvalidInputError(
                    f"no PKCS#11 module at {module}: install the vendor's library "
                    "(SoftHSM2: apt-get install softhsm2) or fix `module` in zone.toml [keys]"
                )
            try:
                _libraries[module] = _pkcs11().lib(module)
            except Exception as exc:  # the driver's own exception tree
                raise InvalidInputError(
                    f"cannot load the PKCS#11 module {module} ({type(exc).__name__})"
                ) from None
        return _libraries[module]


class HsmWrapper:
    """The token-side half: a non-extractable AES key that wraps and unwraps the master key."""

    def __init__(self, module: str, token: str, key: str, pin: str) -> None:
        self.module = module
        self.token = token
        self.key = key
        self._pin = pin

    def __repr__(self) -> str:
        return f"<HsmWrapper token={self.token!r} key={self.key!r}>"

    @contextmanager
    def _session(self, rw: bool = False) -> Iterator[Any]:
        p11 = _pkcs11()
        lib = _library(self.module)
        try:
            token = lib.get_token(token_label=self.token)
        except (p11.NoSuchToken, p11.MultipleTokensReturned):
            raise NotFoundError(
                f"no single PKCS#11 token labelled {self.token!r} in {self.module}: "
                "initialise one (softhsm2-util --init-token) or fix `token` in zone.toml [keys]"
            ) from None
        try:
            session = token.open(user_pin=self._pin, rw=rw)
        except (p11.PinIncorrect, p11.PinInvalid, p11.PinLenRange):
            raise AuthenticationError(
                f"wrong PIN for PKCS#11 token {self.token!r} (check {PIN_ENV})"
            ) from None
        except p11.PinLocked:
            raise AuthenticationError(
                f"the user PIN of PKCS#11 token {self.token!r} is locked: ask its security officer"
            ) from None
        with session:
            yield session

    def _wrapping_key(self, session: Any) -> Any:
        p11 = _pkcs11()
        try:
            return session.get_key(
                object_class=p11.ObjectClass.SECRET_KEY, key_type=p11.KeyType.AES, label=self.key
            )
        except p11.NoSuchKey:
            raise NotFoundError(
                f"PKCS#11 token {self.token!r} holds no AES key labelled {self.key!r}: "
                "create the zone with it (collabzone init --key-provider pkcs11) or fix `key`"
            ) from None
        except p11.MultipleObjectsReturned:
            raise InvalidInputError(
                f"PKCS#11 token {self.token!r} holds several keys labelled {self.key!r}: "
                "give the zone's wrapping key a unique label"
            ) from None

    def ensure_key(self) -> bool:
        """Generate the wrapping key in the token if absent; True if it was made now.

        The key is a token object, sensitive and non-extractable, usable only to wrap and
        unwrap: its value can never be read out of the token.
        """
        p11 = _pkcs11()
        attr = p11.Attribute
        with self._session(rw=True) as session:
            try:
                self._wrapping_key(session)
                return False
            except NotFoundError:
                pass
            session.generate_key(
                p11.KeyType.AES,
                256,
                label=self.key,
                store=True,
                template={
                    attr.EXTRACTABLE: False,
                    attr.SENSITIVE: True,
                    attr.WRAP: True,
                    attr.UNWRAP: True,
                    attr.ENCRYPT: False,
                    attr.DECRYPT: False,
                    attr.SIGN: False,
                    attr.VERIFY: False,
                },
            )
            return True

    def new_wrapped_master(self) -> tuple[bytes, bytes]:
        """A fresh 256-bit master key generated in the token: (its value, its wrapped form)."""
        p11 = _pkcs11()
        attr = p11.Attribute
        with self._session() as session:
            wrapper = self._wrapping_key(session)
            master = session.generate_key(
                p11.KeyType.AES,
                256,
                store=False,
                template={attr.EXTRACTABLE: True, attr.SENSITIVE: False},
            )
            wrapped = wrapper.wrap_key(master, mechanism=p11.Mechanism.AES_KEY_WRAP_PAD)
            value = bytes(master[attr.VALUE])
            master.destroy()
            return value, bytes(wrapped)

    def unwrap(self, wrapped: bytes) -> bytes:
        """The master key's value, unwrapped inside the token (a session object, then gone)."""
        p11 = _pkcs11()
        attr = p11.Attribute
        with self._session() as session:
            wrapper = self._wrapping_key(session)
            try:
                master = wrapper.unwrap_key(
                    p11.ObjectClass.SECRET_KEY,
                    p11.KeyType.AES,
                    wrapped,
                    mechanism=p11.Mechanism.AES_KEY_WRAP_PAD,
                    store=False,
                    template={attr.EXTRACTABLE: True, attr.SENSITIVE: False},
                )
            except p11.PKCS11Error as exc:
                raise IntegrityError(
                    f"the keyring's master key does not unwrap under PKCS#11 key {self.key!r} "
                    f"({type(exc).__name__}): wrong token or key, or a tampered keyring"
                ) from None
            value = bytes(master[attr.VALUE])
            master.destroy()
            return value


class Pkcs11Keyring(LocalKeyring):
    """A :class:`LocalKeyring` encrypted under a master key that only the HSM can unwrap."""

    def __init__(self, path: Path, hsm: HsmWrapper) -> None:
        self._hsm = hsm
        self._wrapped = b""
        self._master_value = b""
        super().__init__(path, master_key="")

    def __repr__(self) -> str:
        return f"<Pkcs11Keyring {self._path} token={self._hsm.token!r}>"

    @classmethod
    def create_with_hsm(cls, path: Path, hsm: HsmWrapper) -> Pkcs11Keyring:
        """A new keyring at ``path``; makes the HSM wrapping key if the token lacks it."""
        if path.exists():
            raise InvalidInputError(f"a keyring already exists at {path}")
        hsm.ensure_key()
        ring = cls(path, hsm)
        ring._master_value, ring._wrapped = hsm.new_wrapped_master()
        ring._salt = secrets.token_bytes(16)
        ring._save()
        return ring

    def _wrapping_key(self) -> bytes:
        if not self._master_value:
            if not self._wrapped:
                raise InternalError("the PKCS#11 keyring has no wrapped master key yet")
            self._master_value = self._hsm.unwrap(self._wrapped)
        return self._master_value

    def _header(self) -> dict[str, Any]:
        return {
            "master": {
                "provider": "pkcs11",
                "token": self._hsm.token,
                "key": self._hsm.key,
                "mechanism": "CKM_AES_KEY_WRAP_PAD",
                "wrapped": base64.urlsafe_b64encode(self._wrapped).decode("ascii"),
            }
        }

    def _read_header(self, doc: dict[str, Any]) -> None:
        master = doc.get("master")
        if not isinstance(master, dict) or master.get("provider") != "pkcs11":
            raise InvalidInputError(
                f"keyring {self._path} is not wrapped by a PKCS#11 key: set provider = "
                '"local" in zone.toml [keys] (and give COLLABZONE_MASTER_KEY)'
            )
        wrapped = base64.urlsafe_b64decode(str(master["wrapped"]).encode("ascii"))
        if wrapped != self._wrapped:
            self._wrapped, self._master_value = wrapped, b""

    def change_master(self, new_master_key: str = "") -> None:
        """Rotate the master key: a new one from the token, the keyring re-encrypted under it.

        ``new_master_key`` is ignored (the token makes the key); the old wrapped key is gone.
        """
        with self._changing():
            self._master_value, self._wrapped = self._hsm.new_wrapped_master()
            self._salt = secrets.token_bytes(16)
            self._save()
