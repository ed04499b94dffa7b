"""No file is stranded by a rotation: keys are wrapped as rows commit, retirement is
serialised with those commits, and a key a process lacks is a 503 naming it.

FileService, UploadService and KeyService over a real SQLite file (and PostgreSQL for
the lock), a keyring file and the in-memory store.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from sealbox.accounts.service import AccountService
from sealbox.audit.service import Actor, Audit
from sealbox.crypto.keys import (
    KeyProvider,
    Keyring,
    KeyringFile,
    WrapDomain,
    new_master_key,
    replace_keyring_file,
    write_keyring_file,
)
from sealbox.db.migrate import upgrade
from sealbox.db.session import Database
from sealbox.errors import Conflict, KeyMissing, SetupError, Unavailable
from sealbox.files.service import FileService
from sealbox.ids import FileId, UserId
from sealbox.keys.presence import KeyPresence
from sealbox.keys.service import KeyService
from sealbox.models import File, RetiredKey, Upload
from sealbox.sharing.gate import AsUser, Gate
from sealbox.storage.memory import MemoryStore
from sealbox.uploads.service import Holder, UploadService
from tests.services import Postgres

ACTOR = Actor("owner")


@dataclass
class World:
    db: Database
    store: MemoryStore
    path: Path
    files: FileService
    keys: KeyService
    owner: UserId

    def service(self, keyring: KeyProvider) -> FileService:
        """Another server process over the same database and store, with its own keys."""
        return FileService(self.db, self.store, keyring, self.files.audit, 1 << 30)


Scenario = Callable[[World], Awaitable[None]]


def run(tmp_path: Path, scenario: Scenario, url: str | None = None) -> None:
    async def main() -> None:
        db = Database(url or f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
        await upgrade(db)
        path = tmp_path / "keyring.json"
        write_keyring_file(path, Keyring([new_master_key("old")]))
        try:
            audit = Audit(db)
            user = await AccountService(db, audit, timedelta(days=1)).create_user("owner", "password-1")
            store = MemoryStore()
            files = FileService(db, store, KeyringFile(path), audit, 1 << 30)
            await scenario(World(db, store, path, files, KeyService(db, path), UserId(uuid.UUID(user.id))))
        finally:
            await db.dispose()

    asyncio.run(main())


async def _read(files: FileService, owner: UserId, file_id: str) -> bytes:
    gate = Gate(files.db, files, files.audit)
    download = (await gate.open(AsUser(owner, ACTOR), FileId(uuid.UUID(file_id)))).download
    return b"".join([bytes(p) async for p in download.content(0, download.file.size - 1)])


async def _key_of(db: Database, file_id: str) -> str:
    async with db.read() as session:
        row = await session.get(File, uuid.UUID(file_id))
        assert row is not None
        return row.key_id


async def _count(db: Database, model: type[File] | type[Upload]) -> int:
    async with db.read() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


async def _all(keys: KeyService) -> None:
    async for _ in keys.rewrap():
        pass


def _url(request: pytest.FixtureRequest, backend: str) -> str | None:
    if backend == "sqlite":
        return None
    postgres: Postgres = request.getfixturevalue("postgres")
    return postgres.create_database()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_an_upload_streaming_through_rotate_rewrap_and_retire_stays_readable(
    tmp_path: Path, request: pytest.FixtureRequest, backend: str
) -> None:
    """The runbook run while an upload that began under the old key is still streaming."""

    async def scenario(w: World) -> None:
        data = os.urandom(300_000)
        # The upload wrapped under 'old' when it began; the commit meets 'old' retired
        # and must look again (``primary_id``) to wrap under the new primary.
        keyring = w.files.keyring
        assert isinstance(keyring, KeyringFile)
        keyring.CHECK_SECONDS = 3600.0
        before = await w.files.upload(w.owner, "before.bin", None, _chunks(data), ACTOR)

        async def slow() -> AsyncIterator[bytes]:
            yield data[:100_000]
            await w.keys.rotate(wait=0)  # new primary in the keyring file
            await _all(w.keys)  # every committed row moves to it
            status = await w.keys.status()
            assert [k.files for k in status.keys] == [1, 0]
            await w.keys.retire("old")  # counts nothing on 'old': the upload has no row yet
            yield data[100_000:]

        during = await w.files.upload(w.owner, "during.bin", None, slow(), ACTOR)
        new = w.keys.keyring().primary.id
        assert w.keys.keyring().ids == {new}
        assert await _key_of(w.db, during.id) == new
        assert await _read(w.files, w.owner, during.id) == data
        restarted = w.service(KeyringFile(w.path))  # a process started after the retirement
        assert await _read(restarted, w.owner, during.id) == data
        assert await _read(restarted, w.owner, before.id) == data

    run(tmp_path, scenario, _url(request, backend))


def test_retire_waits_for_a_row_committing_under_the_key_and_then_refuses(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """PostgreSQL runs transactions side by side: a retirement that counted while a row
    under the key was being committed would strand it. The key lock orders them."""

    async def scenario(w: World) -> None:
        stale = w.service(Keyring([*w.keys.keyring().keys]))  # still wraps under 'old'
        await w.keys.rotate(wait=0)
        file_id = uuid.uuid4()
        retiring: asyncio.Task[None] | None = None
        async with w.db.write() as session:
            key_id, wrapped = await stale.wrap_in(session, file_id.bytes, os.urandom(32), WrapDomain.FILE)
            assert key_id == "old"
            session.add(
                File(
                    id=file_id, owner_id=w.owner, name_enc=b"n", content_type_enc=b"c", size=0, chunk_log2=16,
                    key_id=key_id, wrapped_dek=wrapped, header_tag=bytes(32),
                )
            )  # fmt: skip
            await session.flush()
            retiring = asyncio.create_task(w.keys.retire("old"))
            await asyncio.sleep(1)  # the retirement runs meanwhile, and must wait for this commit
        with pytest.raises(Conflict, match="key 'old' still wraps 1 file;"):
            await retiring
        assert "old" in w.keys.keyring().ids
        async with w.db.read() as session:
            assert await session.get(RetiredKey, "old") is None

    run(tmp_path, scenario, _url(request, "postgres"))


def _chunks(data: bytes) -> AsyncIterator[bytes]:
    async def gen() -> AsyncIterator[bytes]:
        for i in range(0, len(data), 64_000):
            yield data[i : i + 64_000]

    return gen()


def test_a_process_whose_primary_was_retired_stores_nothing(tmp_path: Path) -> None:
    """A process with a stale keyring (another host) whose primary key was retired
    elsewhere: its uploads and resumable uploads are refused with 503, and nothing is
    recorded under the retired key."""

    async def scenario(w: World) -> None:
        stale = Keyring([*w.keys.keyring().keys])  # 'old' primary, frozen in memory
        await w.keys.rotate(wait=0)
        await w.keys.retire("old")
        other = w.service(stale)
        with pytest.raises(Unavailable, match="primary master key old has been retired"):
            await other.upload(w.owner, "x.bin", None, _chunks(b"x" * 1000), ACTOR)
        uploads = UploadService(w.db, w.store, stale, other, timedelta(hours=1))
        with pytest.raises(Unavailable, match="primary master key old has been retired"):
            await uploads.create(Holder(user_id=w.owner), 10, "y.bin", None, None)
        assert await _count(w.db, File) == 0
        assert await _count(w.db, Upload) == 0
        assert [key async for key, _ in w.store.list("")] == []

    run(tmp_path, scenario)


def test_retire_refuses_while_a_resumable_upload_holds_the_key_and_marks_it_retired(tmp_path: Path) -> None:
    async def scenario(w: World) -> None:
        uploads = UploadService(w.db, w.store, w.files.keyring, w.files, timedelta(hours=1))
        pending = await uploads.create(Holder(user_id=w.owner), 10, "y.bin", None, None)
        await w.keys.rotate(wait=0)
        with pytest.raises(Conflict, match="1 resumable uploads in progress still use key 'old'"):
            await w.keys.retire("old")
        assert "old" in w.keys.keyring().ids
        old = next(k for k in w.keys.keyring().keys if k.id == "old")
        await uploads.terminate(pending.id, Holder(user_id=w.owner))
        await w.keys.retire("old")
        async with w.db.read() as session:
            assert await session.get(RetiredKey, "old") is not None
        # Restored from an old backup, the key still cannot come back into use.
        replace_keyring_file(w.path, w.keys.keyring().merged(Keyring([old])))
        primary = w.keys.keyring().primary.id
        with pytest.raises(Conflict, match="'old' has been retired"):
            await w.keys.promote("old")
        assert w.keys.keyring().primary.id == primary

    run(tmp_path, scenario)


def test_a_key_the_process_lacks_is_key_missing_naming_it_until_its_keyring_has_it(tmp_path: Path) -> None:
    """Another host's keyring made a key primary that this process does not hold."""

    async def scenario(w: World) -> None:
        other_path = tmp_path / "other-keyring.json"
        write_keyring_file(other_path, Keyring([new_master_key("k2"), *w.keys.keyring().keys]))
        other = w.service(KeyringFile(other_path))
        data = os.urandom(5000)
        created = await other.upload(w.owner, "x.bin", None, _chunks(data), ACTOR)
        assert await _key_of(w.db, created.id) == "k2"
        with pytest.raises(KeyMissing, match="does not hold master key k2") as raised:
            await _read(w.files, w.owner, created.id)
        assert raised.value.code == "key_missing"
        assert w.files.missing_keys() == {"k2"}
        # The operator copies the key over: the process reads its keyring again by itself.
        # (as 'keys import' does: the key is added, not made primary).
        replace_keyring_file(w.path, w.keys.keyring().merged(Keyring.from_json(other_path.read_text(), "other")))
        assert await _read(w.files, w.owner, created.id) == data
        assert w.files.missing_keys() == frozenset()

    run(tmp_path, scenario)


