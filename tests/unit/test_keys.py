"""Master keyring and per-file key wrapping (DESIGN §4)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

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
    open_backup,
    replace_keyring_file,
    seal_backup,
    write_keyring_file,
)

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
            "not valid",
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
    key_id, wrapped_two = provider.wrap(FILE_ID, b"\x02" * 32, FILE)
    assert key_id == "two"
    assert provider.unwrap("one", FILE_ID, wrapped_one, FILE) == b"\x01" * 32
    assert provider.ids == {"one", "two"}
    # A damaged replacement is ignored: the keys already loaded keep working.
    path.write_text("garbage")
    assert provider.unwrap("two", FILE_ID, wrapped_two, FILE) == b"\x02" * 32
    assert provider.wrap(FILE_ID, b"\x03" * 32, FILE)[0] == "two"


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
