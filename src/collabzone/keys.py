"""Key management: a provider interface, a local encrypted keyring, HKDF derivation.

Keys are named (``data-at-rest``, ``audit-head``, ``link:<collaboration>``...) and
versioned; the current version is used for new work, older versions stay readable until
destroyed. The local keyring is one JSON file encrypted with AES-256-GCM under a master
key that never touches the disk:

* ``COLLABZONE_MASTER_KEY``: a passphrase or a 32-byte key in URL-safe base64, or
* ``COLLABZONE_MASTER_KEY_FILE``: a file holding it (e.g. a mounted secret).

A real KMS (HashiCorp Vault transit) implements the same :class:`KeyProvider`.
Key material never appears in ``repr``, logs, errors or audit events.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import secrets
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from collabzone.errors import AuthenticationError, InvalidInputError, NotFoundError

MASTER_KEY_ENV = "COLLABZONE_MASTER_KEY"
MASTER_KEY_FILE_ENV = "COLLABZONE_MASTER_KEY_FILE"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text.encode("ascii"))


def new_master_key() -> str:
    """A fresh random master key, printable (URL-safe base64 of 32 bytes)."""
    return _b64(secrets.token_bytes(32))


def master_key_from_env() -> str:
    """The master key from the environment, or a clear error saying how to set it."""
    value = os.environ.get(MASTER_KEY_ENV)
    if value:
        return value
    path = os.environ.get(MASTER_KEY_FILE_ENV)
    if path:
        try:
            return Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise InvalidInputError(
                f"cannot read {MASTER_KEY_FILE_ENV} ({path}): {exc.strerror}"
            ) from None
    raise AuthenticationError(
        f"no master key: set {MASTER_KEY_ENV} (or {MASTER_KEY_FILE_ENV}) to the key "
        "printed by `collabzone init`"
    )


def derive(key: bytes, purpose: str, length: int = 32, context: str = "") -> bytes:
    """HKDF-SHA256 of ``key`` for one purpose, so no two uses share key material."""
    return HKDF(
        algorithm=hashes.SHA256(),
        length=length,
        salt=None,
        info=f"collabzone/v1/{context}/{purpose}".encode(),
    ).derive(key)


class KeyProvider(ABC):
    """Where the zone's named, versioned keys come from."""

    @abstractmethod
    def create(self, name: str) -> int:
        """Create key ``name`` (version 1) if absent; return its current version."""

    @abstractmethod
    def get(self, name: str, version: int | None = None) -> tuple[int, bytes]:
        """The key's (version, material); the current version when ``version`` is None."""

    @abstractmethod
    def rotate(self, name: str) -> int:
        """Add a new current version; old versions stay readable until destroyed."""

    @abstractmethod
    def destroy(self, name: str, version: int) -> None:
        """Erase one version for good (crypto-shredding what it protected)."""

    @abstractmethod
    def versions(self, name: str) -> list[int]:
        """The versions of ``name`` still held."""

    def names(self) -> list[str]:
        """The names of the keys held (providers that cannot list say none)."""
        return []

    def current(self, name: str) -> int:
        """The current version of ``name`` (providers may answer without reading material)."""
        return self.get(name)[0]

    def derive(
        self, name: str, purpose: str, length: int = 32, version: int | None = None
    ) -> bytes:
        """Key material for ``purpose`` derived from key ``name`` (HKDF)."""
        _, material = self.get(name, version)
        return derive(material, purpose, length, context=name)

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"