def test_promote_and_rewrap_refuse_while_a_live_process_lacks_the_key(tmp_path: Path) -> None:
    async def scenario(w: World) -> None:
        # The account's name key is made by its first upload, under "old": a process
        # lacking the staged key can still name files (it could not, were the name key
        # wrapped under the staged key, as it could not open a file wrapped under it).
        await w.files.upload(w.owner, "first.bin", None, _chunks(b"f" * 10), ACTOR)
        lagging = KeyPresence(w.db, Keyring([*w.keys.keyring().keys]), frozenset, interval=60)
        await lagging.report()
        staged = await w.keys.stage()
        assert w.keys.keyring().primary.id == "old"
        with pytest.raises(Conflict, match=f"{staged.id}' is not primary: 1 running server process") as refused:
            await w.keys.promote(staged.id)
        assert f"process {os.getpid()} on" in str(refused.value)
        assert w.keys.keyring().primary.id == "old"
        with pytest.raises(Conflict, match="is not primary"):
            await w.keys.rotate(wait=0)

        # Forced past the check (a keyring edited by hand): rewrap still refuses.
        ring = w.keys.keyring()
        w.path.unlink()
        write_keyring_file(
            w.path, Keyring([k for k in ring.keys if k.id == staged.id] + [k for k in ring.keys if k.id != staged.id])
        )
        # Wrapping looks at the keyring once a second; ``primary_id`` looks now.
        assert w.files.keyring.primary_id == staged.id
        # The lagging process first (it makes the account's name key, under 'old': a
        # process lacking the staged key could not read one made under it).
        await w.service(Keyring([k for k in ring.keys if k.id == "old"])).upload(
            w.owner, "y.bin", None, _chunks(b"y" * 10), ACTOR
        )
        await w.files.upload(w.owner, "x.bin", None, _chunks(b"x" * 10), ACTOR)
        with pytest.raises(Conflict, match=f"do not hold key '{staged.id}'"):
            await _all(w.keys)
        assert {await _key_of(w.db, f.id) for f in (await w.files.list(w.owner, 10, None)).items} == {staged.id, "old"}

        # Once the process holds the key (it reports within a second), both go through.
        lagging.keyring = KeyringFile(w.path)
        await lagging.report()
        await w.keys.promote(staged.id)
        await _all(w.keys)
        assert {await _key_of(w.db, f.id) for f in (await w.files.list(w.owner, 10, None)).items} == {staged.id}
        with pytest.raises(Conflict, match="'old' is still the primary key of"):
            await _retire_with_stale_holder(w)
        await lagging.leave()
        await w.keys.retire("old")

    run(tmp_path, scenario)


