"""Master keys (a keyring of Fernet keys) and the per-file keys they wrap.

Key hierarchy::

    master key (Fernet, in the keyring, never beside the data)
      └─ wraps → DEK (32 random bytes per file or upload; stored only wrapped, in its row,
                   │  with a prefix naming its domain: see ``WrapDomain``)
                   ├─ HKDF → blob keys (sealbox stream v1, fresh salt per write)
                   └─ HKDF → K_meta (encrypts the file name and content type)

Keyring file format (JSON, mode 0600)::

    {"format": "sealbox-keyring", "version": 1,
     "keys": [{"id": "k1", "key": "<Fernet key>", "created_at": "2026-11-27T10:00:00Z"}]}

The first key is the primary: it wraps new DEKs. ``SEALBOX_MASTER_KEYS`` holds the same
keys as ``id:key`` pairs separated by commas, primary first.
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
import os
import re
import stat
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from sealbox.crypto.errors import IntegrityError, KeyringError, UnknownKeyId


class WrapDomain(enum.Enum):
    """What a wrapped data key belongs to: its prefix inside the Fernet token.

    A file's key and a resumable upload's key are wrapped with different prefixes, so a
    token made for one can never be taken for the other, even under one master key and
    one id. ``LEGACY`` is the single prefix of format 1 (before the split): it is only
    read, to open rows written before, until ``sealbox serve`` re-wraps them at start.
    """

    FILE = b"SBOX-DEK2/file"
    UPLOAD = b"SBOX-DEK2/upload"
    LEGACY = b"SBOX-DEK1"


# The ``wrap_format`` of a row: 1 = ``WrapDomain.LEGACY``, 2 = its own domain's prefix.
WRAP_FORMAT = 2


def wrap_domain(domain: WrapDomain, wrap_format: int) -> WrapDomain:
    """The prefix a row of ``domain`` written in ``wrap_format`` was wrapped with."""
    if wrap_format == WRAP_FORMAT:
        return domain
    if wrap_format == 1:
        return WrapDomain.LEGACY
    raise IntegrityError(f"unknown wrapped key format {wrap_format}")


KEY_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_FORMAT = "sealbox-keyring"


@dataclass(frozen=True)
class MasterKey:
    id: str
    key: str
    created_at: str

    def fernet(self) -> Fernet:
        return Fernet(self.key)


def new_master_key(key_id: str | None = None) -> MasterKey:
    """Create a new random master key with a unique id."""
    now = datetime.now(UTC)
    if key_id is None:
        key_id = f"k{now:%Y%m%d}-{os.urandom(4).hex()}"
    return MasterKey(key_id, Fernet.generate_key().decode(), now.strftime("%Y-%m-%dT%H:%M:%SZ"))


class Keyring:
    """An ordered set of master keys; the first one is the primary."""

    def __init__(self, keys: list[MasterKey]) -> None:
        if not keys:
            raise KeyringError("the keyring holds no keys")
        ids = [k.id for k in keys]
        if len(set(ids)) != len(ids):
            raise KeyringError("the keyring holds two keys with the same id")
        for k in keys:
            if not KEY_ID_PATTERN.match(k.id):
                raise KeyringError(f"key id {k.id!r} is not valid (letters, digits, '_.-')")
            try:
                k.fernet()
            except (ValueError, binascii.Error):
                raise KeyringError(f"key {k.id!r} is not a valid Fernet key") from None
        self.keys = list(keys)
        self._fernets = {k.id: k.fernet() for k in keys}

    @property
    def primary(self) -> MasterKey:
        return self.keys[0]

    @property
    def ids(self) -> frozenset[str]:
        return frozenset(self._fernets)

    def wrap(self, file_id: bytes, dek: bytes, domain: WrapDomain) -> tuple[str, bytes]:
        """Wrap ``dek`` for ``file_id`` (a file's or an upload's id, as ``domain`` says)
        under the primary key; return (key id, token)."""
        return self.primary.id, self._seal(self.primary.id, file_id, dek, domain)

    def _seal(self, key_id: str, file_id: bytes, dek: bytes, domain: WrapDomain) -> bytes:
        if len(dek) != 32 or len(file_id) != 16:
            raise ValueError("a DEK is 32 bytes and a file id 16")
        if domain is WrapDomain.LEGACY:
            raise ValueError("the legacy wrap format is read, never written")
        return MultiFernet([self._fernets[key_id]]).encrypt(domain.value + file_id + dek)

    def unwrap(self, key_id: str, file_id: bytes, wrapped: bytes, domain: WrapDomain) -> bytes:
        """Return the DEK that ``wrapped`` holds for ``file_id`` in ``domain``.

        Raises ``UnknownKeyId`` if the key is not in the keyring and ``IntegrityError`` if
        the token does not open, was made for another file, or for another domain.
        """
        fernet = self._fernets.get(key_id)
        if fernet is None:
            raise UnknownKeyId(key_id)
        try:
            plain = fernet.decrypt(wrapped)
        except InvalidToken:
            raise IntegrityError("wrapped file key failed authentication") from None
        prefix = domain.value
        if len(plain) != len(prefix) + 48 or not plain.startswith(prefix):
            raise IntegrityError("wrapped file key has the wrong format")
        if plain[len(prefix) : len(prefix) + 16] != file_id:
            raise IntegrityError("wrapped file key belongs to another file")
        return plain[len(prefix) + 16 :]

    def upgrade(self, key_id: str, file_id: bytes, wrapped: bytes, domain: WrapDomain) -> bytes:
        """Re-wrap a format-1 token (``WrapDomain.LEGACY``) for ``domain``, under the same
        master key ``key_id``; raises like ``unwrap``."""
        dek = self.unwrap(key_id, file_id, wrapped, WrapDomain.LEGACY)
        return self._seal(key_id, file_id, dek, domain)

    def with_primary(self, key: MasterKey) -> Keyring:
        """A keyring with ``key`` as the new primary and every current key kept."""
        return Keyring([key, *self.keys])

    def without(self, key_id: str) -> Keyring:
        return Keyring([k for k in self.keys if k.id != key_id])

    def merged(self, other: Keyring) -> Keyring:
        """This keyring plus the keys of ``other`` it lacks (this primary stays primary).

        Raises ``KeyringError`` if both hold different keys under one id.
        """
        mine = {k.id: k for k in self.keys}
        for key in other.keys:
            if key.id in mine and mine[key.id].key != key.key:
                raise KeyringError(f"key {key.id!r} in the backup differs from the key with that id here")
        return Keyring([*self.keys, *(k for k in other.keys if k.id not in mine)])

    def to_json(self) -> str:
        keys = [{"id": k.id, "key": k.key, "created_at": k.created_at} for k in self.keys]
        return json.dumps({"format": _FORMAT, "version": 1, "keys": keys}, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str, source: str) -> Keyring:
        try:
            doc = json.loads(text)
            if doc.get("format") != _FORMAT or doc.get("version") != 1:
                raise KeyringError(f"{source} is not a sealbox keyring (version 1)")
            keys = [MasterKey(str(k["id"]), str(k["key"]), str(k.get("created_at", ""))) for k in doc["keys"]]
        except (ValueError, KeyError, TypeError, AttributeError):
            raise KeyringError(f"{source} is malformed: expected a sealbox keyring in JSON") from None
        return cls(keys)

    @classmethod
    def from_env(cls, value: str) -> Keyring:
        """Parse ``id:key,id:key`` (primary first), as in ``SEALBOX_MASTER_KEYS``."""
        keys = []
        for item in value.split(","):
            key_id, sep, key = item.strip().partition(":")
            if not sep:
                raise KeyringError("SEALBOX_MASTER_KEYS must be 'id:key' pairs separated by commas")
            keys.append(MasterKey(key_id, key, ""))
        return cls(keys)


class KeyProvider(Protocol):
    """What sealbox needs from its master keys. ``Keyring`` implements it, and so can an
    external key service (a KMS such as Vault transit) later.

    Contract:
    - ``wrap`` seals a 32-byte DEK for one file under the current primary key and returns
      the id of that key with the token; it must bind the file id, so that a token
      opens only for the file it was made for.
    - ``unwrap`` returns exactly the DEK given to ``wrap``, or raises ``UnknownKeyId``
      (the key is not available) or ``IntegrityError`` (the token is not authentic or
      belongs to another file). It never returns a wrong key.
    - ``ids`` lists every key id that ``unwrap`` can open; the server refuses to start
      if a stored file names an id outside it.
    - Both bind the ``WrapDomain`` too: a token made for an upload never opens as a
      file's, nor the other way round. ``upgrade`` turns a format-1 token into one of
      ``domain`` under the same master key.
    """

    @property
    def ids(self) -> frozenset[str]: ...

    def wrap(self, file_id: bytes, dek: bytes, domain: WrapDomain) -> tuple[str, bytes]: ...

    def unwrap(self, key_id: str, file_id: bytes, wrapped: bytes, domain: WrapDomain) -> bytes: ...

    def upgrade(self, key_id: str, file_id: bytes, wrapped: bytes, domain: WrapDomain) -> bytes: ...


class KeyringFile:
    """A ``KeyProvider`` over a keyring file that follows changes to the file.

    Every use costs one ``stat``: when the file was replaced (as ``keys rotate``,
    ``retire`` and ``import`` do, atomically), it is read again, so every server process
    picks up a new primary key without a restart. A file that has become unreadable or
    malformed is ignored and the keys already loaded stay in use. An unknown key id
    forces a fresh read before it is reported.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp = self._stat()
        self._keyring = load_keyring_file(path)

    def _stat(self) -> tuple[int, int, int]:
        try:
            info = self.path.stat()
        except OSError:
            return (0, 0, 0)
        return (info.st_ino, info.st_mtime_ns, info.st_size)

    def current(self, force: bool = False) -> Keyring:
        stamp = self._stat()
        if force or stamp != self._stamp:
            try:
                self._keyring = load_keyring_file(self.path)
                self._stamp = stamp
            except KeyringError:
                pass  # keep serving with the keys already loaded
        return self._keyring

    @property
    def ids(self) -> frozenset[str]:
        return self.current().ids

    def wrap(self, file_id: bytes, dek: bytes, domain: WrapDomain) -> tuple[str, bytes]:
        return self.current().wrap(file_id, dek, domain)

    def unwrap(self, key_id: str, file_id: bytes, wrapped: bytes, domain: WrapDomain) -> bytes:
        try:
            return self.current().unwrap(key_id, file_id, wrapped, domain)
        except UnknownKeyId:
            return self.current(force=True).unwrap(key_id, file_id, wrapped, domain)

    def upgrade(self, key_id: str, file_id: bytes, wrapped: bytes, domain: WrapDomain) -> bytes:
        try:
            return self.current().upgrade(key_id, file_id, wrapped, domain)
        except UnknownKeyId:
            return self.current(force=True).upgrade(key_id, file_id, wrapped, domain)


