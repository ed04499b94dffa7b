"""A complete resumable upload answers with its full length until it expires, appends
nothing, creates nothing more, and holds no room, no key and no metadata."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from sealbox.accounts.service import AccountService
from sealbox.audit.service import Actor, Audit
from sealbox.crypto.keys import Keyring, new_master_key
from sealbox.db.base import utcnow
from sealbox.db.migrate import upgrade
from sealbox.db.session import Database
from sealbox.errors import Conflict, Gone, NotFound, TooLarge
from sealbox.files.repository import FileRepository
from sealbox.files.service import FileService
from sealbox.ids import UserId
from sealbox.models import File, Upload
from sealbox.storage.memory import MemoryStore
from sealbox.uploads.service import Holder, UploadService

ACTOR = Actor("owner")
Scenario = Callable[[FileService, UploadService, UserId], Awaitable[None]]


async def _source(data: bytes) -> AsyncIterator[bytes]:
    if data:
        yield data


def _run(tmp_path: Path, scenario: Scenario, quota: int | None = None, max_pending: int = 100) -> None:
    async def main() -> None:
        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
        await upgrade(db)
        try:
            audit = Audit(db)
            user = await AccountService(db, audit, timedelta(days=1)).create_user("owner", "password-1")
            keyring = Keyring([new_master_key("k1")])
            store = MemoryStore()
            files = FileService(db, store, keyring, audit, 1 << 30, quota)
            uploads = UploadService(db, store, keyring, files, timedelta(hours=1), max_pending)
            await scenario(files, uploads, UserId(uuid.UUID(user.id)))
        finally:
            await db.dispose()

    asyncio.run(main())


async def _complete(uploads: UploadService, owner: UserId, size: int) -> Upload:
    holder = Holder(user_id=owner)
    row = await uploads.create(holder, size, "c.bin", None, None)
    await uploads.append(row.id, holder, 0, _source(os.urandom(size // 2)), None, ACTOR)
    done = await uploads.append(row.id, holder, size // 2, _source(os.urandom(size - size // 2)), None, ACTOR)
    assert done.file_id is not None
    assert (done.offset, done.length) == (size, size)
    return row


async def _listed(files: FileService, owner: UserId) -> list[str]:
    return [item.id for item in (await files.list(owner, 100, None)).items]


def test_a_complete_upload_answers_its_length_and_appends_nothing(tmp_path: Path) -> None:
    async def scenario(files: FileService, uploads: UploadService, owner: UserId) -> None:
        holder = Holder(user_id=owner)
        row = await _complete(uploads, owner, 1000)
        file_id = str(row.bound_id)
        assert await _listed(files, owner) == [file_id]
        state = await uploads.state(row.id, holder)
        assert (state.offset, state.length, state.file_id) == (1000, 1000, file_id)
        # A repeated last PATCH (empty, at the end): the same answer, no second file.
        again = await uploads.append(row.id, holder, 1000, _source(b""), None, ACTOR)
        assert (again.offset, again.file_id) == (1000, file_id)
        with pytest.raises(TooLarge, match="the upload is complete: nothing may follow its end"):
            await uploads.append(row.id, holder, 1000, _source(b"x"), None, ACTOR)
        with pytest.raises(Conflict, match="the upload is at offset 1000, not 0"):
            await uploads.append(row.id, holder, 0, _source(b"x" * 1000), None, ACTOR)
        assert await _listed(files, owner) == [file_id]
        # Someone else still finds nothing there.
        with pytest.raises(NotFound):
            await uploads.state(row.id, Holder(user_id=UserId(uuid.uuid4())))
        # The row keeps no key and no metadata: deleting the file still shreds its key.
        async with files.db.read() as session:
            kept = await session.get(Upload, row.id)
        assert kept is not None
        assert (kept.wrapped_dek, kept.key_id, kept.name_enc, kept.content_type_enc) == (b"", "", b"", None)

    _run(tmp_path, scenario)


def test_a_complete_upload_goes_when_it_expires(tmp_path: Path) -> None:
    async def scenario(files: FileService, uploads: UploadService, owner: UserId) -> None:
        holder = Holder(user_id=owner)
        row = await _complete(uploads, owner, 10)
        async with files.db.write() as session:
            await session.execute(update(Upload).values(expires_at=utcnow() - timedelta(seconds=1)))
        with pytest.raises(Gone, match="this upload has expired"):
            await uploads.state(row.id, holder)
        assert await uploads.sweep(timedelta(hours=1)) == 0  # no parts: they are the file's
        with pytest.raises(NotFound):
            await uploads.state(row.id, holder)
        assert await _listed(files, owner) == [str(row.bound_id)]  # the file stays

    _run(tmp_path, scenario)


def test_a_complete_upload_holds_no_room(tmp_path: Path) -> None:
    """Quota 1000: 600 bytes completed leave room for a 400-byte upload (they would not
    if the complete upload still held its 600 beside the file's)."""

    async def scenario(files: FileService, uploads: UploadService, owner: UserId) -> None:
        await _complete(uploads, owner, 600)
        async with files.db.read() as session:
            repo = FileRepository(session)
            assert (await repo.usage(owner), await repo.reserved(owner, utcnow())) == (600, 0)
        await uploads.create(Holder(user_id=owner), 400, "fits.bin", None, None)
        with pytest.raises(TooLarge, match="your storage quota of 1000 bytes is used up"):
            await uploads.create(Holder(user_id=owner), 1, "over.bin", None, None)

    _run(tmp_path, scenario, quota=1000)


def test_complete_uploads_are_not_pending(tmp_path: Path) -> None:
    async def scenario(files: FileService, uploads: UploadService, owner: UserId) -> None:
        for _ in range(3):
            await _complete(uploads, owner, 10)
        for _ in range(2):
            await uploads.create(Holder(user_id=owner), 10, "open.bin", None, None)
        with pytest.raises(Conflict, match="you have 2 unfinished uploads"):
            await uploads.create(Holder(user_id=owner), 10, "third.bin", None, None)

    _run(tmp_path, scenario, max_pending=2)


def test_cancelling_a_complete_upload_keeps_its_file(tmp_path: Path) -> None:
    async def scenario(files: FileService, uploads: UploadService, owner: UserId) -> None:
        holder = Holder(user_id=owner)
        row = await _complete(uploads, owner, 1000)
        file_id = str(row.bound_id)
        await uploads.terminate(row.id, holder)
        with pytest.raises(NotFound):
            await uploads.state(row.id, holder)
        assert await _listed(files, owner) == [file_id]
        opened = await files.open(await _file(files, row.bound_id))
        assert len(b"".join([bytes(p) async for p in opened.content(0, 999)])) == 1000

    _run(tmp_path, scenario)


async def _file(files: FileService, file_id: uuid.UUID) -> File:
    async with files.db.read() as session:
        row = await session.get(File, file_id)
    assert row is not None
    return row
