"""The committer's units of work, batched in one transaction: each unit is counted
against what the units before it in the batch wrote, a refused unit fails alone with its
own answer (and runs once), nothing of it stays, and the cancellation and race paths of
resumable uploads keep what was committed (SQLite file and PostgreSQL)."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update

from sealbox.accounts.service import AccountService
from sealbox.audit.service import Actor, Audit
from sealbox.crypto.keys import Keyring, new_master_key
from sealbox.db.base import utcnow
from sealbox.db.migrate import upgrade
from sealbox.db.session import Database
from sealbox.errors import Conflict, Gone, TooLarge
from sealbox.files.service import FileService
from sealbox.ids import UserId
from sealbox.models import AuditEvent, File, Upload, UploadRequest
from sealbox.sharing.service import admission_for
from sealbox.storage.memory import MemoryStore
from sealbox.uploads.service import Holder, UploadService

ACTOR = Actor("owner")


async def _source(data: bytes) -> AsyncIterator[bytes]:
    if data:
        yield data


class World:
    def __init__(self, db: Database, audit: Audit, files: FileService, uploads: UploadService, owner: UserId):
        self.db, self.audit, self.files, self.uploads, self.owner = db, audit, files, uploads, owner
        self.batches: list[int] = []
        self.failures: list[BaseException] = []
        inner = audit._appender._commit

        async def counted(items: list[Any]) -> None:
            self.batches.append(len(items))
            try:
                await inner(items)
            except Exception as exc:
                self.failures.append(exc)
                raise

        audit._appender._commit = counted  # type: ignore[method-assign]

    async def link(self, max_files: int, max_bytes: int) -> UploadRequest:
        now = utcnow()
        row = UploadRequest(
            id=uuid.uuid4(), owner_id=self.owner, token_hash=uuid.uuid4().hex, created_at=now,
            expires_at=now + timedelta(days=1), max_files=max_files, max_bytes=max_bytes,
            files_received=0, bytes_received=0,
        )  # fmt: skip
        async with self.db.write() as session:
            session.add(row)
        return row

    async def scalar(self, query: Any) -> Any:
        async with self.db.read() as session:
            return (await session.execute(query)).scalar_one()


Scenario = Callable[[World], Awaitable[None]]


def run(url: str, scenario: Scenario, quota: int | None = None) -> None:
    async def main() -> None:
        db = Database(url)
        await upgrade(db)
        try:
            audit = Audit(db)
            user = await AccountService(db, audit, timedelta(days=1)).create_user("owner", "password-1")
            keyring = Keyring([new_master_key("k1")])
            store = MemoryStore()
            files = FileService(db, store, keyring, audit, 1 << 30, quota)
            uploads = UploadService(db, store, keyring, files, timedelta(hours=1))
            await scenario(World(db, audit, files, uploads, UserId(uuid.UUID(user.id))))
        finally:
            await db.dispose()

    asyncio.run(main())


def sqlite(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}"


async def _outcomes(*aws: Awaitable[Any]) -> list[Any]:
    return list(await asyncio.gather(*aws, return_exceptions=True))


def test_two_uploads_of_one_owner_in_one_batch_both_count_against_the_quota(url: str) -> None:
    async def scenario(w: World) -> None:
        ups = [_direct(w.files, w.owner, 600) for i in range(2)]
        results = await _outcomes(*ups)
        errors = [r for r in results if isinstance(r, Exception)]
        assert len(errors) == 1, results
        assert isinstance(errors[0], TooLarge)
        assert str(errors[0]) == (
            "the file would exceed your storage quota of 1000 bytes (600 bytes stored, 0 held by unfinished uploads)"
        )
        assert await w.scalar(select(func.count()).select_from(File)) == 1
        uploads_logged = select(func.count()).where(AuditEvent.action == "file.upload")
        assert await w.scalar(uploads_logged) == 1
        assert w.batches[0] == 2, w.batches  # they did share a batch

    run(url, scenario, quota=1000)


def test_two_link_uploads_for_the_last_file_in_one_batch(url: str) -> None:
    async def scenario(w: World) -> None:
        link = await w.link(max_files=1, max_bytes=10_000)
        ups = [_direct(w.files, w.owner, 100, admission_for(link)) for i in range(2)]
        results = await _outcomes(*ups)
        errors = [r for r in results if isinstance(r, Exception)]
        assert len(errors) == 1, results
        assert isinstance(errors[0], Gone)
        assert str(errors[0]) == "this link has received all the 1 files it accepts"
        assert await w.scalar(select(UploadRequest.files_received)) == 1
        assert await w.scalar(select(UploadRequest.bytes_received)) == 100
        linked = select(func.count()).where(File.upload_request_id == link.id)
        assert await w.scalar(linked) == 1
        assert await w.scalar(select(func.count()).select_from(File)) == 1
        assert w.batches[0] == 2, w.batches

    run(url, scenario)


def test_link_bytes_refusal_in_one_batch(url: str) -> None:
    async def scenario(w: World) -> None:
        link = await w.link(max_files=5, max_bytes=1000)
        ups = [_direct(w.files, w.owner, 600, admission_for(link)) for i in range(2)]
        assert w.batches == []
        results = await _outcomes(*ups)
        errors = [r for r in results if isinstance(r, Exception)]
        assert len(errors) == 1, results
        assert isinstance(errors[0], TooLarge)
        assert str(errors[0]) == "the file is larger than what this link still accepts: 400 of its 1000 bytes"
        assert await w.scalar(select(UploadRequest.bytes_received)) == 600
        assert await w.scalar(select(UploadRequest.files_received)) == 1

    run(url, scenario)


async def _create_with_last_part_pending(w: World, size: int, holder: Holder) -> Upload:
    row = await w.uploads.create(holder, size, "c.bin", None, None)
    await w.uploads.append(row.id, holder, 0, _source(os.urandom(size // 2)), None, ACTOR)
    return row


def test_expired_completion_fails_alone_and_leaves_its_upload_incomplete(url: str) -> None:
    async def scenario(w: World) -> None:
        holder = Holder(user_id=w.owner)
        a = await _create_with_last_part_pending(w, 1000, holder)
        b = await _create_with_last_part_pending(w, 1000, holder)
        # b expires while its last part streams in.
        row_b = await w.uploads._held(b.id, holder)
        async with w.db.write() as session:
            await session.execute(update(Upload).where(Upload.id == b.id).values(expires_at=utcnow()))
        row_a = await w.uploads._held(a.id, holder)
        results = await _outcomes(
            w.uploads.append(a.id, holder, 500, _source(os.urandom(500)), None, ACTOR, row_a),
            w.uploads.append(b.id, holder, 500, _source(os.urandom(500)), None, ACTOR, row_b),
            w.files.upload(w.owner, "plain.bin", None, _source(b"x" * 10), ACTOR),
        )
        assert not isinstance(results[0], Exception), results
        assert isinstance(results[1], Gone), results
        assert str(results[1]) == "this upload has expired"
        assert not isinstance(results[2], Exception), results
        assert await w.scalar(select(Upload.completed_at).where(Upload.id == b.id)) is None
        assert await w.scalar(select(func.count()).where(File.id == b.bound_id)) == 0
        assert await w.scalar(select(func.count()).select_from(File)) == 2

    run(url, scenario, quota=1 << 20)


def test_two_link_completions_in_one_batch(url: str) -> None:
    """A link with 2 files and 2000 bytes: two resumable uploads through it hold both;
    both complete in one batch."""

    async def scenario(w: World) -> None:
        link = await w.link(max_files=2, max_bytes=2000)
        async with w.db.read() as session:
            link = await session.get(UploadRequest, link.id)
        holder = Holder(request=link)
        a = await _create_with_last_part_pending(w, 1000, holder)
        b = await _create_with_last_part_pending(w, 1000, holder)
        ra, rb = await w.uploads._held(a.id, holder), await w.uploads._held(b.id, holder)
        results = await _outcomes(
            w.uploads.append(a.id, holder, 500, _source(os.urandom(500)), None, ACTOR, ra),
            w.uploads.append(b.id, holder, 500, _source(os.urandom(500)), None, ACTOR, rb),
        )
        assert not any(isinstance(r, Exception) for r in results), results
        assert await w.scalar(select(UploadRequest.files_received)) == 2
        assert await w.scalar(select(UploadRequest.bytes_received)) == 2000

    run(url, scenario, quota=1 << 20)


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        return str(request.getfixturevalue("postgres").create_database())
    return sqlite(tmp_path)


def _direct(files: FileService, owner: UserId, size: int = 10, admission: Any = None) -> Awaitable[None]:
    """What ``upload`` commits, handed to the committer at once (so units batch)."""
    from sealbox.audit.service import Event
    from sealbox.crypto.keys import FieldCipher, new_dek

    file_id, dek = uuid.uuid4(), new_dek()
    row = File(
        id=file_id, owner_id=owner, name_enc=FieldCipher(dek, file_id.bytes).encrypt("name", "n"),
        content_type_enc=b"t", size=size, chunk_log2=16, header_tag=b"h" * 32, created_at=utcnow(),
    )  # fmt: skip
    return files._commit(row, dek, admission, Event("file.upload", ACTOR, owner, row.id, None, {"bytes": size}))


def test_two_processes_batches_in_opposite_owner_order(postgres: Any) -> None:
    """Two server processes (two ``Database`` objects on one PostgreSQL database), each
    committing a batch of uploads of owners X and Y submitted in opposite orders: the
    committer runs units in the order of the rows they lock, so neither batch deadlocks."""
    url = postgres.create_database()

    async def main() -> None:
        seed = Database(url)
        await upgrade(seed)
        audit0 = Audit(seed)
        accounts = AccountService(seed, audit0, timedelta(days=1))
        x = UserId(uuid.UUID((await accounts.create_user("x", "password-1")).id))
        y = UserId(uuid.UUID((await accounts.create_user("y", "password-1")).id))
        await seed.dispose()
        keyring = Keyring([new_master_key("k1")])
        worlds = []
        for _ in range(2):
            db = Database(url)
            audit = Audit(db)
            files = FileService(db, MemoryStore(), keyring, audit, 1 << 30, 1 << 20)
            worlds.append(
                World(db, audit, files, UploadService(db, MemoryStore(), keyring, files, timedelta(hours=1)), x)
            )
        w1, w2 = worlds
        results = await _outcomes(
            _direct(w1.files, x), _direct(w1.files, y), _direct(w2.files, y), _direct(w2.files, x)
        )
        assert w1.batches[0] == w2.batches[0] == 2  # each process committed one batch of two
        assert not any(isinstance(r, BaseException) for r in results), results
        assert await w1.scalar(select(func.count()).select_from(File)) == 4
        assert not w1.failures, w1.failures
        assert not w2.failures, w2.failures
        for w in worlds:
            await w.db.dispose()

    asyncio.run(main())


def test_a_patch_cancelled_while_its_part_commits_keeps_the_part_blob(tmp_path: Path, monkeypatch: Any) -> None:
    """A PATCH cancelled while its part's transaction runs: the transaction commits (the
    writer thread cannot stop half-way), so the part's blob must stay."""
    import time

    from sealbox.models import UploadPart
    from sealbox.storage.base import BlobNotFound

    original = Database._transact

    def slow(engine: Any, work: Any) -> Any:
        result = original(engine, work)
        time.sleep(0.3)  # committed; the caller is cancelled meanwhile
        return result

    async def scenario(w: World) -> None:
        holder = Holder(user_id=w.owner)
        row = await w.uploads.create(holder, 1000, "c.bin", None, None)
        monkeypatch.setattr(Database, "_transact", staticmethod(slow))
        task = asyncio.ensure_future(w.uploads.append(row.id, holder, 0, _source(os.urandom(400)), None, ACTOR))
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        monkeypatch.setattr(Database, "_transact", staticmethod(original))
        assert await w.scalar(select(Upload.offset).where(Upload.id == row.id)) == 400
        key = await w.scalar(select(UploadPart.key).where(UploadPart.upload_id == row.id))
        try:
            await w.uploads.store.size(key)
        except BlobNotFound:
            pytest.fail("the committed part's blob was deleted: the upload's offset says 400 bytes are stored")

    run(sqlite(tmp_path), scenario)