def load_keyring_file(path: Path) -> Keyring:
    """Read a keyring file, refusing one that others can read or that is malformed."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise KeyringError(f"keyring {path} does not exist") from None
    if not stat.S_ISREG(info.st_mode):
        raise KeyringError(f"keyring {path} is not a regular file")
    if info.st_mode & 0o077:
        raise KeyringError(
            f"keyring {path} is readable by other users (mode {stat.S_IMODE(info.st_mode):04o}); run 'chmod 600 {path}'"
        )
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyringError(f"keyring {path} cannot be read: {exc}") from None
    return Keyring.from_json(text, str(path))


def write_keyring_file(path: Path, keyring: Keyring) -> None:
    """Create ``path`` (which must not exist) holding ``keyring``, mode 0600, synced."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    _write_new(path, keyring.to_json().encode())
    _fsync_dir(path.parent)


def replace_keyring_file(path: Path, keyring: Keyring) -> None:
    """Atomically replace the keyring at ``path`` (a reader sees the old or the new one)."""
    tmp = path.with_name(f".{path.name}.{os.urandom(6).hex()}")
    try:
        _write_new(tmp, keyring.to_json().encode())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _write_new(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    dir_fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


# Keyring backups: the keyring JSON sealed with AES-256-GCM under a key derived from a
# passphrase with scrypt (N = 2**17, r = 8, p = 1: about 128 MiB and a fraction of a second).
_BACKUP = "sealbox-keyring-backup"
_BACKUP_AAD = b"sealbox-keyring-backup-v1"


def _backup_key(passphrase: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(passphrase.encode())


def seal_backup(keyring: Keyring, passphrase: str) -> bytes:
    """A passphrase-protected copy of ``keyring`` (JSON; see docs/keys.md)."""
    if len(passphrase) < 12:
        raise KeyringError("a backup passphrase must be at least 12 characters")
    salt, nonce = os.urandom(16), os.urandom(12)
    n, r, p = 2**17, 8, 1
    sealed = AESGCM(_backup_key(passphrase, salt, n, r, p)).encrypt(nonce, keyring.to_json().encode(), _BACKUP_AAD)
    doc = {
        "format": _BACKUP,
        "version": 1,
        "kdf": {"name": "scrypt", "n": n, "r": r, "p": p, "salt": base64.b64encode(salt).decode()},
        "cipher": "AES-256-GCM",
        "nonce": base64.b64encode(nonce).decode(),
        "ciphertext": base64.b64encode(sealed).decode(),
    }
    return (json.dumps(doc, indent=2) + "\n").encode()


def open_backup(data: bytes, passphrase: str) -> Keyring:
    """The keyring in a backup; raises ``KeyringError`` for a wrong passphrase or damage."""
    try:
        doc = json.loads(data)
        if doc.get("format") != _BACKUP or doc.get("version") != 1 or doc["kdf"]["name"] != "scrypt":
            raise KeyringError("not a sealbox keyring backup (version 1)")
        kdf = doc["kdf"]
        if not (kdf["n"] <= 2**20 and kdf["r"] <= 16 and kdf["p"] <= 4):
            raise KeyringError("the backup asks for unreasonable scrypt parameters")
        key = _backup_key(passphrase, base64.b64decode(kdf["salt"]), kdf["n"], kdf["r"], kdf["p"])
        plain = AESGCM(key).decrypt(base64.b64decode(doc["nonce"]), base64.b64decode(doc["ciphertext"]), _BACKUP_AAD)
    except InvalidTag:
        raise KeyringError("wrong passphrase, or the backup is damaged") from None
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise KeyringError("the backup is malformed") from None
    return Keyring.from_json(plain.decode(), "the backup")


class FieldCipher:
    """Encrypts small metadata fields of one file with K_meta (AES-256-GCM).

    Each value is bound to the file id and the column name, so a ciphertext moved to
    another row or column fails to decrypt.
    """

    def __init__(self, dek: bytes, file_id: bytes) -> None:
        k_meta = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"sealbox/v1/meta").derive(dek)
        self._aead = AESGCM(k_meta)
        self._file_id = file_id

    def encrypt(self, column: str, value: str) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, value.encode(), self._file_id + column.encode())

    def decrypt(self, column: str, sealed: bytes) -> str:
        try:
            plain = self._aead.decrypt(sealed[:12], sealed[12:], self._file_id + column.encode())
        except (InvalidTag, ValueError):
            raise IntegrityError(f"encrypted {column} failed authentication") from None
        return plain.decode()


def new_dek() -> bytes:
    return os.urandom(32)