class LocalKeyring(KeyProvider):
    """Keys in one file, encrypted under the master key (AES-256-GCM, scrypt for passphrases).

    Several processes may hold the same keyring (the server, a CLI rotating a key): every
    read reloads the file when it changed on disk, and every change is made under an
    exclusive lock on ``<keyring>.lock`` on the freshest copy, so no process keeps using a
    version another one destroyed and no two rotations overwrite each other.
    """

    FORMAT_AAD = b"collabzone-keyring-v1"

    def __init__(self, path: Path, master_key: str) -> None:
        self._path = Path(path)
        self._master = master_key
        self._keys: dict[str, dict[str, Any]] = {}
        self._salt = b""
        self._stamp: tuple[int, int, int] | None = None
        if self._path.exists():
            self._load()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._path}>"

    @classmethod
    def create_new(cls, path: Path, master_key: str) -> LocalKeyring:
        if path.exists():
            raise InvalidInputError(f"a keyring already exists at {path}")
        ring = cls(path, master_key)
        ring._salt = secrets.token_bytes(16)
        ring._save()
        return ring

    def _wrapping_key(self) -> bytes:
        try:
            raw = _unb64(self._master)
            if len(raw) == 32:
                return raw
        except (ValueError, UnicodeEncodeError):
            pass
        return Scrypt(salt=self._salt, length=32, n=2**14, r=8, p=1).derive(
            self._master.encode("utf-8")
        )

    def _header(self) -> dict[str, Any]:
        """Extra fields of the keyring file (subclasses keep a wrapped master key here)."""
        return {}

    def _read_header(self, doc: dict[str, Any]) -> None:
        """Take the extra fields back from a loaded keyring file."""

    def _file_stamp(self) -> tuple[int, int, int] | None:
        try:
            st = self._path.stat()
        except FileNotFoundError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def _load(self) -> None:
        stamp = self._file_stamp()
        try:
            doc = json.loads(self._path.read_text(encoding="utf-8"))
            self._salt = _unb64(doc["salt"])
            nonce, blob = _unb64(doc["nonce"]), _unb64(doc["ciphertext"])
        except (OSError, ValueError, KeyError) as exc:
            raise InvalidInputError(
                f"keyring {self._path} is unreadable: {type(exc).__name__}"
            ) from None
        self._read_header(doc)
        try:
            plain = AESGCM(self._wrapping_key()).decrypt(nonce, blob, self.FORMAT_AAD)
        except InvalidTag:
            raise AuthenticationError(
                f"wrong master key for the keyring at {self._path} (check {MASTER_KEY_ENV})"
            ) from None
        self._keys = json.loads(plain)
        self._stamp = stamp

    def _refresh(self) -> None:
        """Reload if another process replaced the file since we read it."""
        if self._stamp is not None and self._file_stamp() != self._stamp:
            self._load()

    @contextlib.contextmanager
    def _changing(self) -> Iterator[None]:
        """Hold the keyring's lock for one read-modify-write, on the freshest copy."""
        self._path.parent.mkdir(parents=True, exist_ok=True)
        lock = self._path.with_name(self._path.name + ".lock")
        with lock.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                self._refresh()
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _save(self) -> None:
        nonce = secrets.token_bytes(12)
        blob = AESGCM(self._wrapping_key()).encrypt(
            nonce, json.dumps(self._keys).encode(), self.FORMAT_AAD
        )
        doc = {
            "format": 1,
            **self._header(),
            "salt": _b64(self._salt),
            "nonce": _b64(nonce),
            "ciphertext": _b64(blob),
        }
        self._path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self._path.parent, prefix=".keyring-")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(doc, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self._path)
        self._stamp = self._file_stamp()

    def create(self, name: str) -> int:
        self._refresh()
        if name not in self._keys:
            with self._changing():
                if name not in self._keys:
                    self._keys[name] = {
                        "current": 1,
                        "versions": {"1": _b64(secrets.token_bytes(32))},
                    }
                    self._save()
        return int(self._keys[name]["current"])

    def get(self, name: str, version: int | None = None) -> tuple[int, bytes]:
        self._refresh()
        entry = self._keys.get(name)
        if entry is None:
            raise NotFoundError(f"no key named {name!r} in the keyring")
        version = int(entry["current"]) if version is None else version
        material = entry["versions"].get(str(version))
        if material is None:
            raise NotFoundError(f"key {name!r} has no version {version} (destroyed or never made)")
        return version, _unb64(material)

    def rotate(self, name: str) -> int:
        self.create(name)
        with self._changing():
            entry = self._keys[name]
            new = max(int(v) for v in entry["versions"]) + 1 if entry["versions"] else 1
            entry["versions"][str(new)] = _b64(secrets.token_bytes(32))
            entry["current"] = new
            self._save()
        return new

    def destroy(self, name: str, version: int) -> None:
        with self._changing():
            entry = self._keys.get(name)
            if entry is None or str(version) not in entry["versions"]:
                raise NotFoundError(f"key {name!r} has no version {version}")
            if int(entry["current"]) == version:
                raise InvalidInputError(
                    f"version {version} of {name!r} is current: rotate before destroying it"
                )
            del entry["versions"][str(version)]
            self._save()

    def versions(self, name: str) -> list[int]:
        self._refresh()
        entry = self._keys.get(name)
        return sorted(int(v) for v in entry["versions"]) if entry else []

    def names(self) -> list[str]:
        self._refresh()
        return sorted(self._keys)

    def current(self, name: str) -> int:
        self._refresh()
        entry = self._keys.get(name)
        if entry is None:
            raise NotFoundError(f"no key named {name!r} in the keyring")
        return int(entry["current"])

    def change_master(self, new_master_key: str) -> None:
        """Re-encrypt the keyring under a new master key (the key versions stay as they are).

        Every process holding the keyring needs the new master key from then on.
        """
        with self._changing():
            self._master = new_master_key
            self._salt = secrets.token_bytes(16)
            self._save()
