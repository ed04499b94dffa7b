"""File keys and upload keys are wrapped with different prefixes; rows written before the
split (format 1) are re-wrapped when the server starts, under the key that wrapped them."""

from __future__ import annotations

import asyncio
import itertools
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select, update

from sealbox.audit.service import Actor
from sealbox.config import Settings
from sealbox.crypto.errors import IntegrityError
from sealbox.crypto.keys import Keyring, WrapDomain, load_keyring_file, new_dek, new_master_key, wrap_domain
from sealbox.errors import IntegrityFailure
from sealbox.ids import FileId, UserId
from sealbox.keys.formats import upgrade_wrapped_keys
from sealbox.models import File, Upload
from sealbox.runtime import Runtime, build, load_keyring, prepare
from sealbox.sharing.gate import AsUser
from sealbox.uploads.service import Holder

ID = os.urandom(16)
ACTOR = Actor("admin")
LEGACY_PREFIX = b"SBOX-DEK1"  # what releases before the split wrote, for files and uploads alike


def legacy_token(master_key: str, bound_id: bytes, dek: bytes) -> bytes:
    return Fernet(master_key).encrypt(LEGACY_PREFIX + bound_id + dek)


@pytest.mark.parametrize(
    ("written", "read"), list(itertools.product([WrapDomain.FILE, WrapDomain.UPLOAD], list(WrapDomain)))
)
def test_a_token_opens_only_in_the_domain_it_was_made_for(written: WrapDomain, read: WrapDomain) -> None:
    ring = Keyring([new_master_key("k")])
    dek = new_dek()
    key_id, wrapped = ring.wrap(ID, dek, written)
    if written is read:
        assert ring.unwrap(key_id, ID, wrapped, read) == dek
    else:
        with pytest.raises(IntegrityError, match="wrong format"):
            ring.unwrap(key_id, ID, wrapped, read)


@pytest.mark.parametrize("domain", [WrapDomain.FILE, WrapDomain.UPLOAD])
def test_a_legacy_token_opens_only_as_legacy_and_upgrades_under_the_same_key(domain: WrapDomain) -> None:
    old, primary = new_master_key("old"), new_master_key("primary")
    ring = Keyring([primary, old])
    dek = new_dek()
    token = legacy_token(old.key, ID, dek)
    with pytest.raises(IntegrityError, match="wrong format"):
        ring.unwrap("old", ID, token, domain)
    assert ring.unwrap("old", ID, token, WrapDomain.LEGACY) == dek
    upgraded = ring.upgrade("old", ID, token, domain)
    assert ring.unwrap("old", ID, upgraded, domain) == dek  # same master key, not the primary
    with pytest.raises(IntegrityError):
        ring.unwrap("old", ID, upgraded, WrapDomain.LEGACY)
    with pytest.raises(IntegrityError, match="another file"):
        ring.upgrade("old", os.urandom(16), token, domain)


def test_the_legacy_format_is_never_written_and_unknown_formats_are_refused() -> None:
    ring = Keyring([new_master_key("k")])
    with pytest.raises(ValueError, match="never written"):
        ring.wrap(ID, new_dek(), WrapDomain.LEGACY)
    assert wrap_domain(WrapDomain.UPLOAD, 1) is WrapDomain.LEGACY
    assert wrap_domain(WrapDomain.UPLOAD, 2) is WrapDomain.UPLOAD
    with pytest.raises(IntegrityError, match="unknown wrapped key format 3"):
        wrap_domain(WrapDomain.FILE, 3)