async def _retire_with_stale_holder(w: World) -> None:
    holder = KeyPresence(w.db, _OldPrimary(w), frozenset, interval=60)
    await holder.report()
    try:
        await w.keys.retire("old")
    finally:
        await holder.leave()


class _OldPrimary:
    """A process that holds every key of ``w``'s keyring but still wraps under 'old'."""

    def __init__(self, w: World) -> None:
        self.ring = w.keys.keyring()

    @property
    def ids(self) -> frozenset[str]:
        return self.ring.ids

    @property
    def primary_id(self) -> str:
        return "old"

    def wrap(self, file_id: bytes, dek: bytes) -> tuple[str, bytes]:
        raise AssertionError("not used")

    def unwrap(self, key_id: str, file_id: bytes, wrapped: bytes) -> bytes:
        raise AssertionError("not used")


def test_rewrap_with_a_keyring_that_lacks_a_files_key_names_it_and_moves_nothing(tmp_path: Path) -> None:
    async def scenario(w: World) -> None:
        other_path = tmp_path / "other-keyring.json"
        write_keyring_file(other_path, Keyring([new_master_key("k2"), *w.keys.keyring().keys]))
        created = await w.service(KeyringFile(other_path)).upload(w.owner, "x.bin", None, _chunks(b"x" * 99), ACTOR)
        with pytest.raises(SetupError, match="wrapped under key 'k2', which this keyring lacks"):
            await _all(w.keys)
        assert await _key_of(w.db, created.id) == "k2"

    run(tmp_path, scenario)


