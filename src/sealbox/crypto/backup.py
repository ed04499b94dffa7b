"""Passphrase-protected keyring backups.

Format (JSON)::

    {"format": "sealbox-keyring-backup", "version": 1,
     "kdf": {"name": "scrypt", "n": 131072, "r": 8, "p": 1, "salt": "<base64, 16 bytes>"},
     "cipher": "AES-256-GCM", "nonce": "<base64, 12 bytes>",
     "ciphertext": "<base64: the keyring JSON, sealed with associated data 'sealbox-keyring-backup-v1'>"}

A backup file comes from outside (a USB stick, a mail attachment), so ``open_backup``
checks every field before using it: types, lengths, and scrypt parameters bounded so
that a hostile file cannot make ``keys import`` allocate gigabytes or run for minutes.
Every problem is one ``KeyringError`` whose message names the field.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from sealbox.crypto.errors import KeyringError
from sealbox.crypto.keys import Keyring

FORMAT = "sealbox-keyring-backup"
_AAD = b"sealbox-keyring-backup-v1"
SALT_LEN = 16
NONCE_LEN = 12
TAG_LEN = 16
MIN_PASSPHRASE = 12
# What export writes: about 128 MiB and a fraction of a second.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**17, 8, 1
# What import accepts. scrypt needs 128 * r * n bytes of memory and p times that much
# work: at most 256 MiB and 4 times the work of the parameters export writes.
MIN_N, MAX_N = 2**14, 2**20
MAX_MEMORY = 256 * 2**20
MAX_WORK = 4 * SCRYPT_N * SCRYPT_R * SCRYPT_P
# A keyring of a thousand keys is ~150 KiB; anything far larger is not a backup.
MAX_BACKUP_BYTES = 1 << 20


def _derive(passphrase: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(passphrase.encode())


def seal_backup(keyring: Keyring, passphrase: str) -> bytes:
    """A passphrase-protected copy of ``keyring`` (JSON; see docs/keys.md)."""
    if len(passphrase) < MIN_PASSPHRASE:
        raise KeyringError(f"a backup passphrase must be at least {MIN_PASSPHRASE} characters")
    salt, nonce = os.urandom(SALT_LEN), os.urandom(NONCE_LEN)
    key = _derive(passphrase, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    sealed = AESGCM(key).encrypt(nonce, keyring.to_json().encode(), _AAD)
    doc = {
        "format": FORMAT,
        "version": 1,
        "kdf": {
            "name": "scrypt",
            "n": SCRYPT_N,
            "r": SCRYPT_R,
            "p": SCRYPT_P,
            "salt": base64.b64encode(salt).decode(),
        },
        "cipher": "AES-256-GCM",
        "nonce": base64.b64encode(nonce).decode(),
        "ciphertext": base64.b64encode(sealed).decode(),
    }
    return (json.dumps(doc, indent=2) + "\n").encode()


def _malformed(detail: str) -> KeyringError:
    return KeyringError(f"the backup is malformed: {detail}")


def _parse(data: bytes) -> Any:
    if len(data) > MAX_BACKUP_BYTES:
        raise KeyringError(f"the backup is larger than {MAX_BACKUP_BYTES // 1024} KiB: not a sealbox keyring backup")
    try:
        return json.loads(data)
    except (ValueError, RecursionError):  # JSONDecodeError, UnicodeDecodeError, huge numbers
        pass
    # Raised outside the handler: the decoder's error holds the whole document.
    raise _malformed("not JSON (is the file truncated?)")


def _field(doc: dict[str, Any], name: str, kind: type, label: str | None = None) -> Any:
    value = doc.get(name)
    # bool is an int in Python; a JSON true is never a valid number here.
    if not isinstance(value, kind) or isinstance(value, bool):
        raise _malformed(f"{label or name} is missing or not a {'number' if kind is int else 'string'}")
    return value


def _bytes(doc: dict[str, Any], name: str, label: str, length: int | None = None) -> bytes:
    text = _field(doc, name, str, label)
    try:
        value = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        value = None
    if value is None:
        raise _malformed(f"{label} is not base64")
    if length is not None and len(value) != length:
        raise _malformed(f"{label} must be {length} bytes, not {len(value)}")
    return value


def _scrypt_parameters(kdf: dict[str, Any]) -> tuple[int, int, int]:
    n, r, p = (_field(kdf, name, int, f"kdf.{name}") for name in ("n", "r", "p"))
    if not (MIN_N <= n <= MAX_N) or n & (n - 1):
        raise _malformed(f"kdf.n must be a power of two from 2^14 to 2^20, not {n}")
    if not (1 <= r <= 32 and 1 <= p <= 16):
        raise _malformed("kdf.r must be 1 to 32 and kdf.p 1 to 16")
    if 128 * r * n > MAX_MEMORY or n * r * p > MAX_WORK:
        raise _malformed(f"the scrypt parameters ask for more than {MAX_MEMORY >> 20} MiB or 4 times the usual work")
    return n, r, p


def open_backup(data: bytes, passphrase: str) -> Keyring:
    """The keyring in a backup.

    Raises ``KeyringError`` with one line that says what is wrong: a malformed field
    (named), parameters out of bounds, or a wrong passphrase or damaged ciphertext.
    """
    doc = _parse(data)
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise KeyringError("not a sealbox keyring backup")
    if doc.get("version") != 1 or isinstance(doc.get("version"), bool):
        raise KeyringError(f"unsupported backup version {doc.get('version')!r:.20} (this sealbox reads version 1)")
    kdf = doc.get("kdf")
    if not isinstance(kdf, dict) or kdf.get("name") != "scrypt":
        raise _malformed('kdf must be {"name": "scrypt", ...}')
    if doc.get("cipher") != "AES-256-GCM":
        raise _malformed('cipher must be "AES-256-GCM"')
    n, r, p = _scrypt_parameters(kdf)
    salt = _bytes(kdf, "salt", "kdf.salt", SALT_LEN)
    nonce = _bytes(doc, "nonce", "nonce", NONCE_LEN)
    sealed = _bytes(doc, "ciphertext", "ciphertext")
    if len(sealed) < TAG_LEN:
        raise _malformed("ciphertext is truncated")
    try:
        plain = AESGCM(_derive(passphrase, salt, n, r, p)).decrypt(nonce, sealed, _AAD)
    except InvalidTag:
        plain = None
    if plain is None:
        raise KeyringError("wrong passphrase, or the backup is damaged")
    try:
        text = plain.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is None:
        raise KeyringError("the backup opened but does not hold a keyring")
    return Keyring.from_json(text, "the backup")
