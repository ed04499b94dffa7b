"""No master key, DEK, derived key or passphrase in any repr, error or log line.

Every crypto object is rendered (repr and str) and every error the key paths raise is
provoked and rendered (str, repr, args, the formatted traceback and every chained
exception); none may contain a secret in any common encoding.
"""

from __future__ import annotations

import base64
import json
import os
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import structlog
from argon2 import PasswordHasher
from cryptography.fernet import Fernet

from sealbox.config import Settings
from sealbox.crypto.backup import open_backup, seal_backup
from sealbox.crypto.errors import CryptoError
from sealbox.crypto.keys import (
    FieldCipher,
    Keyring,
    KeyringFile,
    MasterKey,
    WrapDomain,
    load_keyring_file,
    new_dek,
    new_master_key,
    replace_keyring_file,
    write_keyring_file,
)
from sealbox.crypto.passwords import hash_password, verify_password
from sealbox.crypto.stream import Opener, Sealer, new_header, parse_header
from sealbox.errors import SealboxError
from sealbox.keys.service import export_keyring, import_keyring
from sealbox.runtime import load_keyring

FILE_ID = os.urandom(16)
PASSPHRASE = "correct horse battery staple"
MASTER = new_master_key("m1")
OTHER = new_master_key("m0")
DEK = new_dek()


def forms(secret: bytes) -> list[str]:
    """How a secret could show up in text."""
    b64 = base64.b64encode(secret).decode()
    url = base64.urlsafe_b64encode(secret).decode()
    return [secret.hex(), b64, url, url.rstrip("="), repr(secret)[2:-1], secret.decode("latin-1")]


def secrets() -> list[str]:
    found = [PASSPHRASE]
    for key in (MASTER, OTHER):
        raw = base64.urlsafe_b64decode(key.key)
        found += [key.key, *forms(raw), *forms(raw[:16]), *forms(raw[16:])]
    found += forms(DEK)
    return found


SECRETS = secrets()