def test_a_refused_unit_alone_is_run_once(tmp_path: Path) -> None:
    """A unit refused in a batch of its own gets its answer at once: its transaction is
    not run a second time."""

    async def scenario(w: World) -> None:
        with pytest.raises(TooLarge):
            await _direct(w.files, w.owner, 2000)
        assert w.batches == [1], w.batches

    run(sqlite(tmp_path), scenario, quota=1000)


def test_two_final_patches_of_one_upload(url: str) -> None:
    async def scenario(w: World) -> None:
        holder = Holder(user_id=w.owner)
        a = await _create_with_last_part_pending(w, 1000, holder)
        row = await w.uploads._held(a.id, holder)
        tail = os.urandom(500)
        results = await _outcomes(
            w.uploads.append(a.id, holder, 500, _source(tail), None, ACTOR, row),
            w.uploads.append(a.id, holder, 500, _source(tail), None, ACTOR, row),
        )
        errors = [r for r in results if isinstance(r, Exception)]
        assert len(errors) == 1, results
        assert isinstance(errors[0], Conflict)
        assert str(errors[0]) == "another request has changed this upload"
        assert await w.scalar(select(func.count()).select_from(File)) == 1
        uploads_logged = select(func.count()).where(AuditEvent.action == "file.upload")
        assert await w.scalar(uploads_logged) == 1
        # The file's bytes are all there.
        file_row = await w.files.record(a.bound_id)
        download = await w.files.open(file_row)
        got = b"".join([bytes(p) async for p in download.content(0, 999)])
        assert got[500:] == tail

    run(url, scenario, quota=1 << 20)


