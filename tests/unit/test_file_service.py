"""FileService over a real SQLite file and the in-memory store."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import pytest

from sealbox.accounts.service import AccountService
from sealbox.audit.service import Actor, Audit
from sealbox.crypto.keys import Keyring, new_master_key
from sealbox.crypto.stream import Sealer
from sealbox.db.migrate import upgrade
from sealbox.db.session import Database
from sealbox.errors import IntegrityFailure, NotFound, TooLarge
from sealbox.files.service import FileService, blob_key
from sealbox.ids import FileId, UserId
from sealbox.models import File
from sealbox.sharing.gate import AsUser, Gate
from sealbox.storage.memory import MemoryStore

Scenario = Callable[[FileService, UserId, MemoryStore], Awaitable[None]]
ACTOR = Actor("owner")


async def _source(data: bytes) -> AsyncIterator[bytes]:
    for i in range(0, len(data), 50_000):
        yield data[i : i + 50_000]


def run(tmp_path: Path, scenario: Scenario, limit: int = 1 << 30, quota: int | None = None) -> None:
    async def main() -> None:
        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
        await upgrade(db)
        store = MemoryStore()
        try:
            audit = Audit(db)
            user = await AccountService(db, audit, timedelta(days=1)).create_user("owner", "password-1")
            files = FileService(db, store, Keyring([new_master_key("k1")]), audit, limit, quota)
            await scenario(files, UserId(uuid.UUID(user.id)), store)
        finally:
            await db.dispose()

    asyncio.run(main())


def _gate(files: FileService) -> Gate:
    return Gate(files.db, files, files.audit)


async def _read(files: FileService, owner: UserId, file_id: str) -> bytes:
    download = (await _gate(files).open(AsUser(owner, ACTOR), FileId(uuid.UUID(file_id)))).download
    return b"".join([bytes(p) async for p in download.content(0, download.file.size - 1)])


def test_a_valid_blob_from_an_older_write_is_refused(tmp_path: Path) -> None:
    """Rollback: a blob sealed for this file with its own DEK, but not the recorded write."""

    async def scenario(files: FileService, owner: UserId, store: MemoryStore) -> None:
        data = os.urandom(100_000)
        created = await files.upload(owner, "a.bin", None, _source(data), ACTOR)
        assert await _read(files, owner, created.id) == data
        file_id = uuid.UUID(created.id)
        async with files.db.read() as session:
            row = await session.get(File, file_id)
            assert row is not None
        dek = files.dek(row)
        replay = Sealer(dek, file_id.bytes)
        await store.put(blob_key(file_id), replay.seal(_source(data)))
        with pytest.raises(IntegrityFailure):
            await _gate(files).open(AsUser(owner, ACTOR), FileId(file_id))

    run(tmp_path, scenario)


def test_other_users_and_unknown_ids_get_not_found(tmp_path: Path) -> None:
    async def scenario(files: FileService, owner: UserId, store: MemoryStore) -> None:
        created = await files.upload(owner, "a.bin", None, _source(b"x"), ACTOR)
        stranger = UserId(uuid.uuid4())
        for who, which in ((stranger, created.id), (owner, str(uuid.uuid4()))):
            with pytest.raises(NotFound):
                await _gate(files).open(AsUser(who, ACTOR), FileId(uuid.UUID(which)))
            with pytest.raises(NotFound):
                await _gate(files).describe(AsUser(who, ACTOR), FileId(uuid.UUID(which)))
            with pytest.raises(NotFound):
                await files.delete(who, FileId(uuid.UUID(which)), ACTOR)
        assert await _read(files, owner, created.id) == b"x"

    run(tmp_path, scenario)


def test_over_limit_upload_stores_nothing(tmp_path: Path) -> None:
    async def scenario(files: FileService, owner: UserId, store: MemoryStore) -> None:
        with pytest.raises(TooLarge):
            await files.upload(owner, "big.bin", None, _source(b"x" * 1001), ACTOR)
        assert store.blobs == {}
        assert (await files.list(owner, 10, None)).items == []
        exact = await files.upload(owner, "ok.bin", None, _source(b"x" * 1000), ACTOR)
        assert exact.size == 1000

    run(tmp_path, scenario, limit=1000)


def test_sweep_removes_only_blobs_without_a_row(tmp_path: Path) -> None:
    async def scenario(files: FileService, owner: UserId, store: MemoryStore) -> None:
        kept = await files.upload(owner, "kept.bin", None, _source(b"keep"), ACTOR)
        orphan = blob_key(uuid.uuid4())
        await store.put(orphan, _source(b"orphan"))
        await store.put("unrelated/thing", _source(b"other"))
        assert await files.sweep(timedelta(hours=1)) == 0  # too young to be judged
        assert await files.sweep(timedelta(seconds=-1)) == 1
        assert orphan not in store.blobs
        assert blob_key(uuid.UUID(kept.id)) in store.blobs
        assert "unrelated/thing" in store.blobs
        assert await _read(files, owner, kept.id) == b"keep"

    run(tmp_path, scenario)


def test_quota_counts_every_stored_byte_and_refuses_naming_it(tmp_path: Path) -> None:
    async def scenario(files: FileService, owner: UserId, store: MemoryStore) -> None:
        await files.upload(owner, "a.bin", None, _source(b"x" * 600), ACTOR)
        with pytest.raises(TooLarge, match="storage quota of 1000 bytes"):
            await files.upload(owner, "b.bin", None, _source(b"x" * 401), ACTOR)
        assert len(store.blobs) == 1
        assert [f.name for f in (await files.list(owner, 10, None)).items] == ["a.bin"]
        await files.upload(owner, "c.bin", None, _source(b"x" * 400), ACTOR)  # exactly full
        with pytest.raises(TooLarge, match="quota of 1000 bytes is used up"):
            await files.upload(owner, "d.bin", None, _source(b""), ACTOR)
        assert len(store.blobs) == 2

    run(tmp_path, scenario, quota=1000)