def assert_clean(text: str, what: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"a secret shows in {what}: {text[:200]!r}"


def render_error(exc: BaseException) -> Iterator[str]:
    yield "".join(traceback.format_exception(exc))
    seen: BaseException | None = exc
    while seen is not None:  # the whole chain, even parts the traceback hides
        yield str(seen)
        yield repr(seen)
        yield repr(seen.args)
        seen = seen.__cause__ or seen.__context__


def keyring_text(*keys: MasterKey) -> str:
    return Keyring(list(keys)).to_json()


def write_private(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    path.chmod(0o600)
    return path


def key_path_failures(tmp: Path) -> Iterator[tuple[str, Callable[[], object]]]:
    """Each failure a key path can raise, with secrets at hand in its inputs."""
    ring = Keyring([MASTER, OTHER])
    _, wrapped = ring.wrap(FILE_ID, DEK, WrapDomain.FILE)
    backup = seal_backup(ring, PASSPHRASE)
    doc = json.loads(backup)
    yield "unknown key id", lambda: ring.unwrap("nope", FILE_ID, wrapped, WrapDomain.FILE)
    yield "wrong file", lambda: ring.unwrap("m1", os.urandom(16), wrapped, WrapDomain.FILE)
    yield "tampered token", lambda: ring.unwrap("m1", FILE_ID, wrapped[:-2] + b"AA", WrapDomain.FILE)
    yield "wrong domain", lambda: ring.unwrap("m1", FILE_ID, wrapped, WrapDomain.UPLOAD)
    yield "key pasted as id", lambda: Keyring([MasterKey(MASTER.key, MASTER.key)])
    yield "id and key swapped in env", lambda: Keyring.from_env(f"{MASTER.key}:m1")
    yield "env without id", lambda: Keyring.from_env(MASTER.key)
    yield "bad key", lambda: Keyring([MasterKey("m1", MASTER.key[:-4])])
    yield "duplicate", lambda: Keyring([MASTER, MasterKey("m1", OTHER.key)])
    yield "different key same id", lambda: ring.merged(Keyring([MasterKey("m1", OTHER.key)]))
    yield "bad json", lambda: Keyring.from_json(keyring_text(MASTER)[:-9], "k")
    yield (
        "key as id in json",
        lambda: Keyring.from_json(keyring_text(MASTER).replace('"m1"', json.dumps(OTHER.key)), "k"),
    )
    yield "truncated file", lambda: load_keyring_file(write_private(tmp / "t.json", keyring_text(MASTER)[:60]))
    yield "not utf-8", lambda: load_keyring_file(write_private(tmp / "u.json", b"\xff" + keyring_text(MASTER).encode()))
    exposed = write_private(tmp / "e.json", keyring_text(MASTER))
    exposed.chmod(0o644)
    yield "exposed file", lambda: load_keyring_file(exposed)
    link = tmp / "link.json"
    link.symlink_to(write_private(tmp / "target.json", keyring_text(MASTER)))
    yield "symlink", lambda: load_keyring_file(link)
    yield "short passphrase", lambda: seal_backup(ring, MASTER.key[:8])
    yield "wrong passphrase", lambda: open_backup(backup, "wrong " + PASSPHRASE)
    yield "truncated backup", lambda: open_backup(backup[:-30], PASSPHRASE)
    yield "bad salt", lambda: open_backup(json.dumps({**doc, "kdf": {**doc["kdf"], "salt": MASTER.key}}).encode(), "x")
    yield "bad nonce", lambda: open_backup(json.dumps({**doc, "nonce": MASTER.key}).encode(), PASSPHRASE)
    sealer = Sealer(DEK, FILE_ID)
    yield "wrong dek for header", lambda: parse_header(sealer.header.raw, new_dek(), FILE_ID)
    yield "tampered field", lambda: FieldCipher(DEK, FILE_ID).decrypt("name", os.urandom(40))
    yield "import malformed", lambda: import_keyring(tmp / "i.json", backup[:-30], PASSPHRASE)
    yield "import wrong passphrase", lambda: import_keyring(tmp / "i.json", backup, "wrong " + PASSPHRASE)
    yield (
        "export short passphrase",
        lambda: export_keyring(write_private(tmp / "x.json", keyring_text(MASTER)), "short"),
    )
    settings = Settings(data_dir=tmp / "data", keyring=exposed)
    yield "start with an exposed keyring", lambda: load_keyring(settings)


def test_every_error_of_the_key_paths_is_free_of_secrets(tmp_path: Path) -> None:
    names = []
    for name, action in key_path_failures(tmp_path):
        with pytest.raises((CryptoError, SealboxError)) as caught:
            action()
        for text in render_error(caught.value):
            assert_clean(text, name)
        names.append(name)
    assert len(names) == 27


def test_every_crypto_object_renders_without_secrets(tmp_path: Path) -> None:
    path = tmp_path / "keyring.json"
    write_keyring_file(path, Keyring([MASTER, OTHER]))
    header, k_pay = new_header(DEK, FILE_ID)
    sealer = Sealer(DEK, FILE_ID)
    objects: list[object] = [
        MASTER,
        Keyring([MASTER, OTHER]),
        KeyringFile(path),
        FieldCipher(DEK, FILE_ID),
        sealer,
        sealer.header,
        Opener(header, k_pay, 88 + 16),
        Fernet(MASTER.key),
    ]
    for obj in objects:
        assert_clean(repr(obj), f"repr of {type(obj).__name__}")
        assert_clean(str(obj), f"str of {type(obj).__name__}")
    assert repr(MASTER) == f"MasterKey(id='m1', created_at='{MASTER.created_at}')"
    assert repr(Keyring([MASTER, OTHER])) == "Keyring(ids=['m1', 'm0'])"


def test_a_refused_reload_is_logged_once_without_secrets(tmp_path: Path) -> None:
    path = tmp_path / "config" / "keyring.json"
    write_keyring_file(path, Keyring([MASTER]))
    with structlog.testing.capture_logs() as logs:
        provider = load_keyring(Settings(data_dir=tmp_path / "data", keyring=path))
        broken = Keyring([OTHER, MASTER]).to_json()[:-20]  # a torn write: keys, no end
        (tmp_path / "config" / "new").write_text(broken)
        (tmp_path / "config" / "new").chmod(0o600)
        (tmp_path / "config" / "new").replace(path)
        for _ in range(5):  # ``primary_id`` looks at the file each time, a wrap once a second
            assert provider.primary_id == "m1"
            assert provider.wrap(FILE_ID, DEK, WrapDomain.FILE)[0] == "m1"  # the keys loaded before stay in use
        assert provider.problem is not None
        assert "is malformed" in provider.problem
        replace_keyring_file(path, Keyring([OTHER, MASTER]))
        assert provider.primary_id == "m0"
        assert provider.wrap(FILE_ID, DEK, WrapDomain.FILE)[0] == "m0"
        assert provider.problem is None
    assert [entry["event"] for entry in logs] == ["keyring.refused", "keyring.reloaded"]
    assert_clean(json.dumps(logs), "the log")


def test_password_hashes_hold_no_password_and_verify() -> None:
    hashed = hash_password(PASSPHRASE)
    assert PASSPHRASE not in hashed
    assert verify_password(hashed, PASSPHRASE)
    assert not verify_password(hashed, PASSPHRASE + "!")
    assert not verify_password("not a hash", PASSPHRASE)
    assert not verify_password(None, PASSPHRASE)
    assert PasswordHasher().check_needs_rehash(hashed)  # the library default differs from ours