async def _body(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def _legacy_rows(runtime: Runtime, master_key: str) -> dict[str, tuple[str, bytes]]:
    """Turn every file and upload row into what a release before the split stored."""
    before = {}
    async with runtime.db.write() as session:
        for table, domain in ((File, WrapDomain.FILE), (Upload, WrapDomain.UPLOAD)):
            for row in (await session.execute(select(table))).scalars().all():
                dek = runtime.keyring.unwrap(row.key_id, row.id.bytes, row.wrapped_dek, domain)
                token = legacy_token(master_key, row.id.bytes, dek)
                await session.execute(update(table).where(table.id == row.id).values(wrapped_dek=token, wrap_format=1))
                before[str(row.id)] = (row.key_id, token)
    return before


async def _formats(runtime: Runtime) -> dict[str, tuple[int, str, bytes]]:
    async with runtime.db.read() as session:
        rows = [
            *(await session.execute(select(File.id, File.wrap_format, File.key_id, File.wrapped_dek))).all(),
            *(await session.execute(select(Upload.id, Upload.wrap_format, Upload.key_id, Upload.wrapped_dek))).all(),
        ]
    return {str(r[0]): (r[1], r[2], r[3]) for r in rows}


async def _read(runtime: Runtime, owner: UserId, file_id: str) -> bytes:
    download = (await runtime.gate.open(AsUser(owner, ACTOR), FileId(uuid.UUID(file_id)))).download
    return b"".join([bytes(p) async for p in download.content(0, download.file.size - 1)])


def test_a_start_rewraps_rows_stored_before_the_split(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", keyring=tmp_path / "config" / "keyring.json")

    async def main() -> None:
        created = await prepare(settings)
        assert created is not None
        runtime = build(settings, load_keyring(settings))
        owner = UserId(uuid.UUID((await runtime.accounts.find(created.admin_username)).id))
        data, first, second = os.urandom(70_000), os.urandom(5000), os.urandom(300)
        try:
            file_id = (await runtime.files.upload(owner, "a.bin", None, _body(data), ACTOR)).id
            holder = Holder(user_id=owner)
            pending = await runtime.uploads.create(holder, len(first) + len(second), "b.bin", None, None)
            await runtime.uploads.append(pending.id, holder, 0, _body(first), None, ACTOR)
            primary = load_keyring_file(settings.keyring).primary
            before = await _legacy_rows(runtime, primary.key)
            # Format-1 rows are still read as they are, before any start re-wraps them.
            assert await _read(runtime, owner, file_id) == data
        finally:
            await runtime.close()

        assert await prepare(settings) is None  # what 'sealbox serve' runs first

        runtime = build(settings, load_keyring(settings))
        try:
            after = await _formats(runtime)
            assert set(after) == set(before) == {file_id, str(pending.id)}
            for row_id, (wrap_format, key_id, wrapped) in after.items():
                assert wrap_format == 2
                assert key_id == before[row_id][0]
                assert wrapped != before[row_id][1]
            assert await _read(runtime, owner, file_id) == data
            done = await runtime.uploads.append(pending.id, holder, len(first), _body(second), None, ACTOR)
            assert done.file_id is not None
            assert await _read(runtime, owner, done.file_id) == first + second
            again = await upgrade_wrapped_keys(runtime.db, runtime.keyring)
            assert (again.rows, again.failed) == (0, 0)  # nothing left
        finally:
            await runtime.close()

    asyncio.run(main())


def test_a_legacy_token_in_a_row_marked_current_is_refused(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", keyring=tmp_path / "config" / "keyring.json")

    async def main() -> None:
        created = await prepare(settings)
        assert created is not None
        runtime = build(settings, load_keyring(settings))
        try:
            owner = UserId(uuid.UUID((await runtime.accounts.find(created.admin_username)).id))
            file_id = (await runtime.files.upload(owner, "a.bin", None, _body(b"abc"), ACTOR)).id
            primary = load_keyring_file(settings.keyring).primary
            await _legacy_rows(runtime, primary.key)
            async with runtime.db.write() as session:
                await session.execute(update(File).values(wrap_format=2))
            with pytest.raises(IntegrityFailure, match="the stored file key failed authentication"):
                await _read(runtime, owner, file_id)
        finally:
            await runtime.close()

    asyncio.run(main())


def test_a_key_that_does_not_open_is_left_and_does_not_stop_the_others(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", keyring=tmp_path / "config" / "keyring.json")

    async def main() -> None:
        created = await prepare(settings)
        assert created is not None
        runtime = build(settings, load_keyring(settings))
        try:
            owner = UserId(uuid.UUID((await runtime.accounts.find(created.admin_username)).id))
            ids = [(await runtime.files.upload(owner, f"{i}.bin", None, _body(b"x"), ACTOR)).id for i in range(3)]
            primary = load_keyring_file(settings.keyring).primary
            await _legacy_rows(runtime, primary.key)
            broken = uuid.UUID(ids[1])
            async with runtime.db.write() as session:
                await session.execute(update(File).where(File.id == broken).values(wrapped_dek=b"damaged"))
            result = await upgrade_wrapped_keys(runtime.db, runtime.keyring)
            assert (result.rows, result.failed) == (2, 1)
            formats = await _formats(runtime)
            assert formats[str(broken)][:1] == (1,)
            assert {formats[i][0] for i in (ids[0], ids[2])} == {2}
        finally:
            await runtime.close()

    asyncio.run(main())


def test_a_file_of_segments_has_a_key_that_never_opens_it_as_one_blob(tmp_path: Path) -> None:
    """A file made of segments written before its key had a prefix of its own (the plain
    file prefix, format 2) still reads, is re-wrapped in the segmented files' prefix
    (format 3) when the server starts, and from then on its key opens it only as
    segments: a record turned into a one-blob file is refused."""
    settings = Settings(data_dir=tmp_path / "data", keyring=tmp_path / "config" / "keyring.json")
    parts = [os.urandom(70_000), os.urandom(300)]

    async def main() -> None:
        created = await prepare(settings)
        assert created is not None
        runtime = build(settings, load_keyring(settings))
        owner = UserId(uuid.UUID((await runtime.accounts.find(created.admin_username)).id))
        holder = Holder(user_id=owner)
        try:
            pending = await runtime.uploads.create(holder, sum(map(len, parts)), "s.bin", None, None)
            await runtime.uploads.append(pending.id, holder, 0, _body(parts[0]), None, ACTOR)
            done = await runtime.uploads.append(pending.id, holder, len(parts[0]), _body(parts[1]), None, ACTOR)
            assert done.file_id is not None
            file_id = uuid.UUID(done.file_id)
            assert (await _formats(runtime))[done.file_id][0] == 3
            # What the first server with files made of segments stored.
            async with runtime.db.write() as session:
                row = await session.get(File, file_id)
                assert row is not None
                dek = runtime.keyring.unwrap(row.key_id, file_id.bytes, row.wrapped_dek, WrapDomain.SEGMENTED_FILE)
                key_id, token = runtime.keyring.wrap(file_id.bytes, dek, WrapDomain.FILE)
                await session.execute(
                    update(File).where(File.id == file_id).values(key_id=key_id, wrapped_dek=token, wrap_format=2)
                )
            assert await _read(runtime, owner, done.file_id) == b"".join(parts)
        finally:
            await runtime.close()

        assert await prepare(settings) is None  # what 'sealbox serve' runs first

        runtime = build(settings, load_keyring(settings))
        try:
            wrap_format, _, wrapped = (await _formats(runtime))[done.file_id]
            assert wrap_format == 3
            assert wrapped != token
            assert await _read(runtime, owner, done.file_id) == b"".join(parts)
            for fmt in (1, 2, 3):
                async with runtime.db.write() as session:
                    await session.execute(update(File).where(File.id == file_id).values(segments=0, wrap_format=fmt))
                with pytest.raises(IntegrityFailure, match="the stored file key failed authentication"):
                    await _read(runtime, owner, done.file_id)
            again = await upgrade_wrapped_keys(runtime.db, runtime.keyring)
            assert (again.rows, again.failed) == (0, 0)
        finally:
            await runtime.close()

    asyncio.run(main())
