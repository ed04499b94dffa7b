"""Master keyring and per-file key wrapping (DESIGN §4)."""

from __future__ import annotations

import base64
import functools
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from sealbox.crypto.backup import open_backup, seal_backup
from sealbox.crypto.errors import IntegrityError, KeyringError, UnknownKeyId
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
from sealbox.errors import SetupError
from sealbox.keys.service import load_keyring

FILE_ID = os.urandom(16)
FILE = WrapDomain.FILE


def test_wrap_binds_the_dek_to_its_file_and_records_the_primary_key() -> None:
    ring = Keyring([new_master_key("primary"), new_master_key("old")])
    dek = new_dek()
    key_id, wrapped = ring.wrap(FILE_ID, dek, FILE)
    assert key_id == "primary"
    assert ring.unwrap(key_id, FILE_ID, wrapped, FILE) == dek
    assert Fernet(ring.primary.key).decrypt(wrapped) == b"SBOX-DEK2/file" + FILE_ID + dek
    with pytest.raises(IntegrityError, match="another file"):
        ring.unwrap(key_id, os.urandom(16), wrapped, FILE)


def test_unwrap_with_a_missing_key_id_names_it() -> None:
    ring = Keyring([new_master_key("a")])
    _, wrapped = ring.wrap(FILE_ID, new_dek(), FILE)
    with pytest.raises(UnknownKeyId, match="'b'"):
        ring.unwrap("b", FILE_ID, wrapped, FILE)


def test_unwrap_rejects_a_token_without_the_prefix() -> None:
    master = new_master_key("a")
    ring = Keyring([master])
    forged = Fernet(master.key).encrypt(b"X" * 9 + FILE_ID + new_dek())
    with pytest.raises(IntegrityError, match="format"):
        ring.unwrap("a", FILE_ID, forged, FILE)
    with pytest.raises(IntegrityError):
        ring.unwrap("a", FILE_ID, b"not a token", FILE)


def test_keyring_file_round_trips_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "conf" / "keyring.json"
    ring = Keyring([new_master_key("a"), new_master_key("b")])
    write_keyring_file(path, ring)
    assert path.stat().st_mode & 0o777 == 0o600
    loaded = load_keyring_file(path)
    assert [k.id for k in loaded.keys] == ["a", "b"]
    assert loaded.primary.key == ring.primary.key