def test_rewrap_stops_when_its_target_key_is_retired_meanwhile(tmp_path: Path) -> None:
    """Each batch re-checks, under the key lock, that the key it wraps under is not
    retired: a retirement made elsewhere during a rewrap stops it, nothing is moved to a
    key that has left the keyring."""

    async def scenario(w: World) -> None:
        for i in range(3):
            await w.files.upload(w.owner, f"f{i}.bin", None, _chunks(b"z" * 10), ACTOR)
        staged = await w.keys.stage()
        await w.keys.promote(staged.id)
        batches = w.keys.rewrap(batch=1)
        assert await anext(batches) == 1
        async with w.db.write() as session:  # what a retirement on another host records
            session.add(RetiredKey(id=staged.id))
        with pytest.raises(Conflict, match=f"key '{staged.id}' was retired meanwhile"):
            await anext(batches)
        keys = [await _key_of(w.db, f.id) for f in (await w.files.list(w.owner, 10, None)).items]
        assert sorted(keys) == sorted([staged.id, "old", "old"])

    run(tmp_path, scenario)


def test_rewrap_keeps_a_file_of_segments_in_its_own_wrap_domain(tmp_path: Path) -> None:
    """``keys rewrap`` moves a file made of segments to the new primary with the prefix of
    its layout, so it still reads as segments and still never as one blob."""

    async def scenario(w: World) -> None:
        uploads = UploadService(w.db, w.store, w.files.keyring, w.files, timedelta(hours=1))
        holder = Holder(user_id=w.owner)
        parts = [os.urandom(70_000), os.urandom(500)]
        pending = await uploads.create(holder, sum(map(len, parts)), "s.bin", None, None)
        await uploads.append(pending.id, holder, 0, _chunks(parts[0]), None, ACTOR)
        done = await uploads.append(pending.id, holder, len(parts[0]), _chunks(parts[1]), None, ACTOR)
        assert done.file_id is not None
        await w.keys.rotate(wait=0)
        await _all(w.keys)
        new = w.keys.keyring().primary.id
        assert await _key_of(w.db, done.file_id) == new
        async with w.db.read() as session:
            row = await session.get(File, uuid.UUID(done.file_id))
            assert row is not None
        assert row.wrap_format == 3
        w.keys.keyring().unwrap(new, row.id.bytes, row.wrapped_dek, WrapDomain.SEGMENTED_FILE)
        assert await _read(w.service(KeyringFile(w.path)), w.owner, done.file_id) == b"".join(parts)

    run(tmp_path, scenario)