def test_a_final_patch_that_lost_the_race_is_a_conflict_not_an_integrity_failure(tmp_path: Path) -> None:
    """Two final PATCHes from offset 500 (a client that retried): the second read the
    upload before the first completed it, and reads its parts after they were dropped.
    That is a lost race (409), not stored data that fails authentication."""

    async def scenario(w: World) -> None:
        holder = Holder(user_id=w.owner)
        a = await _create_with_last_part_pending(w, 1000, holder)
        stale = await w.uploads._held(a.id, holder)
        tail = os.urandom(500)
        await w.uploads.append(a.id, holder, 500, _source(tail), None, ACTOR, stale)
        with pytest.raises(Conflict, match=r"^another request has changed this upload$"):
            await w.uploads.append(a.id, holder, 500, _source(tail), None, ACTOR, stale)
        assert await w.scalar(select(func.count()).select_from(File)) == 1

    run(sqlite(tmp_path), scenario)


def test_a_unit_aborted_for_contention_is_run_again(tmp_path: Path) -> None:
    """A unit that PostgreSQL aborted to break a deadlock with another process is run
    again (alone) and succeeds; a batch partner is not refused because of it."""
    from sealbox.audit.service import Event
    from sealbox.db.session import Contention, Tx

    async def scenario(w: World) -> None:
        runs: list[int] = []

        def once_contended(tx: Tx) -> None:
            runs.append(1)
            if len(runs) == 1:
                raise Contention("deadlock")

        results = await _outcomes(
            w.audit.record(Event("test.contended", ACTOR), work=(once_contended,)),
            w.audit.record(Event("test.partner", ACTOR)),
        )
        assert results == [None, None]
        assert len(runs) == 2
        logged = select(func.count()).where(AuditEvent.action.in_(["test.contended", "test.partner"]))
        assert await w.scalar(logged) == 2

    run(sqlite(tmp_path), scenario)