def test_writing_a_keyring_never_replaces_an_existing_one(tmp_path: Path) -> None:
    path = tmp_path / "keyring.json"
    write_keyring_file(path, Keyring([new_master_key("a")]))
    before = path.read_bytes()
    with pytest.raises(FileExistsError):
        write_keyring_file(path, Keyring([new_master_key("b")]))
    assert path.read_bytes() == before


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "malformed"),
        ('{"format": "other", "version": 1, "keys": []}', "not a sealbox keyring"),
        ('{"format": "sealbox-keyring", "version": 1, "keys": []}', "no keys"),
        ('{"format": "sealbox-keyring", "version": 1, "keys": [{"id": "a", "key": "short"}]}', "not a valid Fernet"),
        (
            '{"format": "sealbox-keyring", "version": 1, "keys": [{"id": "../x", "key": "'
            + Fernet.generate_key().decode()
            + '"}]}',
            "key number 1 has an invalid id",
        ),
    ],
)
def test_malformed_keyrings_are_refused_with_a_reason(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "keyring.json"
    path.write_text(content)
    path.chmod(0o600)
    with pytest.raises(KeyringError, match=message):
        load_keyring_file(path)


def test_a_keyring_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "keyring.json"
    write_keyring_file(path, Keyring([new_master_key("a")]))
    path.chmod(0o644)
    with pytest.raises(KeyringError, match="chmod 600"):
        load_keyring_file(path)


def test_duplicate_key_ids_are_refused() -> None:
    with pytest.raises(KeyringError, match="same id"):
        Keyring([new_master_key("a"), new_master_key("a")])


def test_env_keyring_format() -> None:
    a, b = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    ring = Keyring.from_env(f"first:{a}, second:{b}")
    assert ring.primary == MasterKey("first", a, "")
    assert ring.ids == {"first", "second"}
    with pytest.raises(KeyringError, match="id:key"):
        Keyring.from_env(a)


def test_metadata_fields_are_bound_to_file_and_column() -> None:
    dek = new_dek()
    fields = FieldCipher(dek, FILE_ID)
    sealed = fields.encrypt("name", "rapport-été.pdf")
    assert b"rapport" not in sealed
    assert fields.decrypt("name", sealed) == "rapport-été.pdf"
    with pytest.raises(IntegrityError):
        fields.decrypt("content_type", sealed)
    with pytest.raises(IntegrityError):
        FieldCipher(dek, os.urandom(16)).decrypt("name", sealed)


def test_keyring_file_follows_a_replaced_file(tmp_path: Path) -> None:
    path = tmp_path / "keyring.json"
    first = Keyring([new_master_key("one")])
    write_keyring_file(path, first)
    provider = KeyringFile(path)
    _, wrapped_one = provider.wrap(FILE_ID, b"\x01" * 32, FILE)
    rotated = first.with_primary(new_master_key("two"))
    replace_keyring_file(path, rotated)
    # ``primary_id``, ``ids`` and wrapping look at the file every time (a new primary
    # wraps the very next file); unwrapping once per CHECK_SECONDS.
    assert provider.primary_id == "two"
    replace_keyring_file(path, first.with_primary(new_master_key("three")))
    key_id, wrapped_three = provider.wrap(FILE_ID, b"\x02" * 32, FILE)
    assert key_id == "three"
    assert provider.unwrap("one", FILE_ID, wrapped_one, FILE) == b"\x01" * 32
    assert provider.ids == {"one", "three"}
    # A damaged replacement is ignored: the keys already loaded keep working.
    path.write_text("garbage")
    provider._looked -= KeyringFile.CHECK_SECONDS
    assert provider.unwrap("three", FILE_ID, wrapped_three, FILE) == b"\x02" * 32
    assert provider.problem is not None
    assert provider.wrap(FILE_ID, b"\x03" * 32, FILE)[0] == "three"


def test_an_unknown_key_id_forces_a_fresh_read(tmp_path: Path) -> None:
    path = tmp_path / "keyring.json"
    write_keyring_file(path, Keyring([new_master_key("one")]))
    provider = KeyringFile(path)
    newer = Keyring([new_master_key("two"), *load_keyring_file(path).keys])
    _, wrapped = newer.wrap(FILE_ID, b"\x05" * 32, FILE)
    replace_keyring_file(path, newer)
    # As if the change had gone unnoticed (a coarse clock, the same size): the stamp is
    # current but the keys are old, so only the forced read can find key "two".
    provider._stamp = provider._stat()
    assert provider.current().ids == {"one"}
    assert provider.unwrap("two", FILE_ID, wrapped, FILE) == b"\x05" * 32


def test_backup_round_trip_and_wrong_passphrase() -> None:
    ring = Keyring([new_master_key("a"), new_master_key("b")])
    backup = seal_backup(ring, "a long passphrase")
    assert ring.primary.key.encode() not in backup
    restored = open_backup(backup, "a long passphrase")
    assert [(k.id, k.key) for k in restored.keys] == [(k.id, k.key) for k in ring.keys]
    with pytest.raises(KeyringError, match="wrong passphrase"):
        open_backup(backup, "another long passphrase")
    with pytest.raises(KeyringError, match="malformed"):
        open_backup(b"{}" + backup, "a long passphrase")
    with pytest.raises(KeyringError, match="at least 12"):
        seal_backup(ring, "short")


def test_merge_refuses_a_different_key_under_the_same_id() -> None:
    here = Keyring([new_master_key("a")])
    same = Keyring(list(here.keys))
    assert here.merged(same).ids == {"a"}
    assert here.merged(Keyring([new_master_key("b")])).primary.id == "a"
    with pytest.raises(KeyringError, match="differs"):
        here.merged(Keyring([new_master_key("a")]))


@functools.cache
def _backup_doc() -> dict[str, Any]:
    return dict(json.loads(seal_backup(Keyring([new_master_key("a")]), "a long passphrase")))


def _with(doc: dict[str, Any], **changes: object) -> bytes:
    return json.dumps({**doc, **changes}).encode()


def _with_kdf(doc: dict[str, Any], **changes: object) -> bytes:
    return _with(doc, kdf={**doc["kdf"], **changes})


BAD_BACKUPS: list[tuple[str, Callable[[dict[str, Any]], bytes], str]] = [
    ("truncated", lambda d: _with(d)[:-40], "not JSON (is the file truncated?)"),
    ("empty", lambda d: b"", "not JSON"),
    ("binary", lambda d: os.urandom(300), "not JSON"),
    ("deeply nested", lambda d: b"[" * 100_000 + b"]" * 100_000, "not JSON"),
    ("oversized", lambda d: _with(d, padding="x" * (1 << 20)), "larger than 1024 KiB"),
    ("a list", lambda d: b"[1, 2]", "not a sealbox keyring backup"),
    ("other format", lambda d: _with(d, format="other"), "not a sealbox keyring backup"),
    ("version 2", lambda d: _with(d, version=2), "unsupported backup version 2"),
    ("version true", lambda d: _with(d, version=True), "unsupported backup version"),
    ("other kdf", lambda d: _with_kdf(d, name="pbkdf2"), "kdf must be"),
    ("kdf not an object", lambda d: _with(d, kdf="scrypt"), "kdf must be"),
    ("other cipher", lambda d: _with(d, cipher="ChaCha20"), 'cipher must be "AES-256-GCM"'),
    ("n = -1", lambda d: _with_kdf(d, n=-1), "kdf.n must be a power of two from 2^14 to 2^20, not -1"),
    ("n huge", lambda d: _with_kdf(d, n=2**64), "kdf.n must be a power of two"),
    ("n not a power of two", lambda d: _with_kdf(d, n=100_000), "kdf.n must be a power of two"),
    ("n a string", lambda d: _with_kdf(d, n="131072"), "kdf.n is missing or not a number"),
    ("n true", lambda d: _with_kdf(d, n=True), "kdf.n is missing or not a number"),
    ("n missing", lambda d: _with(d, kdf={"name": "scrypt", "r": 8, "p": 1, "salt": d["kdf"]["salt"]}), "kdf.n is"),
    ("r = 0", lambda d: _with_kdf(d, r=0), "kdf.r must be 1 to 32"),
    ("p = -1", lambda d: _with_kdf(d, p=-1), "kdf.p 1 to 16"),
    ("2 GiB of memory", lambda d: _with_kdf(d, n=2**20, r=16), "more than 256 MiB"),
    ("too much work", lambda d: _with_kdf(d, p=16), "4 times the usual work"),
    ("salt short", lambda d: _with_kdf(d, salt=base64.b64encode(b"x" * 8).decode()), "kdf.salt must be 16 bytes"),
    ("salt not base64", lambda d: _with_kdf(d, salt="***"), "kdf.salt is not base64"),
    ("salt a number", lambda d: _with_kdf(d, salt=5), "kdf.salt is missing or not a string"),
    ("nonce long", lambda d: _with(d, nonce=base64.b64encode(b"x" * 16).decode()), "nonce must be 12 bytes, not 16"),
    ("nonce missing", lambda d: _with(d, nonce=None), "nonce is missing"),
    ("ciphertext short", lambda d: _with(d, ciphertext=base64.b64encode(b"x" * 8).decode()), "ciphertext is truncated"),
    (
        "ciphertext cut",
        lambda d: _with(d, ciphertext=d["ciphertext"][:-8]),
        "wrong passphrase, or the backup is damaged",
    ),
]


@pytest.mark.parametrize(("make", "message"), [c[1:] for c in BAD_BACKUPS], ids=[c[0] for c in BAD_BACKUPS])
def test_a_malformed_backup_gets_one_clear_error(make: Callable[[dict[str, Any]], bytes], message: str) -> None:
    with pytest.raises(KeyringError) as caught:
        open_backup(make(_backup_doc()), "a long passphrase")
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_backup_with_the_highest_accepted_cost_still_opens() -> None:
    ring = Keyring([new_master_key("a")])
    doc = _backup_doc()
    # Re-seal under the bound itself: 256 MiB of scrypt memory.
    salt, nonce = os.urandom(16), os.urandom(12)
    key = Scrypt(salt=salt, length=32, n=2**18, r=8, p=1).derive(b"a long passphrase")
    sealed = AESGCM(key).encrypt(nonce, ring.to_json().encode(), b"sealbox-keyring-backup-v1")
    data = _with(
        doc,
        kdf={**doc["kdf"], "n": 2**18, "salt": base64.b64encode(salt).decode()},
        nonce=base64.b64encode(nonce).decode(),
        ciphertext=base64.b64encode(sealed).decode(),
    )
    assert open_backup(data, "a long passphrase").ids == {"a"}


def test_a_keyring_reached_through_a_symlink_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "real.json"
    write_keyring_file(real, Keyring([new_master_key("a")]))
    link = tmp_path / "keyring.json"
    link.symlink_to(real)
    with pytest.raises(KeyringError, match="is a symbolic link"):
        load_keyring_file(link)


def test_a_keyring_in_a_directory_others_may_write_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "conf" / "keyring.json"
    write_keyring_file(path, Keyring([new_master_key("a")]))
    for mode in (0o777, 0o770, 0o702):
        path.parent.chmod(mode)
        with pytest.raises(KeyringError, match=f"which other users may write \\(mode 0{mode:o}\\)"):
            load_keyring_file(path)
    path.parent.chmod(0o1777)  # sticky, as /tmp: others cannot replace our entry
    assert load_keyring_file(path).ids == {"a"}


def test_a_fifo_or_directory_is_not_a_keyring(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo", 0o600)
    (tmp_path / "dir").mkdir(mode=0o700)
    for name in ("fifo", "dir"):
        with pytest.raises(KeyringError, match="is not a regular file"):
            load_keyring_file(tmp_path / name)


def test_an_oversized_keyring_is_refused_without_reading_it_all(tmp_path: Path) -> None:
    path = tmp_path / "keyring.json"
    path.write_bytes(b" " * (2 << 20))
    path.chmod(0o600)
    with pytest.raises(KeyringError, match="larger than 1 MiB"):
        load_keyring_file(path)


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="changing owners needs root")


@pytest.fixture
def shared() -> Iterator[Path]:
    """A directory of user 65534 (pytest's own are private to root)."""
    with tempfile.TemporaryDirectory(prefix="sealbox-keyring-") as name:
        os.chown(name, 65534, 65534)
        yield Path(name)


@needs_root
def test_a_keyring_of_another_owner_is_refused_unless_root_trusts_its_owner(tmp_path: Path) -> None:
    path = tmp_path / "conf" / "keyring.json"
    write_keyring_file(path, Keyring([new_master_key("a")]))
    os.chown(path, 65534, 65534)
    with pytest.raises(KeyringError, match=r"belongs to another user \(uid 65534\)"):
        load_keyring_file(path)
    assert load_keyring_file(path, trust_owner=True).ids == {"a"}
    os.chown(path, 0, 0)
    os.chown(path.parent, 65534, 65534)
    with pytest.raises(KeyringError, match=r"sits in .*conf, which belongs to another user \(uid 65534\)"):
        load_keyring_file(path)


@needs_root
def test_key_commands_run_as_root_leave_a_keyring_its_owner_can_read(shared: Path) -> None:
    path = shared / "conf" / "keyring.json"
    write_keyring_file(path, Keyring([new_master_key("a")]))
    os.chown(path.parent, 65534, 65534)
    os.chown(path, 65534, 65534)
    rotated = load_keyring(path).with_primary(new_master_key("b"))  # as 'sudo sealbox keys rotate'
    replace_keyring_file(path, rotated)
    info = path.stat()
    assert (info.st_uid, info.st_gid, info.st_mode & 0o777) == (65534, 65534, 0o600)
    # The server's user reads it (as that user: effective uid 65534).
    os.seteuid(65534)
    try:
        assert load_keyring_file(path).primary.id == "b"
    finally:
        os.seteuid(0)


@needs_root
def test_key_commands_run_as_another_user_refuse_with_the_reason(shared: Path) -> None:
    path = shared / "conf" / "keyring.json"
    write_keyring_file(path, Keyring([new_master_key("a")]))  # root's, mode 0600
    os.chown(path.parent, 65534, 65534)
    before = path.read_bytes()
    os.seteuid(65534)
    try:
        with pytest.raises(SetupError, match="cannot be read by this user \\(uid 65534\\)"):
            load_keyring(path)
    finally:
        os.seteuid(0)
    assert path.read_bytes() == before


def test_a_refused_reload_is_reported_once_per_change(tmp_path: Path) -> None:
    path = tmp_path / "keyring.json"
    write_keyring_file(path, Keyring([new_master_key("a")]))
    reports: list[str | None] = []
    provider = KeyringFile(path, report=reports.append)
    path.chmod(0o640)
    for _ in range(3):
        assert provider.ids == {"a"}
    with pytest.raises(UnknownKeyId):  # a forced read meets the same refusal: no new report
        provider.unwrap("zz", FILE_ID, b"x", FILE)
    assert len(reports) == 1
    assert "chmod 600" in str(reports[0])
    path.write_text("garbage")  # a second change, refused again
    provider.current()
    path.chmod(0o600)
    replace_keyring_file(path, Keyring([new_master_key("b"), new_master_key("a")]))
    assert provider.wrap(FILE_ID, new_dek(), FILE)[0] == "b"
    assert provider.problem is None
    assert [r is None for r in reports] == [False, False, True]


def test_a_wrap_on_another_thread_waits_for_a_read_in_progress(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Wrapping runs on the committer's thread while the event loop looks at the keyring
    too: a wrap that comes while another thread is reading a replaced keyring waits for
    that read and wraps under the new primary, never under the keys the file replaced."""
    import threading
    import time

    from sealbox.crypto import keys as keys_module

    path = tmp_path / "keyring.json"
    write_keyring_file(path, Keyring([new_master_key("old")]))
    provider = KeyringFile(path)
    replace_keyring_file(path, Keyring([new_master_key("new"), new_master_key("old")]))
    reading, release = threading.Event(), threading.Event()
    real = keys_module.load_keyring_file

    def held_read(*args: Any, **kwargs: Any) -> Keyring:
        if threading.current_thread().name == "looker":
            reading.set()
            release.wait(10)
        return real(*args, **kwargs)

    monkeypatch.setattr(keys_module, "load_keyring_file", held_read)
    looker = threading.Thread(target=lambda: provider.ids, name="looker")
    looker.start()
    assert reading.wait(10)  # the looker has seen the change and is reading the file
    wrapped: list[str] = []
    wrapper = threading.Thread(target=lambda: wrapped.append(provider.wrap(FILE_ID, new_dek(), FILE)[0]))
    wrapper.start()
    time.sleep(0.2)  # room for a wrap that does not wait to finish (under "old")
    release.set()
    looker.join(10)
    wrapper.join(10)
    assert wrapped == ["new"]
